"""What the promotion-lifecycle end-to-end tests (canary, reconciler, rollback) share: a registered model whose
serving version is in a real GitOps remote, the generated manifests of a promotion configuration pointing at the
test's MLflow server, forge stand-in and serving endpoint, and a local run that must succeed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hera_flows.config import parse_config
from hera_flows.generate import render, write
from hera_flows.local.outputs import RunResult
from hera_flows.local.runner import run_workflow, run_workflow_object
from tests.support.mlflow_models import register_run_version, unique_model_name


@dataclass
class PromotionWorld:
    model: str
    client: Any  # the MLflow client of the test's server
    serving: Any  # the registered version the GitOps remote serves today
    remote: Any  # the GitOps remote (a bare repository on disk)
    tmp: Path
    generated: Path = field(init=False)
    secrets: dict[str, dict[str, str]] = field(init=False)

    @property
    def state(self) -> Path:
        return self.tmp / "state"

    def generate(self, mlflow_server: Any, github_api: Any, endpoint_url: str, *,
                 promotion: dict[str, Any] | None = None, patterns: dict[str, Any] | None = None,
                 webhook_secret: str = "unused") -> Path:
        """Render the promotion configuration (plus ``promotion`` settings and other ``patterns``) into tmp/out."""
        config = {
            "namespace": "mlops-automation",
            "repository": {"url": self.remote.url, "slug": "acme/ml-gitops", "base_branch": "main"},
            "forge": {"api_url": github_api.url, "token_secret": {"name": "forge", "key": "token"}},
            "mlflow": {"tracking_uri": mlflow_server.uri},
            "workflow": {"retry": {"limit": 1, "backoff_seconds": 1}},
            "patterns": {"promotion": {"webhook_secret": {"name": "mlflow-webhook", "key": "secret"},
                                       "smoke": {"endpoint": endpoint_url, "served_version": {"wait_seconds": 0}},
                                       **(promotion or {})},
                         **(patterns or {})},
        }
        self.generated = self.tmp / "out"
        write(render(parse_config(yaml.safe_dump(config))), self.generated)
        self.secrets = {"mlflow-webhook": {"secret": webhook_secret}, "forge": {"token": github_api.token}}
        return self.generated

    def run(self, template: str, name: str, **kwargs: Any) -> RunResult:
        """Run a generated template locally in tmp/<name>; it must succeed."""
        result = run_workflow(template, generated=self.generated, secrets=self.secrets, workdir=self.tmp / name,
                              state_dir=self.state, echo=False, **kwargs)
        return succeeded(result)

    def run_object(self, workflow: dict[str, Any], name: str) -> RunResult:
        """Run a Workflow object (as the reconciler creates one) locally in tmp/<name>; it must succeed."""
        return succeeded(run_workflow_object(workflow, generated=self.generated, secrets=self.secrets,
                                             workdir=self.tmp / name, state_dir=self.state, echo=False))


def succeeded(result: RunResult) -> RunResult:
    assert result.phase == "Succeeded", [(t.name, t.message, t.log[-1500:]) for t in result.tasks.values()]
    return result


def promotion_world(tmp: Path, mlflow_server: Any, make_gitops_remote: Any, *,
                    target: str = "kserve") -> PromotionWorld:
    """A new model (a unique name), its first version registered and served by the GitOps remote (``target``:
    a KServe InferenceService or a Seldon Core v2 Model)."""
    model = unique_model_name("fraud")
    serving = register_run_version(mlflow_server.uri, model, seed=1)
    remote = make_gitops_remote(fraud_model=model, fraud_version=serving.version,
                                fraud_storage_uri=serving.storage_uri, fraud_target=target)
    return PromotionWorld(model, mlflow_server.client(), serving, remote, tmp)
