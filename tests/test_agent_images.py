"""The agent images (images/agent-claude-code/, images/agent-codex/): read, not built (no Docker here).

Each Dockerfile must install exactly the CLI version the tests run (tools/agents/package.json), start from a pinned
step image, end as a numeric non-root user with HOME=/tmp, and leave no npm cache; images/README.md must tag each
build with the name the configuration derives when `agent.image` is unset. The checks are plain functions returning
the problems they find, so the last tests can show each one failing on a Dockerfile with that mistake.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

import pytest
import yaml

from hera_flows.config import AgentConfig
from tests.conftest import ROOT

IMAGES = ROOT / "images"
README = IMAGES / "README.md"
PACKAGES = {"claude-code": "@anthropic-ai/claude-code", "codex": "@openai/codex"}
VERSION_ARGS = {"claude-code": "CLAUDE_CODE_VERSION", "codex": "CODEX_VERSION"}
STEP_IMAGE = yaml.safe_load((ROOT / "config" / "flows.yaml").read_text(encoding="utf-8"))["image"]


def pinned_versions() -> dict[str, str]:
    dependencies = json.loads((ROOT / "tools" / "agents" / "package.json").read_text(encoding="utf-8"))["dependencies"]
    return {kind: dependencies[package] for kind, package in PACKAGES.items()}


# --- a small Dockerfile reader ----------------------------------------------------------------------------------

@dataclass
class Stage:
    image: str  # as written, after ARG defaults are substituted
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (KEYWORD, arguments), continuations joined


@dataclass
class Dockerfile:
    args: dict[str, str]  # every ARG with a default, global or in a stage
    stages: list[Stage]

    def expand(self, text: str) -> str:
        """``${NAME}`` and ``$NAME`` replaced by the ARG's default (unknown names are left as written)."""
        return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: self.args.get(m.group(1) or m.group(2), m.group(0)), text)

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def last(self, keyword: str) -> str | None:
        found = [arguments for word, arguments in self.final.instructions if word == keyword]
        return found[-1] if found else None

    def env(self) -> dict[str, str]:
        """The final stage's ENV (``K=V`` pairs, quotes removed; the legacy ``ENV K V`` form too)."""
        values: dict[str, str] = {}
        for word, arguments in self.final.instructions:
            if word != "ENV":
                continue
            tokens = shlex.split(arguments)
            if tokens and "=" not in tokens[0]:
                values[tokens[0]] = " ".join(tokens[1:])
            else:
                for token in tokens:
                    name, _, value = token.partition("=")
                    values[name] = value
        return values


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction: comment lines dropped, backslash continuations joined."""
    out: list[tuple[str, str]] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        keyword, _, arguments = current.partition(" ")
        out.append((keyword.upper(), " ".join(arguments.split())))
        current = ""
    if current:
        raise ValueError(f"the Dockerfile ends inside a continued line: {current!r}")
    return out


def parse(text: str) -> Dockerfile:
    dockerfile = Dockerfile({}, [])
    for keyword, arguments in instructions(text):
        if keyword == "ARG" and "=" in arguments:
            name, _, default = arguments.partition("=")
            dockerfile.args[name.strip()] = default.strip().strip("\"'")
        if keyword == "FROM":
            words = dockerfile.expand(arguments).split()
            stage = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            dockerfile.stages.append(Stage(words[0], stage))
        elif dockerfile.stages:
            dockerfile.stages[-1].instructions.append((keyword, arguments))
    if not dockerfile.stages:
        raise ValueError("no FROM instruction")
    return dockerfile


def npm_installs(dockerfile: Dockerfile) -> list[list[str]]:
    """Every ``npm install`` (or ``npm-cli.js install``) command in a RUN of the final stage, as its words."""
    commands = []
    for word, arguments in dockerfile.final.instructions:
        if word != "RUN":
            continue
        for command in re.split(r"&&|;|\|\|", dockerfile.expand(arguments)):
            words = shlex.split(command)
            for index, token in enumerate(words[:-1]):
                if re.search(r"(^|/)(npm|npm-cli\.js)$", token) and words[index + 1] in ("install", "i"):
                    commands.append(words[index + 2:])
    return commands


def npm_cache_dir(words: list[str]) -> str | None:
    for index, word in enumerate(words):
        if word.startswith("--cache="):
            return word.split("=", 1)[1]
        if word == "--cache" and index + 1 < len(words):
            return words[index + 1]
    return None


# --- the checks -------------------------------------------------------------------------------------------------

def pin_problems(image: str) -> list[str]:
    if "@sha256:" in image:
        return []
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:
        return [f"FROM {image}: no tag (that is :latest)"]
    if tag == "latest" or not re.search(r"\d", tag) or "$" in image:
        return [f"FROM {image}: the tag {tag!r} is not a pinned version"]
    return []


def problems(text: str, kind: str, version: str) -> list[str]:
    """What is wrong with the ``kind`` agent image's Dockerfile ``text`` (empty: nothing)."""
    dockerfile = parse(text)
    found: list[str] = []
    arg = VERSION_ARGS[kind]
    if dockerfile.args.get(arg) != version:
        found.append(f"ARG {arg} defaults to {dockerfile.args.get(arg)!r}, tools/agents/package.json pins {version!r}")
    stage_names: set[str] = set()
    for stage in dockerfile.stages:
        if stage.image not in stage_names:  # an image, not an earlier stage
            found += pin_problems(stage.image)
        if stage.name:
            stage_names.add(stage.name)
    if dockerfile.args.get("HERA_FLOWS_IMAGE") != STEP_IMAGE or dockerfile.final.image != STEP_IMAGE:
        found.append(f"the final stage starts from {dockerfile.final.image!r}, not the step image {STEP_IMAGE!r} "
                     "(ARG HERA_FLOWS_IMAGE)")
    for word, arguments in dockerfile.final.instructions:
        source = re.search(r"--from=(\S+)", arguments) if word in ("COPY", "RUN") else None
        if source and source.group(1) not in stage_names:
            found += pin_problems(dockerfile.expand(source.group(1)))

    user = dockerfile.last("USER")
    uid = (user or "").split(":")[0]
    if not uid.isdigit() or int(uid) == 0:
        found.append(f"the final USER is {user!r}: it must be a numeric non-root uid (the pod runs as 65532)")
    elif int(uid) != 65532:
        found.append(f"the final USER is {user!r}, the pod runs as 65532")
    env = dockerfile.env()
    if env.get("HOME") != "/tmp":
        found.append(f"HOME is {env.get('HOME')!r}, not /tmp (the pod's writable emptyDir)")
    if kind == "claude-code" and env.get("DISABLE_AUTOUPDATER") != "1":
        found.append("DISABLE_AUTOUPDATER=1 is not set")
    if dockerfile.last("ENTRYPOINT") is not None:
        found.append("an ENTRYPOINT: the step image has none (the generated container sets the command)")
    cmd = dockerfile.last("CMD")
    try:
        exec_form = json.loads(cmd or "null")
    except ValueError:
        exec_form = None  # the shell form
    if not isinstance(exec_form, list) or exec_form[:1] != ["hera-flows"]:
        found.append(f"CMD {cmd!r} is not a hera-flows command (exec form), as in the step image")

    installs = npm_installs(dockerfile)
    if len(installs) != 1:
        found.append(f"{len(installs)} npm install commands, one expected")
    for words in installs:
        if not {"-g", "--global"} & set(words):
            found.append(f"npm install {' '.join(words)}: not --global")
        specs = [w for w in words if not w.startswith("-") and w != npm_cache_dir(words)]
        if specs != [f"{PACKAGES[kind]}@{version}"]:
            found.append(f"npm install installs {specs}, not exactly {PACKAGES[kind]}@{version}")
        cache = npm_cache_dir(words)
        run = next(dockerfile.expand(a) for w, a in dockerfile.final.instructions if w == "RUN" and "install" in a)
        if cache is None:
            found.append("npm install without --cache: the cache would stay in HOME (/tmp or /root) in the image")
        elif not re.search(rf"rm -rf [^&;]*{re.escape(cache)}(\s|$)", run):
            found.append(f"the npm cache {cache} is not removed in the same RUN")
    return found


