"""The one way a step reaches the Kubernetes API: the pod's ServiceAccount, or KUBECONFIG on a laptop.

Shared by the lease store (guards), the drift guard's self-labelling and the triage readers, so credentials
are found the same way everywhere and a missing token is one clear line, not a traceback.
"""

from __future__ import annotations

import os
from typing import Any

from hera_flows.steps.common import StepError


def load_api_client(hint: str) -> Any:
    """An ``ApiClient`` from in-cluster credentials, falling back to the kubeconfig named by KUBECONFIG.

    ``hint`` finishes the error sentence: what to do when there are no credentials at all.
    """
    from kubernetes import client, config

    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        try:
            # KUBECONFIG is read now, not when the kubernetes package was imported
            config.load_kube_config(config_file=os.environ.get("KUBECONFIG") or None,
                                    client_configuration=configuration)
        except (config.ConfigException, OSError) as exc:
            raise StepError(f"no Kubernetes credentials ({exc}): {hint}") from None
    return client.ApiClient(configuration)
