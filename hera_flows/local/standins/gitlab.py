"""The thinnest faithful stand-in for GitLab's REST API v4, on 127.0.0.1 with a free port.

Used by the tests (fixtures ``gitlab_api``, ``make_gitlab_api`` in tests/support/fixtures_gitlab.py); a real
stand-in like GitHub's, so the demo can run against GitLab too.

What it implements, following docs.gitlab.com/ee/api (merge_requests, issues, notes, labels, pagination):

    GET/POST  /projects/:id/merge_requests              list (state, source_branch, target_branch, labels,
                                                        page/per_page) / create
    GET/PUT   /projects/:id/merge_requests/:iid         (PUT: title, description, state_event, labels, add_labels)
    GET/POST  /projects/:id/merge_requests/:iid/notes
    GET/POST  /projects/:id/issues                      list (state, labels, search + in, order_by, paging) / create
    GET/PUT   /projects/:id/issues/:iid
    GET/POST  /projects/:id/issues/:iid/notes

``:id`` is the URL-encoded project path (``acme%2Fml%2Fgitops``) or the numeric project id; a raw ``/`` in it
is a 404 like GitLab's router gives. Like GitLab it answers 401 ``{"message": "401 Unauthorized"}`` without a
valid ``Authorization: Bearer`` or ``PRIVATE-TOKEN``, 404 "404 Project Not Found" / "404 Not found", 400 for
missing parameters, and 409 ``{"message": ["Another open merge request already exists for this source branch:
!1"]}`` for a second open merge request from the same source branch. Merge requests and issues have separate
iid sequences; labels given to ``labels``/``add_labels`` are comma-separated and created when unknown. Lists
carry ``X-Page``, ``X-Per-Page``, ``X-Next-Page`` (empty on the last page), ``X-Prev-Page``, ``X-Total`` and
``X-Total-Pages``. Every request is recorded (``api.requests``, with the raw path) and failures can be injected
(``api.fail(...)``) for retry tests, the same way for every stand-in (``base.StandIn``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import unquote

from hera_flows.local.standins.base import ApiError, RecordedRequest, Reply, StandIn, timestamp

TOKEN = "glpat-standinTOKEN0123456789ab"
DEFAULT_PROJECT = "acme/ml/gitops"  # a subgroup, as GitLab allows
WEB = "https://gitlab.example.com"
PREFIX = "/api/v4"


@dataclass
class ProjectState:
    id: int
    path: str  # path_with_namespace
    merge_requests: dict[int, dict[str, Any]] = field(default_factory=dict)
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    notes: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)  # ("merge_requests", iid)
    known_labels: set[str] = field(default_factory=set)
    next_mr_iid: int = 1
    next_issue_iid: int = 1


def _now() -> str:
    return timestamp(millis=True)  # GitLab's timestamps carry milliseconds


def _labels(value: Any) -> list[str]:
    """GitLab's label parameters: a comma-separated string (or, from JSON, an array)."""
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    return [str(i).strip() for i in items if str(i).strip()]


