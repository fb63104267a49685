"""hera-flows: Argo Workflows and Argo Events manifests for agent-driven MLOps automation."""

__version__ = "0.1.0"
