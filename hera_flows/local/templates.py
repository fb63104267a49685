"""Which templates the local runner can run, and where a task's template comes from.

Template kinds in the order Argo checks them (``kind``), a template's input parameters from a task's arguments
(``template_inputs``), and ``templateRef`` resolution against the WorkflowTemplates given to the run
(``LibraryTemplate``, ``resolve_reference``, ``check_references``), with Argo's rules: the workflow's namespace
only, no ClusterWorkflowTemplates, runnable kinds only. Kept apart from scheduling, which only asks for a template.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hera_flows.local.errors import RunError

# Template kinds, in the order Argo checks them; the local runner runs the first three.
TEMPLATE_KINDS = ("container", "containerSet", "dag", "steps", "script", "resource", "suspend", "http", "plugin",
                  "data")
RUNNABLE_KINDS = ("container", "containerSet", "dag")


@dataclass(frozen=True)
class LibraryTemplate:
    """A WorkflowTemplate a ``templateRef`` may name, and the file it came from (for messages)."""

    doc: dict[str, Any]
    source: Path


def kind(template: dict[str, Any]) -> str:
    """The template's kind (``container``, ``dag``, ...), ``unknown`` when it has none Argo knows."""
    return next((k for k in TEMPLATE_KINDS if k in template), "unknown")


def template_inputs(template: dict[str, Any], arguments: dict[str, str]) -> dict[str, str] | str:
    """The template's input parameters: the task's argument, else the template's value/default; or the error.
    Arguments the template does not declare are ignored, as in Argo."""
    inputs: dict[str, str] = {}
    for param in template.get("inputs", {}).get("parameters", []):
        if param["name"] in arguments:
            inputs[param["name"]] = arguments[param["name"]]
        elif "value" in param or "default" in param:
            inputs[param["name"]] = str(param.get("value", param.get("default")))
        else:
            return f"input parameter {param['name']} was not supplied"
    return inputs


def resolve_reference(
    ref: dict[str, Any], *, library: dict[str, LibraryTemplate] | None, namespace: str, where: str
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The referenced template and the templates of its WorkflowTemplate (where its own names resolve).
    ``library``: the WorkflowTemplates given to the run (``None``: none were); ``namespace``: the workflow's."""
    target = f"{ref.get('name')}/{ref.get('template')}"
    if ref.get("clusterScope"):
        raise RunError(f"{where}: templateRef {target} has clusterScope: true; ClusterWorkflowTemplates are not "
                       "supported by the local runner (give a WorkflowTemplate copy with --template-file)")
    if library is None:
        raise RunError(f"{where}: templateRef {target}: no WorkflowTemplates were given to this run")
    entry = library.get(str(ref.get("name")))
    if entry is None:
        raise RunError(f"{where}: templateRef names WorkflowTemplate {ref.get('name')!r}, which is neither "
                       "generated nor in a --template-file (known: "
                       f"{', '.join(sorted(library)) or 'none'})")
    entry_namespace = entry.doc["metadata"].get("namespace")
    if entry_namespace and entry_namespace != namespace:
        raise RunError(f"{where}: templateRef {target}: WorkflowTemplate {ref['name']!r} ({entry.source}) is in "
                       f"namespace {entry_namespace!r}; Argo looks it up in the workflow's namespace {namespace!r} "
                       f"only, so apply it there")
    templates = {t["name"]: t for t in entry.doc["spec"].get("templates", [])}
    template = templates.get(str(ref.get("template")))
    if template is None:
        raise RunError(f"{where}: WorkflowTemplate {ref['name']!r} ({entry.source}) has no template "
                       f"{ref.get('template')!r} (it has: {', '.join(templates)})")
    if kind(template) not in RUNNABLE_KINDS:
        raise RunError(f"{where}: templateRef {target} is a {kind(template)} template; the local runner runs "
                       f"{', '.join(RUNNABLE_KINDS)} templates")
    return template, templates


def check_references(
    template: dict[str, Any],
    templates: dict[str, dict[str, Any]],
    *,
    library: dict[str, LibraryTemplate] | None,
    namespace: str,
    where: str,
    seen: set[int],
) -> None:
    """Resolve every templateRef reachable from ``template`` before anything runs (as Argo does on submit):
    a missing or unsupported reference must not surface after the guard has already taken a cooldown."""
    if id(template) in seen or "dag" not in template:
        return
    seen.add(id(template))
    for task in template["dag"]["tasks"]:
        here = f"{where} task {task['name']}"
        if "templateRef" in task:
            child, child_templates = resolve_reference(task["templateRef"], library=library, namespace=namespace,
                                                       where=here)
        elif task.get("template") in templates:
            child, child_templates = templates[task["template"]], templates
        else:
            raise RunError(f"{here}: no template named {task.get('template')!r}")
        check_references(child, child_templates, library=library, namespace=namespace, where=here, seen=seen)
