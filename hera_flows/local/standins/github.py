"""The thinnest faithful stand-in for GitHub's REST API (v2022-11-28), on 127.0.0.1 with a free port.

Used by ``make demo`` (the PR "that would be opened") and by the tests (fixtures in
tests/support/fixtures_github.py).

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
recorded (``api.requests``) and failures can be injected (``api.fail(...)``) for retry tests, the same way for
every stand-in (``base.StandIn``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hera_flows.local.standins.base import ApiError, RecordedRequest, Reply, StandIn, timestamp

TOKEN = "ghp_standinTOKEN0123456789abcdefghijklmn"
DEFAULT_REPO = "acme/ml-gitops"
WEB = "https://github.com"
DOCS = "https://docs.github.com/rest"


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


def _validation_failed(resource: str, field_name: str, code: str) -> ApiError:
    return ApiError(422, "Validation Failed", [{"resource": resource, "field": field_name, "code": code}])


class GitHubStandIn(StandIn):
    """State and routes (requests, ``fail``, the server: ``base.StandIn``). ``url`` is what a step gets as
    ``--api-url``."""

    content_type: ClassVar[str] = "application/json; charset=utf-8"
    extra_headers: ClassVar[dict[str, str]] = {"X-GitHub-Api-Version-Selected": "2022-11-28"}
    thread_name: ClassVar[str] = "GitHubStandIn"

    def __init__(self, token: str = TOKEN, prefix: str = "") -> None:
        super().__init__()
        self.token = token
        self.prefix = prefix.rstrip("/")
        self.repos: dict[str, RepoState] = {}
        self._ids = iter(range(1_000_001, 10**9))

    # --- test helpers --------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"{self.base_url}{self.prefix}"

    def add_repo(self, slug: str) -> RepoState:
        owner, name = slug.split("/")
        return self.repos.setdefault(slug, RepoState(owner, name))

    def add_pull(self, head: str, *, title: str = "opened elsewhere", base: str = "main",
                 slug: str = DEFAULT_REPO) -> dict[str, Any]:
        """Open a pull request directly in the state, as another client would have (no request recorded)."""
        with self.lock:
            pull: dict[str, Any] = self._create_pull(self.repos[slug], query={},
                                                     body={"title": title, "head": head, "base": base})[1]
            return pull

    def add_issue(self, *, title: str, body: str, slug: str = DEFAULT_REPO) -> dict[str, Any]:
        """Open an issue directly in the state, as another client would have (no request recorded)."""
        with self.lock:
            issue: dict[str, Any] = self._create_issue(self.repos[slug], query={},
                                                       body={"title": title, "body": body})[1]
            return issue

    def pulls(self, slug: str = DEFAULT_REPO) -> list[dict[str, Any]]:
        return list(self.repos[slug].pulls.values())

    def comments(self, number: int, slug: str = DEFAULT_REPO) -> list[dict[str, Any]]:
        return list(self.repos[slug].comments.get(number, []))

    def labels(self, number: int, slug: str = DEFAULT_REPO) -> list[str]:
        return list(self.repos[slug].labels.get(number, []))

    def issues(self, slug: str = DEFAULT_REPO) -> list[dict[str, Any]]:
        return list(self.repos[slug].issues.values())

    # --- request handling (hooks of base.StandIn) ----------------------------------------------------------

    def api_path(self, path: str) -> str:
        if not self.prefix:
            return path
        if path.startswith(self.prefix + "/"):
            return path[len(self.prefix):]
        raise ApiError(404, "Not Found", payload={"message": "Not Found", "documentation_url": DOCS})

    def error_reply(self, error: ApiError) -> Reply:
        if error.payload is not None:
            return error.status, error.payload, {}
        payload: dict[str, Any] = {"message": error.message, "documentation_url": DOCS, "status": str(error.status)}
        if error.errors is not None:
            payload["errors"] = error.errors
        return error.status, payload, {}

    def respond(self, request: RecordedRequest) -> Reply:
        self._authenticate(request.headers.get("authorization", ""))
        status, payload = self._route(request.method, request.path, request.query, request.body)
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
                raise _validation_failed("PullRequest", name, "missing_field")
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
            "created_at": timestamp(), "updated_at": timestamp(),
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
            raise _validation_failed("PullRequest", "state", "invalid")
        for name in ("title", "body", "state", "base"):
            if name in body:
                pr[name] = body[name]
        pr["updated_at"] = timestamp()
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
            raise _validation_failed("Issue", "title", "missing_field")
        number = repo.next_number
        repo.next_number += 1
        repo.issues[number] = {"id": next(self._ids), "number": number, "title": body["title"],
                               "body": body.get("body"), "state": "open",
                               "created_at": timestamp(), "updated_at": timestamp()}
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
        target["updated_at"] = timestamp()
        return 200, self._issue_json(repo, number)

    def _list_comments(self, repo: RepoState, number: int, *, query: dict[str, list[str]],
                       body: Any) -> tuple[int, Any]:
        self._exists(repo, number)
        return 200, self._page(repo.comments.get(number, []), query)

    def _create_comment(self, repo: RepoState, number: int, *, query: Any, body: Any) -> tuple[int, Any]:
        self._exists(repo, number)
        if not isinstance(body, dict) or not isinstance(body.get("body"), str) or not body["body"]:
            raise _validation_failed("IssueComment", "body", "missing_field")
        comment_id = next(self._ids)
        kind = "pull" if number in repo.pulls else "issues"
        comment = {
            "id": comment_id, "node_id": f"IC_{comment_id}",
            "url": f"{self.url}/repos/{repo.slug}/issues/comments/{comment_id}",
            "html_url": f"{WEB}/{repo.slug}/{kind}/{number}#issuecomment-{comment_id}",
            "body": body["body"], "user": {"login": "hera-flows-bot", "type": "User"},
            "created_at": timestamp(), "updated_at": timestamp(),
        }
        repo.comments.setdefault(number, []).append(comment)
        return 201, comment

    def _add_labels(self, repo: RepoState, number: int, *, query: Any, body: Any) -> tuple[int, Any]:
        self._exists(repo, number)
        names = body.get("labels") if isinstance(body, dict) else body
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise _validation_failed("Label", "labels", "invalid")
        current = repo.labels.setdefault(number, [])
        for name in names:
            repo.known_labels.add(name)
            if name not in current:
                current.append(name)
        return 200, [{"name": n, "color": "ededed", "default": False} for n in current]
