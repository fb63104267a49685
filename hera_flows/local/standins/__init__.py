"""Thin stand-ins for what cannot run on a laptop, used by the demo (``make demo``) and the tests.

Each is a real HTTP server on 127.0.0.1 that follows the documented API of the service it replaces, as far as
the steps use it — no mocks inside the steps, which talk to these exactly as they talk to the real services:

- ``github``: GitHub's REST API (pulls, issues, comments, labels) — where the review step opens the PR;
- ``gitlab``: GitLab's REST API v4 (merge requests, issues, notes, labels) — the same for a GitLab forge;
- ``kube``: the Kubernetes API — a generic object store (the guards' and GC's Leases) plus what the
  failure-triage steps read (workflows, pods, events, pod logs);
- ``kserve``: a KServe model server (V1 and Open Inference Protocol) — the staging endpoint of the smoke test;
- ``go_json``: what the Argo Events webhook EventSource (Go) makes of an HTTP request — the event data a
  Sensor receives;
- ``base``: what the HTTP stand-ins share — request recording (``requests``, ``requests_to``), failure
  injection (``fail``), ``ApiError``, the JSON request handler, start/stop;
- ``server``: the loopback HTTP server they all run on.

The pytest fixtures that start them are in tests/support/ (``github_api``, ``gitlab_api``, ``kube_api``,
``triage_kube``, ``kserve_server``).
"""