def agent(kind: str) -> AgentConfig:
    """``AgentConfig(kind=kind)``: the agent section with only its kind set."""
    return AgentConfig.model_validate({"kind": kind})


def readme_tags() -> dict[str, str]:
    """Dockerfile -> the tag images/README.md builds it as (``docker build -f F ... -t T``)."""
    text = README.read_text(encoding="utf-8").replace("\\\n", " ")
    tags = {}
    for line in text.splitlines():
        if line.strip().startswith("docker build") and " -f " in line:
            words = shlex.split(line)
            tags[words[words.index("-f") + 1]] = words[words.index("-t") + 1]
    return tags


# --- the images -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(PACKAGES))
def test_the_agent_image_is_pinned_non_root_and_installs_the_tested_cli(kind: str) -> None:
    text = (IMAGES / f"agent-{kind}" / "Dockerfile").read_text(encoding="utf-8")
    assert problems(text, kind, pinned_versions()[kind]) == []


@pytest.mark.parametrize("kind", sorted(PACKAGES))
def test_the_readme_tags_each_build_as_the_image_the_config_derives(kind: str) -> None:
    derived = agent(kind).runtime_image("ghcr.io/hera-flows/hera-flows:0.1.0")
    assert derived == f"ghcr.io/hera-flows/hera-flows-agent-{kind}:0.1.0"
    assert readme_tags().get(f"images/agent-{kind}/Dockerfile") == derived
    assert agent(kind).runtime_image(STEP_IMAGE) == derived  # config/flows.yaml's step image gives the same name


