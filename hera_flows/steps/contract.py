"""The contract between the generator and a step: the flags, parameters and outputs of `hera-flows step NAME`,
declared once, next to the step, and read on both sides.

- **Flags** carry configuration, fixed at generation time. The generator builds them with :meth:`Step.argv` from
  the configuration (a missing or unknown flag is a generation error); the pod parses them with
  :meth:`Step.parse`. No flag has a default here: the configuration model (hera_flows/config.py) is the only
  place defaults live, so a pod never acts on a value nobody configured.
- **Inputs** are the template's input parameters, arriving as ``HF_PARAM_<NAME>`` environment variables
  (:func:`env_name`, the one implementation of that naming; never flags, never a shell string). A large input
  may instead arrive as an Argo input artifact: the generator then sets ``HF_FILE_<NAME>`` (:func:`file_env_name`)
  to the path Argo downloaded it to, and :meth:`Step.param` reads the file, so a step never knows which way its
  input travelled (hera_flows/blocks/artifacts.py decides, from the configuration).
- **Outputs** are files in ``--outputs``; :meth:`Step.write` refuses a name the contract does not declare and
  fills the declared ones it was not given with "" (Argo reads every declared output), so the list the generator
  writes into the template and the files the step writes cannot drift apart.

Step modules import only the standard library at the top (heavy clients load inside ``main``), so the generator can
import every contract without the step image's dependencies.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PARAM_PREFIX = "HF_PARAM_"
FILE_PREFIX = "HF_FILE_"


def env_name(param: str) -> str:
    """The environment variable of an input parameter: ``model-name`` -> ``HF_PARAM_MODEL_NAME``."""
    return PARAM_PREFIX + param.upper().replace("-", "_")


def file_env_name(param: str) -> str:
    """The environment variable naming the file of an input that arrives as an artifact: ``HF_FILE_CONTEXT``."""
    return FILE_PREFIX + param.upper().replace("-", "_")


@dataclass(frozen=True)
class Flag:
    """One ``--name=value`` flag. ``kind`` parses the text; ``many`` values are comma-separated (``csv``) or a JSON
    document (``json``, compact; ``document``, with spaces so a long one folds into readable manifest lines);
    ``optional`` flags may be left out (the step then sees None: "not configured")."""

    name: str
    help: str = ""
    kind: Callable[[str], Any] = str
    optional: bool = False
    choices: tuple[str, ...] = ()
    form: str = "text"  # text | csv | json | document | bool

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    def render(self, value: Any) -> str:
        """The flag's text for a configuration value (lists as CSV or JSON, booleans as true/false)."""
        if self.form == "csv":
            return ",".join(str(v) for v in value)
        if self.form == "json":
            return json.dumps(value, sort_keys=True, separators=(",", ":"))
        if self.form == "document":
            return json.dumps(value, sort_keys=True)
        if self.form == "bool":
            return "true" if value else "false"
        if isinstance(value, float) and value.is_integer() and self.kind is not float:
            return str(int(value))
        return str(value)

    def parse(self, text: str) -> Any:
        if self.form == "csv":
            return [item.strip() for item in text.split(",") if item.strip()]
        if self.form in ("json", "document"):
            return json.loads(text)
        if self.form == "bool":
            if text not in ("true", "false"):
                raise ValueError(f"expected true or false, got {text!r}")
            return text == "true"
        return self.kind(text)


