"""`hera-flows generate | validate | run | step ...` — the one entry point for users, CI and pods."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from hera_flows.steps import STEPS

DEFAULT_CONFIG = "config/flows.yaml"
LAYERS_HELP = (f"configuration file (default {DEFAULT_CONFIG}); repeat to layer, e.g. --config {DEFAULT_CONFIG} "
               "--config overlays/prod.yaml: later files deep-merge over earlier ones (mappings merge, lists and "
               "scalars replace)")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["step"]:
        return run_step(argv[1:])

    parser = argparse.ArgumentParser(prog="hera-flows", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="render config/flows.yaml into generated/, eventsources/ and sensors/")
    gen.add_argument("--config", action="append", metavar="FILE", help=LAYERS_HELP)
    gen.add_argument("--out", default=".", help="folder that receives generated/, eventsources/, sensors/")
    gen.add_argument("--check", action="store_true", help="fail if the files on disk differ from the output")

    val = sub.add_parser("validate", help="validate the configuration only")
    val.add_argument("--config", action="append", metavar="FILE", help=LAYERS_HELP)

    run = sub.add_parser("run", help="run a generated WorkflowTemplate on this machine (development, demo, tests)")
    run.add_argument("template", help="WorkflowTemplate name, e.g. mlflow-promotion, or a path to its YAML")
    run.add_argument("--event", help="an Argo Events event (JSON) to feed through the pattern's Sensor trigger")
    run.add_argument("--event-name", help="the EventSource event that delivered --event (a webhook endpoint's or a "
                     "Kafka source's name, e.g. alertmanager); needed when several triggers would accept it")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="set a workflow parameter (repeatable)")
    run.add_argument("--secrets", help="YAML file: {secret-name: {key: value}} for secretKeyRef/secretRef")
    run.add_argument("--generated", default=".", help="folder holding generated/ and sensors/")
    run.add_argument("--workdir", help="keep the run's files here (default: a temporary folder)")
    run.add_argument("--template-file", dest="template_files", action="append", default=[], metavar="PATH",
                     help="a WorkflowTemplate file or a folder of them that templateRef tasks may name, besides the "
                     "generated ones (repeatable), e.g. your training template behind drift-retrain")
    run.add_argument("--state-dir", help="replay/cooldown records shared by local runs "
                     "(default: <generated>/.hera-flows-local/state)")

    sub.add_parser("step", help="run one workflow step (used inside the pods)")

    args = parser.parse_args(argv)
    if args.command == "generate":
        from hera_flows.generate import generate_command

        return generate_command(args.config or [DEFAULT_CONFIG], args.out, check_only=args.check)
    if args.command == "validate":
        from hera_flows.generate import validate_command

        return validate_command(args.config or [DEFAULT_CONFIG])
    if args.command == "run":
        from hera_flows.local.runner import run_command

        return run_command(args)
    parser.error(f"unknown command {args.command}")  # exits (status 2)


def run_step(argv: list[str]) -> int:
    """Dispatch to a step module; a StepError becomes one clear line and its exit code, never a traceback."""
    from hera_flows.steps import ALIASES
    from hera_flows.steps.common import EXIT_USAGE, StepError

    name = ALIASES.get(argv[0], argv[0]) if argv else ""
    if name not in STEPS:
        names = ", ".join(sorted(STEPS))
        print(f"hera-flows step: choose one of: {names}", file=sys.stderr)
        return EXIT_USAGE
    function = importlib.import_module(STEPS[name]).main
    try:
        return int(function(argv[1:]) or 0)
    except StepError as exc:
        print(f"{argv[0]}: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code


MAX_MESSAGE_CHARS = 1000


def one_line(message: str) -> str:
    """A step's error as one readable line: messages quote event data, which may hold newlines or 100k chars."""
    text = " ".join(message.splitlines())
    if len(text) > MAX_MESSAGE_CHARS:
        text = f"{text[:MAX_MESSAGE_CHARS]}... ({len(text) - MAX_MESSAGE_CHARS} more characters)"
    return text


if __name__ == "__main__":
    sys.exit(main())