def test_the_readme_config_lines_are_valid_and_name_the_derived_images() -> None:
    text = README.read_text(encoding="utf-8")
    blocks = [yaml.safe_load(b) for b in re.findall(r"^```yaml\n(.*?)^```", text, flags=re.M | re.S)]
    agents = {b["agent"]["kind"]: (b["image"], AgentConfig(**b["agent"])) for b in blocks if "agent" in b}
    assert set(agents) == set(PACKAGES)
    for kind, (step_image, configured) in agents.items():
        assert step_image == STEP_IMAGE
        assert configured.image == agent(kind).runtime_image(step_image)
        assert configured.runtime_api_key() == agent(kind).runtime_api_key()  # the documented default key
    assert all(f"`{PACKAGES[k]}@{v}`" in text for k, v in pinned_versions().items())


# --- the checks fail on a wrong Dockerfile ---------------------------------------------------------------------

CLAUDE = (IMAGES / "agent-claude-code" / "Dockerfile").read_text(encoding="utf-8")


@pytest.mark.parametrize(("old", "new", "problem"), [
    ("ARG CLAUDE_CODE_VERSION=2.1.332", "ARG CLAUDE_CODE_VERSION=2.1.331", "tools/agents/package.json pins"),
    ('"@anthropic-ai/claude-code@${CLAUDE_CODE_VERSION}"', "@anthropic-ai/claude-code", "not exactly"),
    ('"@anthropic-ai/claude-code@${CLAUDE_CODE_VERSION}"',
     '"@anthropic-ai/claude-code@${CLAUDE_CODE_VERSION}" left-pad', "not exactly"),
    ("install --global", "install", "not --global"),
    ("USER 65532:65532", "USER root", "numeric non-root"),
    ("USER 65532:65532", "USER 0", "numeric non-root"),
    ("ENV HOME=/tmp ", "ENV HOME=/root ", "HOME is '/root'"),
    ("DISABLE_AUTOUPDATER=1", "DISABLE_AUTOUPDATER=0", "DISABLE_AUTOUPDATER"),
    ("hera-flows:0.1.0", "hera-flows:latest", "not a pinned version"),
    ("ARG NODE_IMAGE=node:24.19.0-trixie-slim", "ARG NODE_IMAGE=node", "no tag"),
    ("--cache=/tmp/npm-cache ", "", "without --cache"),
    ("rm -rf /tmp/npm-cache /tmp/smoke", "rm -rf /tmp/smoke", "is not removed"),
    ('CMD ["hera-flows", "--help"]', 'ENTRYPOINT ["claude"]', "ENTRYPOINT"),
    ('CMD ["hera-flows", "--help"]', "CMD hera-flows --help", "exec form"),
])
def test_each_check_fails_on_a_dockerfile_with_that_mistake(old: str, new: str, problem: str) -> None:
    assert old in CLAUDE, old
    found = problems(CLAUDE.replace(old, new), "claude-code", pinned_versions()["claude-code"])
    assert any(problem in p for p in found), found


def test_a_new_pin_in_package_json_fails_the_unchanged_dockerfile() -> None:
    codex = (IMAGES / "agent-codex" / "Dockerfile").read_text(encoding="utf-8")
    assert any("package.json pins '2.1.400'" in p for p in problems(CLAUDE, "claude-code", "2.1.400"))
    assert any("package.json pins '0.172.0'" in p for p in problems(codex, "codex", "0.172.0"))
    # the other runtime's CLI in this image
    assert any("not exactly @openai/codex@" in p for p in problems(
        codex.replace('"@openai/codex@${CODEX_VERSION}"', '"@anthropic-ai/claude-code@${CODEX_VERSION}"'), "codex",
        pinned_versions()["codex"]))