@dataclass(frozen=True)
class Step:
    """The contract of one step; ``entry`` is "module:function" (imported lazily, only in the pod that runs it)."""

    name: str
    entry: str
    summary: str
    flags: tuple[Flag, ...] = ()
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    # Folders the step may fill in ``--outputs`` when asked to (a fan-out's shards): only ever artifacts.
    directories: tuple[str, ...] = ()
    outputs_flag: bool = True  # `--outputs=DIR`; the agent pod's publish writes to the shared volume instead

    # --- generator side ----------------------------------------------------------------------------------

    def argv(self, values: Mapping[str, Any] | None = None) -> list[str]:
        """``["--flag=value", ...]`` in declaration order; every non-optional flag must be given, none unknown."""
        return render_flags(self.flags, values or {}, where=f"step {self.name}")

    # --- pod side ------------------------------------------------------------------------------------------

    def parser(self, extra: Iterable[Flag] = ()) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(prog=f"hera-flows step {self.name}", description=self.summary,
                                         allow_abbrev=False)
        for flag in (*self.flags, *extra):
            parser.add_argument(f"--{flag.name}", dest=flag.dest, required=not flag.optional, help=flag.help,
                                type=_typed(flag), choices=list(flag.choices) or None, default=None)
        if self.outputs_flag:
            parser.add_argument("--outputs", default=None, help="folder receiving one file per output parameter")
        return parser

    def parse(self, argv: Sequence[str], extra: Iterable[Flag] = ()) -> argparse.Namespace:
        return self.parser(extra).parse_args(list(argv))

    def param(self, name: str, default: str = "", *, required: bool = False) -> str:
        """An input parameter of this step (``HF_PARAM_*``); only declared inputs may be read."""
        from hera_flows.steps.common import StepError

        if name not in self.inputs:
            raise ValueError(f"step {self.name} reads undeclared input {name!r}")
        path = self.input_path(name)
        value = _read_input_file(path, name) if path is not None else os.environ.get(env_name(name))
        if value is None or (required and value == ""):
            if required:
                raise StepError(f"missing input parameter {name!r} (environment variable {env_name(name)})")
            return default
        return value

    def input_path(self, name: str) -> Path | None:
        """Where an input that arrived as an artifact lies (``HF_FILE_<NAME>``), or None when it is a parameter.
        The path may be missing (an optional artifact nobody wrote) or a folder (a fan-in of many objects)."""
        if name not in self.inputs:
            raise ValueError(f"step {self.name} reads undeclared input {name!r}")
        value = os.environ.get(file_env_name(name))
        return Path(value) if value else None

    def write(self, out_dir: str | os.PathLike[str] | None, **values: str) -> None:
        """Write the outputs (names with ``_`` for ``-``); a declared output not given is written empty."""
        from hera_flows.steps.common import write_outputs

        given = {name.replace("_", "-"): value for name, value in values.items()}
        unknown = sorted(set(given) - set(self.outputs))
        if unknown:
            raise ValueError(f"step {self.name} writes undeclared output(s) {', '.join(unknown)}")
        write_outputs(out_dir, **{name: given.get(name, "") for name in self.outputs})


def _read_input_file(path: Path, name: str) -> str | None:
    """An artifact input's text; None when the (optional) artifact was not there."""
    from hera_flows.steps.common import StepError

    if not path.exists():
        return None
    if path.is_dir():
        raise StepError(f"input {name!r} arrived as a folder ({path}); this step reads one file")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StepError(f"input {name!r} cannot be read from {path}: {exc}") from None


def render_flags(flags: Sequence[Flag], values: Mapping[str, Any], *, where: str) -> list[str]:
    """The flags' text for ``values`` (flag dest -> value), in declaration order; a required flag left out or a
    value for no flag is an error (the generator and the pod can never disagree silently)."""
    known = {f.dest for f in flags}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{where}: unknown flag(s) {', '.join(unknown)}")
    out = []
    for flag in flags:
        if flag.dest not in values or values[flag.dest] is None:
            if not flag.optional:
                raise ValueError(f"{where}: flag --{flag.name} is required")
            continue
        out.append(f"--{flag.name}={flag.render(values[flag.dest])}")
    return out


def _typed(flag: Flag) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return flag.parse(text)
        except (ValueError, json.JSONDecodeError) as exc:
            raise argparse.ArgumentTypeError(f"--{flag.name}: {exc}") from None

    parse.__name__ = flag.name
    return parse


# Every guard: the flags the generator gives it, the run identity it receives, the outputs every later task reads.
GUARD_FLAGS = (
    Flag("state-namespace", "namespace of the guards' Leases (replay, cooldown, week claims)"),
    Flag("claim-seconds", "how long a claim stays pending (the workflow's deadline) before it counts as abandoned",
         kind=float),
)
RUN_IDENTITY = ("workflow-name", "workflow-uid")
GUARD_OUTPUTS = ("decision", "reason", "dedupe-key", "branch", "event")


def merged(*groups: Sequence[str]) -> tuple[str, ...]:
    """Names of several groups in order, each once (e.g. the shared guard outputs, then a pattern's own)."""
    return tuple(dict.fromkeys(name for group in groups for name in group))
