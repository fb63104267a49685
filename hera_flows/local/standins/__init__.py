"""Thin stand-ins for what cannot run on a laptop, used by the demo (``make demo``) and the tests.

Each is a real HTTP server on 127.0.0.1 that follows the documented API of the service it replaces, as far as
the steps use it — no mocks inside the steps, which talk to these exactly as they talk to the real services:

- ``github``: GitHub's REST API (pulls, issues, comments, labels) — where the review step opens the PR;
- ``kube``: the Kubernetes API paths the failure-triage steps read (workflows, pods, events, logs);
- ``kserve``: a KServe model server (V1 and Open Inference Protocol) — the staging endpoint of the smoke test;
- ``go_json``: what the Argo Events webhook EventSource (Go) makes of an HTTP request — the event data a
  Sensor receives;
- ``server``: the loopback HTTP server they all run on (also used by the test-only GitLab and Lease fakes).

The pytest fixtures that start them are in tests/support/ (``github_api``, ``triage_kube``, ``kserve_server``).
"""
