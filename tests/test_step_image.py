"""The step image works on a real platform (issue 14 item 4): its requirements installed into a fresh virtualenv
exactly as the Dockerfile installs them (its own `pip wheel` and `pip install` commands, read from the
Dockerfile), then every step's `--help` runs there, and a real read of datasets from an ``s3://`` URI on a real S3
server (SeaweedFS): the drift monitor, whose default configuration reads ``s3://`` datasets, compares a reference
and a current window stored in a bucket and posts its events.

The venv holds only what the image holds (no dev extra: no MLflow server, no s3fs), so a step that imports
something the image lacks fails here as it would in a cluster. Slow (it builds the wheels): marked
``slow``, which `make test-slow` and CI run.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import venv
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hera_flows.steps import STEPS
from tests.conftest import ROOT

pytestmark = pytest.mark.slow
DOCKERFILE = ROOT / "Dockerfile"


def dockerfile_pip_commands() -> tuple[list[str], list[str], list[str]]:
    """(the build stage's COPY sources, its `pip wheel` argv, the final stage's `pip install` argv)."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    copies: list[str] = []
    wheel: list[str] = []
    install: list[str] = []
    for line in text.splitlines():
        keyword, _, rest = line.strip().partition(" ")
        if keyword == "COPY" and "--from" not in rest:
            copies += shlex.split(rest)[:-1]
        if keyword != "RUN":
            continue
        for part in rest.split("&&"):
            argv = shlex.split(part)
            if argv[:2] == ["pip", "wheel"]:
                wheel = argv
            elif argv[:2] == ["pip", "install"] and any("hera-flows" in a for a in argv):
                install = argv
    assert wheel and install, "the Dockerfile no longer builds and installs the step wheels with pip"
    return copies, wheel, install


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("step-image")
    source, wheels, env_dir = root / "src", root / "wheels", root / "venv"
    source.mkdir()
    copies, wheel, install = dockerfile_pip_commands()
    for name in copies:  # COPY pyproject.toml README.md ./ and COPY hera_flows ./hera_flows
        origin = ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(origin, source / name)
    venv.create(env_dir, with_pip=True, clear=True)
    pip = [str(env_dir / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]

    def run(argv: list[str]) -> None:
        # /wheels is the image's folder; --no-cache-dir only keeps the image small, so the machine's pip cache may
        # serve the downloads here
        argv = [a.replace("/wheels", str(wheels)) for a in argv[1:] if a != "--no-cache-dir"]
        proc = subprocess.run([*pip, *argv], cwd=source, capture_output=True, text=True, check=False, timeout=1500)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    run(wheel)
    run(install)
    return env_dir


def test_the_image_holds_only_its_own_requirements(image_venv: Path) -> None:
    python = str(image_venv / "bin" / "python")
    probe = ("import importlib.util as u, json; print(json.dumps({m: u.find_spec(m) is not None for m in "
             "['boto3', 'google.cloud.storage', 'azure.storage.blob', 'azure.identity', 'pyarrow', 'mlflow', "
             "'sklearn', 's3fs', 'hera_flows']}))")
    # run outside this checkout: `python -c` puts the working folder first on sys.path
    found = json.loads(subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True,
                                      cwd=image_venv).stdout)
    # scikit-learn comes with evidently (the drift monitor), so sklearn-flavour models predict in the image; fsspec's
    # s3fs does not: object-store URIs go through MLflow's clients
    assert found == {"boto3": True, "google.cloud.storage": True, "azure.storage.blob": True, "azure.identity": True,
                     "pyarrow": True, "mlflow": True, "sklearn": True, "s3fs": False, "hera_flows": True}
    location = subprocess.run([python, "-c", "import hera_flows; print(hera_flows.__file__)"], capture_output=True,
                              text=True, check=True, cwd=image_venv).stdout
    assert str(image_venv) in location  # the installed wheel, not this checkout


def test_every_step_starts_in_the_image(image_venv: Path) -> None:
    command = str(image_venv / "bin" / "hera-flows")

    def help_of(name: str) -> tuple[str, int, str]:
        proc = subprocess.run([command, "step", name, "--help"], capture_output=True, text=True, check=False,
                              env={"PATH": os.environ.get("PATH", ""), "HOME": "/tmp"}, timeout=300)
        return name, proc.returncode, proc.stdout + proc.stderr

    with ThreadPoolExecutor(max_workers=2) as pool:
        failed = [(n, c, out[-400:]) for n, c, out in pool.map(help_of, sorted(STEPS)) if c != 0 or "usage:" not in out]
    assert failed == []


def test_the_drift_monitor_reads_its_windows_from_s3(image_venv: Path, s3_server, s3_bucket, webhook_receiver,
                                                      tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"amount": rng.normal(100, 10, 2000), "age": rng.integers(18, 80, 2000)})
    current = pd.DataFrame({"amount": rng.normal(160, 10, 2000), "age": rng.integers(18, 80, 2000)})
    client = s3_server.client()
    for name, frame in (("reference", reference), ("current", current)):
        frame.to_parquet(tmp_path / f"{name}.parquet")
        client.upload_file(str(tmp_path / f"{name}.parquet"), s3_bucket, f"fraud/{name}.parquet")
    out = tmp_path / "out"
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "HF_DRIFT_TOKEN": "t0ken", **s3_server.env()}
    proc = subprocess.run(
        [str(image_venv / "bin" / "hera-flows"), "step", "drift-monitor", "--model=fraud-detector",
         f"--reference=s3://{s3_bucket}/fraud/reference.parquet", f"--current=s3://{s3_bucket}/fraud/current.parquet",
         "--max-rows=100000", "--seed=42", "--severity=high", f"--event-url={webhook_receiver.url_for('/drift')}",
         f"--outputs={out}"],
        capture_output=True, text=True, check=False, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((out / "drifted").read_text()) == ["amount"]
    [request] = webhook_receiver.wait_for(1)
    assert json.loads(request.body)["feature"] == "amount"
    assert sys.executable not in proc.stderr  # it ran the image's interpreter, not this one
