"""The model-version tags that drive a deployment, parsed and validated before anything is written.

Data scientists describe how a version should be served by tagging it in the registry. The values end up in a
KServe InferenceService through a pull request, so a wrong value must stop the workflow here with a message
naming the tag, not produce a manifest that the API server (or the scheduler) rejects later.

| tag             | meaning                                          | accepted values                           |
|-----------------|--------------------------------------------------|-------------------------------------------|
| runtime_version | serving runtime version (`runtimeVersion`)       | image-tag-safe string, e.g. `1.6.1`       |
| gpu_type        | GPU product to schedule on (node selector value) | label value, e.g. `NVIDIA-A100-SXM4-80GB` |
| gpu_count       | GPUs per replica (`nvidia.com/gpu` limit)        | integer >= 0 (>= 1 when gpu_type is set)  |
| replica_min     | `minReplicas` (0 = scale to zero)                | integer >= 0, not above replica_max       |
| replica_max     | `maxReplicas`                                    | integer >= 1                              |
| cpu             | CPU request per replica                          | Kubernetes quantity > 0, e.g. `500m`, `2` |
| memory          | memory request per replica                       | Kubernetes quantity > 0, e.g. `2Gi`       |

A tag that is absent (or blank) is ``None``: the manifest keeps its current value. Integers are capped at
2^31-1 because KServe's replica fields are int32. ``replica_max`` 0 is refused: KServe reads it as "no limit",
which is never what a tag meant. A memory value with the milli suffix (``512m`` = 0.512 bytes) is refused as the
usual typo for ``512Mi``. Other tags are ignored here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hera_flows.steps.common import StepError

INT_TAGS = ("gpu_count", "replica_min", "replica_max")
QUANTITY_TAGS = ("cpu", "memory")
STRING_TAGS = ("runtime_version", "gpu_type")
DEPLOYMENT_TAGS = ("runtime_version", "gpu_type", "gpu_count", "replica_min", "replica_max", "cpu", "memory")

INT32_MAX = 2**31 - 1
# Kubernetes resource.Quantity (apimachinery): a decimal number with a binary, decimal or exponent suffix.
_QUANTITY = re.compile(r"^(?P<number>[0-9]+(\.[0-9]*)?|\.[0-9]+)(?P<suffix>[KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$")
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def parse_deployment_tags(tags: Mapping[str, Any]) -> dict[str, Any]:
    """The ``deployment`` block of the context: every deployment tag, typed, or ``None`` when not set.

    Raises StepError naming the tag and the value at the first bad one.
    """
    raw = {name: _text(tags.get(name)) for name in DEPLOYMENT_TAGS}
    result: dict[str, Any] = {}
    for name in STRING_TAGS:
        result[name] = _string(name, raw[name])
    for name in INT_TAGS:
        result[name] = _integer(name, raw[name])
    for name in QUANTITY_TAGS:
        result[name] = _quantity(name, raw[name])

    if result["replica_max"] == 0:
        raise StepError("tag replica_max='0' is invalid: KServe reads 0 as 'no limit'; use a number >= 1")
    if result["gpu_type"] is not None and result["gpu_count"] == 0:
        raise StepError(
            f"tags gpu_type='{raw['gpu_type']}' and gpu_count='0' are inconsistent: a GPU type needs gpu_count >= 1 "
            "(remove gpu_type to serve on CPU)"
        )
    low, high = result["replica_min"], result["replica_max"]
    if low is not None and high is not None and low > high:
        raise StepError(
            f"tags replica_min='{raw['replica_min']}' and replica_max='{raw['replica_max']}' are inconsistent: "
            "replica_min must not exceed replica_max"
        )
    return {name: result[name] for name in DEPLOYMENT_TAGS}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _string(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    pattern, what = (
        (_LABEL_VALUE, "a Kubernetes label value (letters, digits, '-', '_', '.', at most 63, "
                       "starting and ending with a letter or digit)")
        if name == "gpu_type"
        else (_IMAGE_TAG, "a version/image tag (letters, digits, '_', '.', '-', at most 128)")
    )
    if not pattern.fullmatch(value):
        raise StepError(f"tag {name}={value!r} is invalid: expected {what}")
    return value


def _integer(name: str, value: str | None) -> int | None:
    if value is None:
        return None
    if not re.fullmatch(r"[0-9]+", value):
        raise StepError(f"tag {name}={value!r} is invalid: expected a whole number >= 0")
    number = int(value)
    if number > INT32_MAX:
        raise StepError(f"tag {name}={value!r} is invalid: at most {INT32_MAX}")
    return number


def _quantity(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    match = _QUANTITY.fullmatch(value)
    if not match:
        raise StepError(
            f"tag {name}={value!r} is invalid: expected a Kubernetes quantity such as "
            + ("'500m' or '2'" if name == "cpu" else "'512Mi' or '2Gi'")
        )
    if float(match.group("number")) == 0:
        raise StepError(f"tag {name}={value!r} is invalid: it must be greater than zero")
    if name == "memory" and match.group("suffix") == "m":
        raise StepError(f"tag memory={value!r} is invalid: 'm' means thousandths of a byte; did you mean "
                        f"'{match.group('number')}Mi'?")
    return value
