"""Secret redaction (issue 16 item 10): what each rule masks, what it keeps, and that the forge client applies it
to every title, body and comment on the way out."""

from __future__ import annotations

import pytest

from hera_flows.steps.forge.base import open_forge
from hera_flows.steps.redact import redact, redact_data
from tests.support.fixtures_github import DEFAULT_REPO, GitHubStandIn


@pytest.mark.parametrize(("text", "secret"), [
    ("export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
    ("AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ("key AKIAIOSFODNN7EXAMPLE in the middle", "AKIAIOSFODNN7EXAMPLE"),
    ("db password=hunter2 retrying", "hunter2"),
    ('{"client_secret": "abc123xyz"}', "abc123xyz"),
    ("--api-key=zz9-plural-z-alpha", "zz9-plural"),
    ("postgresql://ml:s3cret@db:5432/features", "s3cret"),
    ("Authorization: Bearer eyJhbGciOi.abc.def", "eyJhbGciOi"),
    ("curl -H 'Authorization: token ghp_0123456789abcdef0123456789abcdef0123'", "ghp_0123"),
    ("push with github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "github_pat_11"),
    ("GITLAB glpat-abcdefghij0123456789", "glpat-abcdefghij"),
    ("OPENAI sk-proj-abcdefghijklmnopqrstuvwxyz0123", "sk-proj-abcdefgh"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----", "MIIEpAIBAAKCAQEA"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N", "dozjgNryP4J3jVmNHl0w5N"),
])
def test_each_rule_masks_the_secret(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out and "***" in out


@pytest.mark.parametrize("text", [
    "KeyError: 'label'",
    "epoch 3/10 loss=0.41 max_tokens=512 tokenizer=bert-base",
    "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB",
    "Back-off pulling image \"registry.example.com/ml/train:1.4\"",
])
def test_ordinary_log_lines_are_kept(text: str) -> None:
    assert redact(text) == text


def test_named_variables_and_exact_values() -> None:
    assert redact("FEATURE_STORE_DSN=fs-1234 other=1", names=["FEATURE_STORE_DSN"]) == "FEATURE_STORE_DSN=*** other=1"
    assert redact("the token is abcdef123456 ok", values=["abcdef123456"]) == "the token is *** ok"


def test_structures_mask_secret_keys_and_strings() -> None:
    data = {"params": {"max_tokens": 5, "api_key": "k-123"}, "log": ["password: x1", 3], "ok": True}
    assert redact_data(data) == {"params": {"max_tokens": 5, "api_key": "***"}, "log": ["password: ***", 3],
                                 "ok": True}


def test_the_forge_client_redacts_everything_it_sends(github_api: GitHubStandIn,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_FORGE_TOKEN", github_api.token)
    with open_forge("github", api_url=github_api.url, repo_slug=DEFAULT_REPO, token=github_api.token) as forge:
        issue = forge.create_issue(title="leak password=hunter2", body=f"log: AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7M "
                                   f"and our own token {github_api.token}")
        forge.comment(issue.number, "again password=hunter2", kind="issue")
        pr = forge.create_pr(branch="b", base="main", title="t", body="token=abcdefgh123")
        forge.update_pr(pr.number, body="Authorization: Bearer abcdefghijklmnop")
    [stored] = github_api.issues()
    assert "hunter2" not in stored["title"] and "wJalr" not in stored["body"] and github_api.token not in stored["body"]
    assert all("hunter2" not in c["body"] for c in github_api.comments(issue.number))
    assert "abcdefghijklmnop" not in github_api.pulls()[0]["body"]