class GitLabStandIn(StandIn):
    """State and routes (requests, ``fail``, the server: ``base.StandIn``). ``url`` (ending in /api/v4) is what a
    step gets as ``--api-url``."""

    keep_blank_values: ClassVar[bool] = True
    thread_name: ClassVar[str] = "GitLabStandIn"

    def __init__(self, token: str = TOKEN) -> None:
        super().__init__()
        self.token = token
        self.projects: dict[str, ProjectState] = {}
        self._ids = iter(range(5_000_001, 10**9))
        self._project_ids = iter(range(101, 10**6))

    # --- test helpers --------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"{self.base_url}{PREFIX}"

    def add_project(self, path: str) -> ProjectState:
        return self.projects.setdefault(path, ProjectState(next(self._project_ids), path))

    def merge_requests(self, project: str = DEFAULT_PROJECT) -> list[dict[str, Any]]:
        with self.lock:
            state = self.projects[project]
            return [self._mr_json(state, mr) for mr in sorted(state.merge_requests.values(), key=lambda m: m["iid"])]

    def issues(self, project: str = DEFAULT_PROJECT) -> list[dict[str, Any]]:
        with self.lock:
            state = self.projects[project]
            return [self._issue_json(state, i) for i in sorted(state.issues.values(), key=lambda i: i["iid"])]

    def notes(self, kind: str, iid: int, project: str = DEFAULT_PROJECT) -> list[dict[str, Any]]:
        """Notes of ``("merge_requests"|"issues", iid)``, oldest first."""
        with self.lock:
            return list(self.projects[project].notes.get((kind, iid), []))

    def labels(self, kind: str, iid: int, project: str = DEFAULT_PROJECT) -> list[str]:
        with self.lock:
            state = self.projects[project]
            items = state.merge_requests if kind == "merge_requests" else state.issues
            return list(items[iid]["labels"])

    def add_merge_request(self, source_branch: str, *, title: str = "opened elsewhere", target_branch: str = "main",
                          project: str = DEFAULT_PROJECT, from_fork: bool = False) -> dict[str, Any]:
        """Open a merge request directly in the state, as another client would have (no request recorded)."""
        with self.lock:
            state = self.projects[project]
            mr = self._new_mr(state, source_branch, target_branch, title, "")
            if from_fork:
                mr["source_project_id"] = state.id + 10_000
            return self._mr_json(state, mr)

    # --- HTTP (hooks of base.StandIn) ----------------------------------------------------------------------

    def api_path(self, path: str) -> str:
        if not path.startswith(PREFIX + "/"):
            raise ApiError(404, "404 Not Found", payload={"error": "404 Not Found"})
        return path[len(PREFIX):]

    def failure_body(self, code: int) -> Any:
        return {"message": "500 Internal Server Error"} if code >= 500 else {"message": f"{code}"}

    def respond(self, request: RecordedRequest) -> Reply:
        if request.raw:
            try:
                request.json()
            except ValueError:
                raise ApiError(400, "body is not valid JSON", payload={"error": "body is not valid JSON"}) from None
        self._authenticate(request)
        body = request.body if isinstance(request.body, dict) else {}
        return self._route(request.method, request.path, request.query, body)

    def _authenticate(self, request: RecordedRequest) -> None:
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        if request.headers.get("private-token") == self.token or (scheme.lower() == "bearer"
                                                                   and credential == self.token):
            return
        raise ApiError(401, "401 Unauthorized")

    _ROUTES: list[tuple[str, str, str]] = [
        ("GET", r"/projects/([^/]+)/merge_requests", "_list_mrs"),
        ("POST", r"/projects/([^/]+)/merge_requests", "_create_mr"),
        ("GET", r"/projects/([^/]+)/merge_requests/(\d+)", "_get_mr"),
        ("PUT", r"/projects/([^/]+)/merge_requests/(\d+)", "_update_mr"),
        ("GET", r"/projects/([^/]+)/issues", "_list_issues"),
        ("POST", r"/projects/([^/]+)/issues", "_create_issue"),
        ("GET", r"/projects/([^/]+)/issues/(\d+)", "_get_issue"),
        ("PUT", r"/projects/([^/]+)/issues/(\d+)", "_update_issue"),
        ("GET", r"/projects/([^/]+)/(merge_requests|issues)/(\d+)/notes", "_list_notes"),
        ("POST", r"/projects/([^/]+)/(merge_requests|issues)/(\d+)/notes", "_create_note"),
    ]

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: dict[str, Any]) -> Reply:
        for route_method, pattern, name in self._ROUTES:
            match = re.fullmatch(pattern, path)
            if match and route_method == method:
                project_id, *rest = match.groups()
                state = self._project(project_id)
                handler: Callable[..., Reply] = getattr(self, name)
                return handler(state, *[int(r) if r.isdigit() else r for r in rest], query=query, body=body)
        raise ApiError(404, "404 Not Found")

    def _project(self, project_id: str) -> ProjectState:
        wanted = unquote(project_id)
        for state in self.projects.values():
            if wanted in (state.path, str(state.id)):
                return state
        raise ApiError(404, "404 Project Not Found")

    @staticmethod
    def _page(items: list[Any], query: dict[str, list[str]]) -> tuple[list[Any], dict[str, str]]:
        """GitLab's offset pagination: page (from 1), per_page (default 20, at most 100) and the X- headers."""
        try:
            per_page = min(100, max(1, int(query.get("per_page", ["20"])[0])))
            page = max(1, int(query.get("page", ["1"])[0]))
        except ValueError:
            raise ApiError(400, "400 Bad request - page is invalid") from None
        total_pages = max(1, -(-len(items) // per_page))
        headers = {
            "X-Page": str(page), "X-Per-Page": str(per_page), "X-Total": str(len(items)),
            "X-Total-Pages": str(total_pages),
            "X-Next-Page": str(page + 1) if page < total_pages else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "",
        }
        return items[(page - 1) * per_page : page * per_page], headers

    @staticmethod
    def _state_filter(query: dict[str, list[str]]) -> str:
        state = query.get("state", ["all"])[0]
        if state not in ("opened", "closed", "locked", "merged", "all"):
            raise ApiError(400, "400 Bad request - state does not have a valid value")
        return state

    @staticmethod
    def _required(body: dict[str, Any], *names: str) -> None:
        for name in names:
            if not isinstance(body.get(name), str) or not body[name]:
                raise ApiError(400, f"400 Bad request - {name} is missing")

    # --- merge requests ------------------------------------------------------------------------------------

    def _new_mr(self, state: ProjectState, source: str, target: str, title: str, description: str) -> dict[str, Any]:
        iid = state.next_mr_iid
        state.next_mr_iid += 1
        mr = {"id": next(self._ids), "iid": iid, "title": title, "description": description, "state": "opened",
              "source_branch": source, "target_branch": target, "source_project_id": state.id, "labels": [],
              "created_at": _now(), "updated_at": _now()}
        state.merge_requests[iid] = mr
        return mr

    def _mr_json(self, state: ProjectState, mr: dict[str, Any]) -> dict[str, Any]:
        return {
            **mr,
            "project_id": state.id,
            "target_project_id": state.id,
            "labels": list(mr["labels"]),
            "draft": False,
            "merge_status": "can_be_merged",
            "references": {"short": f"!{mr['iid']}", "full": f"{state.path}!{mr['iid']}"},
            "web_url": f"{WEB}/{state.path}/-/merge_requests/{mr['iid']}",
            "author": {"username": "project_101_bot", "name": "hera-flows"},
        }

    def _list_mrs(self, state: ProjectState, *, query: dict[str, list[str]], body: Any) -> Reply:
        wanted_state = self._state_filter(query)
        source = query.get("source_branch", [None])[0]
        target = query.get("target_branch", [None])[0]
        wanted_labels = _labels(query.get("labels", [None])[0])
        items = sorted(state.merge_requests.values(), key=lambda m: m["iid"], reverse=True)  # created_at desc
        selected = [
            self._mr_json(state, m) for m in items
            if (wanted_state == "all" or m["state"] == wanted_state)
            and (source is None or m["source_branch"] == source)
            and (target is None or m["target_branch"] == target)
            and all(label in m["labels"] for label in wanted_labels)
        ]
        page, headers = self._page(selected, query)
        return 200, page, headers

    def _create_mr(self, state: ProjectState, *, query: Any, body: dict[str, Any]) -> Reply:
        self._required(body, "source_branch", "target_branch", "title")
        source = body["source_branch"]
        for mr in state.merge_requests.values():
            if mr["source_branch"] == source and mr["state"] == "opened" and mr["source_project_id"] == state.id:
                raise ApiError(409, [f"Another open merge request already exists for this source branch: !{mr['iid']}"])
        if source == body["target_branch"]:
            raise ApiError(422, ["You can't use same project/branch for source and target"])
        mr = self._new_mr(state, source, body["target_branch"], body["title"], str(body.get("description") or ""))
        self._apply_labels(state, mr, body)
        return 201, self._mr_json(state, mr), {}

    def _find_mr(self, state: ProjectState, iid: int) -> dict[str, Any]:
        if iid not in state.merge_requests:
            raise ApiError(404, "404 Not found")
        return state.merge_requests[iid]

    def _get_mr(self, state: ProjectState, iid: int, **_: Any) -> Reply:
        return 200, self._mr_json(state, self._find_mr(state, iid)), {}

    def _update_mr(self, state: ProjectState, iid: int, *, query: Any, body: dict[str, Any]) -> Reply:
        mr = self._find_mr(state, iid)
        self._update(state, mr, body, {"close": "closed", "reopen": "opened"})
        return 200, self._mr_json(state, mr), {}

    # --- issues --------------------------------------------------------------------------------------------

    def _issue_json(self, state: ProjectState, issue: dict[str, Any]) -> dict[str, Any]:
        return {
            **issue,
            "project_id": state.id,
            "labels": list(issue["labels"]),
            "issue_type": "issue",
            "references": {"short": f"#{issue['iid']}", "full": f"{state.path}#{issue['iid']}"},
            "web_url": f"{WEB}/{state.path}/-/issues/{issue['iid']}",
            "user_notes_count": len(state.notes.get(("issues", issue["iid"]), [])),
        }

    def _list_issues(self, state: ProjectState, *, query: dict[str, list[str]], body: Any) -> Reply:
        wanted_state = self._state_filter(query)
        wanted_labels = _labels(query.get("labels", [None])[0])
        search = query.get("search", [""])[0]
        scope = [s.strip() for s in query.get("in", ["title,description"])[0].split(",")]
        if any(s not in ("title", "description") for s in scope):
            raise ApiError(400, "400 Bad request - in does not have a valid value")
        # GitLab's issue search: the words of the query (3+ characters) must each occur, case-insensitively, in
        # one of the searched fields (an ILIKE '%word%' per word).
        words = [w.lower() for w in search.split() if len(w) >= 3]
        order = query.get("order_by", ["created_at"])[0]
        if order not in ("created_at", "updated_at", "priority", "due_date", "relative_position", "label_priority",
                         "milestone_due", "popularity", "weight", "title"):
            raise ApiError(400, "400 Bad request - order_by does not have a valid value")
        items = sorted(state.issues.values(), key=lambda i: (i[order] if order in i else i["iid"], i["iid"]),
                       reverse=query.get("sort", ["desc"])[0] == "desc")
        selected = [
            self._issue_json(state, i) for i in items
            if (wanted_state == "all" or i["state"] == wanted_state)
            and all(label in i["labels"] for label in wanted_labels)
            and all(any(w in str(i.get(f) or "").lower() for f in scope) for w in words)
        ]
        page, headers = self._page(selected, query)
        return 200, page, headers

    def _create_issue(self, state: ProjectState, *, query: Any, body: dict[str, Any]) -> Reply:
        self._required(body, "title")
        iid = state.next_issue_iid
        state.next_issue_iid += 1
        issue = {"id": next(self._ids), "iid": iid, "title": body["title"],
                 "description": str(body.get("description") or ""), "state": "opened", "labels": [],
                 "created_at": _now(), "updated_at": _now()}
        state.issues[iid] = issue
        self._apply_labels(state, issue, body)
        return 201, self._issue_json(state, issue), {}

    def _find_issue(self, state: ProjectState, iid: int) -> dict[str, Any]:
        if iid not in state.issues:
            raise ApiError(404, "404 Not found")
        return state.issues[iid]

    def _get_issue(self, state: ProjectState, iid: int, **_: Any) -> Reply:
        return 200, self._issue_json(state, self._find_issue(state, iid)), {}

    def _update_issue(self, state: ProjectState, iid: int, *, query: Any, body: dict[str, Any]) -> Reply:
        issue = self._find_issue(state, iid)
        self._update(state, issue, body, {"close": "closed", "reopen": "opened"})
        return 200, self._issue_json(state, issue), {}

    # --- shared by merge requests and issues ---------------------------------------------------------------

    def _update(self, state: ProjectState, item: dict[str, Any], body: dict[str, Any], events: dict[str, str]) -> None:
        known = {"title", "description", "state_event", "labels", "add_labels", "remove_labels", "target_branch"}
        if not known & set(body):
            raise ApiError(400, "400 Bad request - at least one parameter must be provided")
        if "title" in body and not (isinstance(body["title"], str) and body["title"]):
            raise ApiError(400, {"title": ["can't be blank"]})
        for name in ("title", "description", "target_branch"):
            if name in body and name in item:
                item[name] = body[name]
        if "state_event" in body:
            if body["state_event"] not in events:
                raise ApiError(400, "400 Bad request - state_event does not have a valid value")
            item["state"] = events[body["state_event"]]
        self._apply_labels(state, item, body)
        item["updated_at"] = _now()

    @staticmethod
    def _apply_labels(state: ProjectState, item: dict[str, Any], body: dict[str, Any]) -> None:
        if "labels" in body:
            item["labels"] = []
        for name in [*_labels(body.get("labels")), *_labels(body.get("add_labels"))]:
            state.known_labels.add(name)  # unknown labels are created
            if name not in item["labels"]:
                item["labels"].append(name)
        remove = set(_labels(body.get("remove_labels")))
        item["labels"] = [n for n in item["labels"] if n not in remove]

    def _list_notes(self, state: ProjectState, kind: str, iid: int, *, query: dict[str, list[str]],
                    body: Any) -> Reply:
        (self._find_mr if kind == "merge_requests" else self._find_issue)(state, iid)
        page, headers = self._page(state.notes.get((kind, iid), []), query)
        return 200, page, headers

    def _create_note(self, state: ProjectState, kind: str, iid: int, *, query: Any,
                     body: dict[str, Any]) -> Reply:
        (self._find_mr if kind == "merge_requests" else self._find_issue)(state, iid)
        self._required(body, "body")
        note = {
            "id": next(self._ids), "type": None, "body": body["body"], "system": False,
            "author": {"username": "project_101_bot"}, "created_at": _now(), "updated_at": _now(),
            "noteable_id": iid, "noteable_iid": iid, "project_id": state.id,
            "noteable_type": "MergeRequest" if kind == "merge_requests" else "Issue",
        }
        state.notes.setdefault((kind, iid), []).append(note)
        return 201, note, {}
