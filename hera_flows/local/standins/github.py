"""The thinnest faithful stand-in for GitHub's REST API (v2022-11-28), on 127.0.0.1 with a free port.

Used by ``make demo`` (the PR "that would be opened") and by the tests (fixtures in tests/support/fixtures_github.py).

What it implements, following docs.github.com/rest (pulls, issues, issue comments, labels):

    GET/POST   /repos/{owner}/{repo}/pulls              list (state, head=owner:branch, base, paging) / create
    GET/PATCH  /repos/{owner}/{repo}/pulls/{n}
    GET/POST   /repos/{owner}/{repo}/issues             list (state, labels, paging; includes pull requests,
                                                        marked with a "pull_request" key) / create
    GET/PATCH  /repos/{owner}/{repo}/issues/{n}
    GET/POST   /repos/{owner}/{repo}/issues/{n}/comments
    POST       /repos/{owner}/{repo}/issues/{n}/labels  (adds; unknown labels are created)

Like GitHub it answers 401 without a valid ``Authorization: Bearer|token <token>``, 404 for unknown repositories
and numbers, 422 ``Validation Failed`` for missing fields and "A pull request already exists for owner:branch."
for a second open PR with the same head. Pull requests and issues share one number sequence. Every request is
recorded (``api.requests``) and failures can be injected (``api.fail(...)``) for retry tests.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from hera_flows.local.standins import server


TOKEN = "ghp_standinTOKEN0123456789abcdefghijklmn"
DEFAULT_REPO = "acme/ml-gitops"
WEB = "https://github.com"
DOCS = "https://docs.github.com/rest"


@dataclass
class RecordedRequest:
    method: str
    path: str  # without the API prefix and without the query
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: Any


@dataclass
class _Injected:
    method: str
    path: re.Pattern[str]
    status: int
    body: Any
    headers: dict[str, str]
    remaining: int


@dataclass
class RepoState:
    owner: str
    name: str
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)  # real issues only
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    labels: dict[int, list[str]] = field(default_factory=dict)
    known_labels: set[str] = field(default_factory=set)
    next_number: int = 1

    @property
    def slug(self) -> str:
        return f"{self.owner}/{self.name}"


class ApiError(Exception):
    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class GitHubStandIn:
    """State, routes and the server. ``url`` is what a step gets as ``--api-url``."""

    def __init__(self, token: str = TOKEN, prefix: str = "") -> None:
        self.token = token
        self.prefix = prefix.rstrip("/")
        self.repos: dict[str, RepoState] = {}
        self.requests: list[RecordedRequest] = []
        self._injected: list[_Injected] = []
        self._lock = threading.Lock()
        self._ids = iter(range(1_000_001, 10**9))
        self._server = server.bind(self._handler_class())
        self._stop: Callable[[], None] = lambda: None

    # --- lifecycle and test helpers ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.prefix}"

    def start(self) -> GitHubStandIn:
        self._stop = server.serve(self._server, "GitHubStandIn")
        return self

    def stop(self) -> None:
        self._stop()

    def add_repo(self, slug: str) -> RepoState:
        owner, name = slug.split("/")
        return self.repos.setdefault(slug, RepoState(owner, name))

    def fail(
        self,
        method: str,
        path_regex: str,
        status: int,
        *,
        times: int = 1,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` requests whose path ``re.search``-matches with ``status`` (and ``body``)."""
        if body is None:
            body = {"message": "Server Error"} if status >= 500 else {"message": f"HTTP {status}"}
        self._injected.append(_Injected(method.upper(), re.compile(path_regex), status, body, headers or {}, times))

    def clear_failures(self) -> None:
        """Forget the failures ``fail`` injected that have not been used up (the outage is over)."""
        self._injected.clear()

    def requests_to(self, method: str, path_regex: str = "") -> list[RecordedRequest]:
        """Recorded requests with ``method`` whose path ``re.search``-matches (anchor with ``$`` as needed)."""
        pattern = re.compile(path_regex)
        return [r for r in self.requests if r.method == method.upper() and pattern.search(r.path)]

    def add_pull(self, head: str, *, title: str = "opened elsewhere", base: str = "main",
                 slug: str = DEFAULT_REPO) -> dict[str, Any]:
        """Open a pull request directly in the state, as another client would have (no request recorded)."""
        with self._lock:
            return self._create_pull(self.repos[slug], query={}, body={"title": title, "head": head, "base": base})[1]

    def add_issue(self, *, title: str, body: str, slug: str = DEFAULT_REPO) -> dict[str, Any]:
        """Open an issue directly in the state, as another client would have (no request recorded)."""
        with self._lock:
            return self._create_issue(self.repos[slug], query={}, body={"title": title, "body": body})[1]

    def pulls(self, slug: str = DEFAULT_REPO) -> list[dict[str, Any]]:
        return list(self.repos[slug].pulls.values())

    def comments(self, number: int, slug: str = DEFAULT_REPO) -> list[dict[str, Any]]:
        return list(self.repos[slug].comments.get(number, []))

    def labels(self, number: int, slug: str = DEFAULT_REPO) -> list[str]:
        return list(self.repos[slug].labels.get(number, []))

    def issues(self, slug: str = DEFAULT_REPO) -> list[dict[str, Any]]:
        return list(self.repos[slug].issues.values())

    # --- request handling ----------------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms delayed-ACK stalls

            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, payload, headers = api.handle(self.command, self.path, dict(self.headers.items()), raw)
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("X-GitHub-Api-Version-Selected", "2022-11-28")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        return Handler

    def handle(self, method: str, raw_path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(raw_path)
        path = parts.path
        lower = {k.lower(): v for k, v in headers.items()}
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        with self._lock:
            if self.prefix and path.startswith(self.prefix + "/"):
                path = path[len(self.prefix):]
            elif self.prefix:
                return 404, {"message": "Not Found", "documentation_url": DOCS}, {}
            self.requests.append(RecordedRequest(method, path, parse_qs(parts.query), lower, body))
            for injected in self._injected:
                if injected.remaining > 0 and injected.method == method and injected.path.search(path):
                    injected.remaining -= 1
                    return injected.status, injected.body, injected.headers
            try:
                self._authenticate(lower.get("authorization", ""))
                status, payload = self._route(method, path, parse_qs(parts.query), body)
            except ApiError as exc:
                payload = {"message": exc.message, "documentation_url": DOCS, "status": str(exc.status)}
                if exc.errors is not None:
                    payload["errors"] = exc.errors
                return exc.status, payload, {}
        return status, payload, {}

    def _authenticate(self, authorization: str) -> None:
        if not authorization:
            raise ApiError(401, "Requires authentication")
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() not in ("bearer", "token") or credential != self.token:
            raise ApiError(401, "Bad credentials")

    _ROUTES: list[tuple[str, str, str]] = [
        ("GET", r"/repos/([^/]+)/([^/]+)/pulls", "_list_pulls"),
        ("POST", r"/repos/([^/]+)/([^/]+)/pulls", "_create_pull"),
        ("GET", r"/repos/([^/]+)/([^/]+)/pulls/(\d+)", "_get_pull"),
        ("PATCH", r"/repos/([^/]+)/([^/]+)/pulls/(\d+)", "_update_pull"),
        ("GET", r"/repos/([^/]+)/([^/]+)/issues", "_list_issues"),
        ("POST", r"/repos/([^/]+)/([^/]+)/issues", "_create_issue"),
        ("GET", r"/repos/([^/]+)/([^/]+)/issues/(\d+)", "_get_issue"),
        ("PATCH", r"/repos/([^/]+)/([^/]+)/issues/(\d+)", "_update_issue"),
        ("GET", r"/repos/([^/]+)/([^/]+)/issues/(\d+)/comments", "_list_comments"),
        ("POST", r"/repos/([^/]+)/([^/]+)/issues/(\d+)/comments", "_create_comment"),
        ("POST", r"/repos/([^/]+)/([^/]+)/issues/(\d+)/labels", "_add_labels"),
    ]

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        for route_method, pattern, name in self._ROUTES:
            match = re.fullmatch(pattern, path)
            if match and route_method == method:
                owner, repo, *rest = match.groups()
                state = self.repos.get(f"{owner}/{repo}")
                if state is None:
                    raise ApiError(404, "Not Found")
                handler: Callable[..., tuple[int, Any]] = getattr(self, name)
                return handler(state, *[int(r) for r in rest], query=query, body=body)
        raise ApiError(404, "Not Found")

    # --- pulls ---------------------------------------------------------------------------------------------

    def _pull_json(self, repo: RepoState, pr: dict[str, Any]) -> dict[str, Any]:
        number = pr["number"]
        api = f"{self.url}/repos/{repo.slug}"
        return {
            "url": f"{api}/pulls/{number}",
            "id": pr["id"],
            "node_id": f"PR_{pr['id']}",
            "html_url": f"{WEB}/{repo.slug}/pull/{number}",
            "issue_url": f"{api}/issues/{number}",
            "comments_url": f"{api}/issues/{number}/comments",
            "number": number,
            "state": pr["state"],
            "locked": False,
            "title": pr["title"],
            "body": pr["body"],
            "user": {"login": "hera-flows-bot", "type": "User"},
            "labels": [{"name": n, "color": "ededed", "default": False} for n in repo.labels.get(number, [])],
            "draft": pr["draft"],
            "created_at": pr["created_at"],
            "updated_at": pr["updated_at"],
            "closed_at": None,
            "merged_at": None,
            "head": {"label": f"{repo.owner}:{pr['head']}", "ref": pr["head"], "sha": "0" * 40,
                     "repo": {"full_name": repo.slug}},
            "base": {"label": f"{repo.owner}:{pr['base']}", "ref": pr["base"], "sha": "0" * 40,
                     "repo": {"full_name": repo.slug}},
        }

    @staticmethod
    def _page(items: list[Any], query: dict[str, list[str]]) -> list[Any]:
        per_page = min(100, int(query.get("per_page", ["30"])[0]))
        page = max(1, int(query.get("page", ["1"])[0]))
        return items[(page - 1) * per_page : page * per_page]

    def _list_pulls(self, repo: RepoState, *, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        state = query.get("state", ["open"])[0]
        head = query.get("head", [None])[0]
        base = query.get("base", [None])[0]
        pulls = sorted(repo.pulls.values(), key=lambda p: p["number"], reverse=True)  # sort=created, desc
        selected = [
            p for p in pulls
            if (state == "all" or p["state"] == state)
            and (head is None or f"{repo.owner}:{p['head']}" == head)
            and (base is None or p["base"] == base)
        ]
        return 200, [self._pull_json(repo, p) for p in self._page(selected, query)]

    def _create_pull(self, repo: RepoState, *, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        body = body if isinstance(body, dict) else {}
        for name in ("title", "head", "base"):
            if not isinstance(body.get(name), str) or not body[name]:
                raise ApiError(422, "Validation Failed", [{"resource": "PullRequest", "field": name, "code": "missing_field"}])
        head = body["head"].split(":", 1)[-1]
        if any(p["head"] == head and p["state"] == "open" for p in repo.pulls.values()):
            raise ApiError(422, "Validation Failed", [{
                "resource": "PullRequest", "code": "custom",
                "message": f"A pull request already exists for {repo.owner}:{head}.",
            }])
        number = repo.next_number
        repo.next_number += 1
        repo.pulls[number] = {
            "id": next(self._ids), "number": number, "state": "open", "title": body["title"],
            "body": body.get("body"), "head": head, "base": body["base"], "draft": bool(body.get("draft", False)),
            "created_at": _now(), "updated_at": _now(),
        }
        return 201, self._pull_json(repo, repo.pulls[number])

    def _find_pull(self, repo: RepoState, number: int) -> dict[str, Any]:
        if number not in repo.pulls:
            raise ApiError(404, "Not Found")
        return repo.pulls[number]

    def _get_pull(self, repo: RepoState, number: int, **_: Any) -> tuple[int, Any]:
        return 200, self._pull_json(repo, self._find_pull(repo, number))

    def _update_pull(self, repo: RepoState, number: int, *, query: Any, body: Any) -> tuple[int, Any]:
        pr = self._find_pull(repo, number)
        body = body if isinstance(body, dict) else {}
        if "state" in body and body["state"] not in ("open", "closed"):
            raise ApiError(422, "Validation Failed", [{"resource": "PullRequest", "field": "state", "code": "invalid"}])
        for name in ("title", "body", "state", "base"):
            if name in body:
                pr[name] = body[name]
        pr["updated_at"] = _now()
        return 200, self._pull_json(repo, pr)

    # --- issues (a pull request is an issue too) -----------------------------------------------------------

    def _issue_json(self, repo: RepoState, number: int) -> dict[str, Any]:
        if number in repo.pulls:
            pr = repo.pulls[number]
            item = {"number": number, "title": pr["title"], "body": pr["body"], "state": pr["state"],
                    "id": pr["id"], "created_at": pr["created_at"], "updated_at": pr["updated_at"],
                    "pull_request": {"url": f"{self.url}/repos/{repo.slug}/pulls/{number}",
                                     "html_url": f"{WEB}/{repo.slug}/pull/{number}"}}
            html = f"{WEB}/{repo.slug}/pull/{number}"
        else:
            item = dict(repo.issues[number])
            html = f"{WEB}/{repo.slug}/issues/{number}"
        item.update(
            url=f"{self.url}/repos/{repo.slug}/issues/{number}",
            html_url=html,
            node_id=f"I_{item['id']}",
            labels=[{"name": n, "color": "ededed", "default": False} for n in repo.labels.get(number, [])],
            user={"login": "hera-flows-bot", "type": "User"},
            comments=len(repo.comments.get(number, [])),
        )
        return item

    def _exists(self, repo: RepoState, number: int) -> None:
        if number not in repo.pulls and number not in repo.issues:
            raise ApiError(404, "Not Found")

    def _list_issues(self, repo: RepoState, *, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        state = query.get("state", ["open"])[0]
        wanted = [n for n in query.get("labels", [""])[0].split(",") if n]
        numbers = sorted({*repo.pulls, *repo.issues}, reverse=True)
        items = [self._issue_json(repo, n) for n in numbers]
        selected = [
            i for i in items
            if (state == "all" or i["state"] == state) and all(w in repo.labels.get(i["number"], []) for w in wanted)
        ]
        return 200, self._page(selected, query)

    def _create_issue(self, repo: RepoState, *, query: Any, body: Any) -> tuple[int, Any]:
        body = body if isinstance(body, dict) else {}
        if not isinstance(body.get("title"), str) or not body["title"]:
            raise ApiError(422, "Validation Failed", [{"resource": "Issue", "field": "title", "code": "missing_field"}])
        number = repo.next_number
        repo.next_number += 1
        repo.issues[number] = {"id": next(self._ids), "number": number, "title": body["title"],
                               "body": body.get("body"), "state": "open", "created_at": _now(), "updated_at": _now()}
        for label in body.get("labels") or []:
            repo.known_labels.add(label)
            repo.labels.setdefault(number, []).append(label)
        return 201, self._issue_json(repo, number)

    def _get_issue(self, repo: RepoState, number: int, **_: Any) -> tuple[int, Any]:
        self._exists(repo, number)
        return 200, self._issue_json(repo, number)

    def _update_issue(self, repo: RepoState, number: int, *, query: Any, body: Any) -> tuple[int, Any]:
        self._exists(repo, number)
        target = repo.pulls.get(number) or repo.issues[number]
        for name in ("title", "body", "state"):
            if isinstance(body, dict) and name in body:
                target[name] = body[name]
        target["updated_at"] = _now()
        return 200, self._issue_json(repo, number)

    def _list_comments(self, repo: RepoState, number: int, *, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        self._exists(repo, number)
        return 200, self._page(repo.comments.get(number, []), query)

    def _create_comment(self, repo: RepoState, number: int, *, query: Any, body: Any) -> tuple[int, Any]:
        self._exists(repo, number)
        if not isinstance(body, dict) or not isinstance(body.get("body"), str) or not body["body"]:
            raise ApiError(422, "Validation Failed", [{"resource": "IssueComment", "field": "body", "code": "missing_field"}])
        comment_id = next(self._ids)
        kind = "pull" if number in repo.pulls else "issues"
        comment = {
            "id": comment_id, "node_id": f"IC_{comment_id}",
            "url": f"{self.url}/repos/{repo.slug}/issues/comments/{comment_id}",
            "html_url": f"{WEB}/{repo.slug}/{kind}/{number}#issuecomment-{comment_id}",
            "body": body["body"], "user": {"login": "hera-flows-bot", "type": "User"},
            "created_at": _now(), "updated_at": _now(),
        }
        repo.comments.setdefault(number, []).append(comment)
        return 201, comment

    def _add_labels(self, repo: RepoState, number: int, *, query: Any, body: Any) -> tuple[int, Any]:
        self._exists(repo, number)
        names = body.get("labels") if isinstance(body, dict) else body
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise ApiError(422, "Validation Failed", [{"resource": "Label", "field": "labels", "code": "invalid"}])
        current = repo.labels.setdefault(number, [])
        for name in names:
            repo.known_labels.add(name)
            if name not in current:
                current.append(name)
        return 200, [{"name": n, "color": "ededed", "default": False} for n in current]
