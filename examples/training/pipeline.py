"""The sample training pipeline: train -> evaluate -> register in MLflow -> promote to staging.

It is the thing the other patterns act on: pattern 1 promotes the versions it registers, pattern 3 triages it
when it fails (it opts in with the ``mlops.hera-flows/triage`` label and names its owner), pattern 2's drift
PRs change its parameters file, and pattern 4 audits the models it produces. Written with Hera like the rest
of hera-flows; ``python examples/training/pipeline.py`` rewrites ``fraud-detector-training.yaml`` next to it
(tests/test_examples.py checks the committed file is current and valid for Argo 3.7 and 4.x).

The training image (``ghcr.io/acme/fraud-training``) is yours: any image whose entry points accept these flags.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from hera.workflows import DAG, Container, EmptyDirVolume, Parameter, RetryStrategy, WorkflowTemplate
from hera.workflows import models as m

NAME = "fraud-detector-training"
NAMESPACE = "ml-training"
IMAGE = "ghcr.io/acme/fraud-training:1.4.0"
SERVICE_ACCOUNT = "ml-training"
MODEL = "fraud-detector"
OUTPUT = Path(__file__).with_name(f"{NAME}.yaml")

# What hera-flows looks for: the opt-in label of pattern 3 and the owner it tags in triage issues.
TRIAGE_LABEL = {"mlops.hera-flows/triage": "enabled"}
OWNER = {"mlops.hera-flows/owner": "@acme/fraud-ml"}


def _security() -> m.SecurityContext:
    return m.SecurityContext(
        run_as_non_root=True,
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        capabilities=m.Capabilities(drop=["ALL"]),
        seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
    )


def _resources(cpu: str, memory: str, limit_memory: str) -> m.ResourceRequirements:
    return m.ResourceRequirements(
        requests={"cpu": cpu, "memory": memory}, limits={"cpu": cpu, "memory": limit_memory}
    )


def _step(name: str, module: str, args: list[str], inputs: list[str], outputs: list[str], *,
          resources: m.ResourceRequirements, network: bool) -> Container:
    """One pipeline step: ``python -m fraud.<module>`` with argv flags (no shell), outputs as files."""
    return Container(
        name=name,
        image=IMAGE,
        command=["python", "-m", f"fraud.{module}"],
        args=[*args, "--outputs=/tmp/outputs"],
        inputs=[Parameter(name=p) for p in inputs] or None,
        outputs=[Parameter(name=o, value_from=m.ValueFrom(path=f"/tmp/outputs/{o}")) for o in outputs] or None,
        env=[m.EnvVar(name="MLFLOW_TRACKING_URI", value="http://mlflow.mlflow.svc.cluster.local:5000")],
        volumes=[EmptyDirVolume(name="tmp", mount_path="/tmp")],
        security_context=_security(),
        resources=resources,
        retry_strategy=RetryStrategy(
            limit="3", retry_policy="OnError" if not network else "Always",
            backoff=m.Backoff(duration="30s", factor="2", max_duration="10m"),
        ),
    )


def build() -> dict[str, Any]:
    with WorkflowTemplate(
        name=NAME,
        namespace=NAMESPACE,
        labels={"app.kubernetes.io/name": NAME},
        annotations={
            "workflows.argoproj.io/title": "Fraud detector training",
            "workflows.argoproj.io/description": "train -> evaluate -> register in MLflow -> promote to staging",
            **OWNER,
        },
        entrypoint="main",
        arguments=[
            Parameter(name="params-file", value="pipelines/fraud-detector/params.yaml",
                      description="pipeline parameters file in the GitOps repo (drift PRs change it)"),
            Parameter(name="dataset", value="s3://acme-ml/fraud/transactions/",
                      description="training data prefix"),
            Parameter(name="min-roc-auc", value="0.9", description="evaluation gate"),
        ],
        service_account_name=SERVICE_ACCOUNT,
        security_context=m.PodSecurityContext(
            run_as_non_root=True, run_as_user=1000, run_as_group=1000, fs_group=1000,
            seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
        ),
        active_deadline_seconds=6 * 3600,
        ttl_strategy=m.TTLStrategy(seconds_after_success=86400, seconds_after_failure=7 * 86400),
        pod_gc=m.PodGC(strategy="OnPodSuccess"),
        # Copied onto every Workflow submitted from this template: what pattern 3 selects and reads.
        workflow_metadata=m.WorkflowMetadata(labels={**TRIAGE_LABEL}, annotations={**OWNER}),
    ) as wt:
        train = _step(
            "train", "train",
            ["--params-file={{inputs.parameters.params-file}}", "--dataset={{inputs.parameters.dataset}}"],
            ["params-file", "dataset"], ["run-id"],
            resources=_resources("2", "4Gi", "4Gi"), network=False,
        )
        evaluate = _step(
            "evaluate", "evaluate",
            ["--run-id={{inputs.parameters.run-id}}", "--min-roc-auc={{inputs.parameters.min-roc-auc}}"],
            ["run-id", "min-roc-auc"], ["roc-auc"],
            resources=_resources("1", "2Gi", "2Gi"), network=False,
        )
        register = _step(
            "register", "register",
            ["--run-id={{inputs.parameters.run-id}}", f"--model-name={MODEL}"],
            ["run-id"], ["version"],
            resources=_resources("250m", "256Mi", "512Mi"), network=True,
        )
        promote = _step(
            "promote-to-staging", "promote",
            [f"--model-name={MODEL}", "--version={{inputs.parameters.version}}", "--alias=staging"],
            ["version"], [],
            resources=_resources("250m", "256Mi", "512Mi"), network=True,
        )
        with DAG(name="main"):
            t = train(arguments={"params-file": "{{workflow.parameters.params-file}}",
                                 "dataset": "{{workflow.parameters.dataset}}"})
            e = evaluate(arguments={"run-id": "{{tasks.train.outputs.parameters.run-id}}",
                                    "min-roc-auc": "{{workflow.parameters.min-roc-auc}}"})
            r = register(arguments={"run-id": "{{tasks.train.outputs.parameters.run-id}}"})
            p = promote(arguments={"version": "{{tasks.register.outputs.parameters.version}}"})
            t >> e >> r >> p
    return wt.to_dict()


def render() -> str:
    header = "# Generated by examples/training/pipeline.py (Hera). Edit the script, then run it.\n"
    return header + yaml.safe_dump(build(), sort_keys=False, width=120)


if __name__ == "__main__":
    OUTPUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUTPUT}", file=sys.stderr)
