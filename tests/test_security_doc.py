"""docs/security.md's RBAC table is derived from generated/rbac.yaml: one row per ServiceAccount, its token default
and everything its RoleBindings grant. A new ServiceAccount, a widened Role or a stale row fails here."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.conftest import ROOT


def service_account_permissions(docs: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """ServiceAccount -> (token mounted by default: yes/no, "verbs resources in ns[, ns]; ..." over its bindings)."""
    roles = {(d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in docs if d["kind"] == "Role"}
    assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")], "nothing cluster-wide"
    table = {}
    for account in (d for d in docs if d["kind"] == "ServiceAccount"):
        name = account["metadata"]["name"]
        grants: dict[str, list[str]] = {}
        for binding in (d for d in docs if d["kind"] == "RoleBinding"):
            if not any(s["kind"] == "ServiceAccount" and s["name"] == name for s in binding["subjects"]):
                continue
            namespace = binding["metadata"].get("namespace")
            for rule in roles[(namespace, binding["roleRef"]["name"])]["rules"]:
                grants.setdefault(f"{'/'.join(rule['verbs'])} {', '.join(rule['resources'])}", []).append(namespace)
        cell = "; ".join(f"{grant} in {', '.join(dict.fromkeys(spaces))}" for grant, spaces in grants.items())
        table[name] = ("yes" if account.get("automountServiceAccountToken") else "no", cell or "nothing")
    return table


def documented_rbac(markdown: str) -> dict[str, tuple[str, str]]:
    section = markdown.split("\n## RBAC\n", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"`[a-z0-9-]+`", cells[0]):
            rows[cells[0].strip("`")] = (cells[1], cells[2])
    return rows


def test_the_rbac_table_matches_the_generated_rbac() -> None:
    docs = [d for d in yaml.safe_load_all((ROOT / "generated" / "rbac.yaml").read_text()) if d]
    documented = documented_rbac((ROOT / "docs" / "security.md").read_text())
    assert documented == service_account_permissions(docs)


def test_the_check_sees_a_widened_role() -> None:
    docs = [d for d in yaml.safe_load_all((ROOT / "generated" / "rbac.yaml").read_text()) if d]
    role = next(d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "hera-flows-sensor")
    role["rules"][0]["verbs"].append("delete")
    documented = documented_rbac((ROOT / "docs" / "security.md").read_text())
    assert documented != service_account_permissions(docs)


def documented_scope(markdown: str) -> set[tuple[str, str]]:
    section = markdown.split("\n### The real scope of each grant\n", 1)[1].split("\n## ", 1)[0]
    rows = set()
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"`[a-z0-9-]+`", cells[0]):
            rows.add((cells[0].strip("`"), cells[1]))
    return rows


def broad_grants(docs: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(ServiceAccount, "verbs resource") for every grant on Leases or Workflows that RBAC cannot narrow to the
    objects the code uses (no resourceNames), in the namespace hera-flows runs in."""
    roles = {(d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in docs if d["kind"] == "Role"}
    found = set()
    for binding in (d for d in docs if d["kind"] == "RoleBinding"):
        namespace = binding["metadata"].get("namespace")
        if namespace != "mlops-automation":
            continue
        for rule in roles[(namespace, binding["roleRef"]["name"])]["rules"]:
            for resource in set(rule["resources"]) & {"leases", "workflows"}:
                if rule.get("resourceNames"):
                    continue
                for subject in binding["subjects"]:
                    found.add((subject["name"], f"{'/'.join(rule['verbs'])} {resource}"))
    return found


def test_the_real_scope_of_every_broad_grant_is_documented() -> None:
    """Issue 16 item 12: what a Role really allows (any Lease, any Workflow of the namespace) is stated."""
    docs = [d for d in yaml.safe_load_all((ROOT / "generated" / "rbac.yaml").read_text()) if d]
    assert broad_grants(docs) == documented_scope((ROOT / "docs" / "security.md").read_text())


def test_a_widened_grant_needs_its_scope_documented() -> None:
    docs = [d for d in yaml.safe_load_all((ROOT / "generated" / "rbac.yaml").read_text()) if d]
    role = next(d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "hera-flows-workflow")
    role["rules"].append({"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["update"]})
    assert broad_grants(docs) != documented_scope((ROOT / "docs" / "security.md").read_text())


def test_the_readers_can_hold_a_read_only_forge_token() -> None:
    from hera_flows.config import parse_config
    from hera_flows.generate import render

    base = yaml.safe_load((ROOT / "config" / "flows.yaml").read_text())
    base["forge"]["read_token_secret"] = {"name": "forge-read", "key": "token"}
    files = render(parse_config(yaml.safe_dump(base)))
    drift = yaml.safe_load(files["generated/workflowtemplates/drift-remediation.yaml"])
    uses = {}
    for tpl in drift["spec"]["templates"]:
        containers = [tpl["container"]] if "container" in tpl else tpl.get("containerSet", {}).get("containers", [])
        for c in containers:
            for env in c.get("env", []):
                if env["name"] == "HF_FORGE_TOKEN":
                    uses[f"{tpl['name']}/{c.get('name', 'main')}"] = env["valueFrom"]["secretKeyRef"]["name"]
    assert uses["guard/main"] == uses["context/main"] == uses["agent/prepare"] == "forge-read"
    assert uses["agent/main"] == uses["review/main"] == "hera-flows-forge"  # publish and review write
