"""Secrets never leave the cluster in text: every PR/issue body, comment and agent context passes through here.

Pod logs, alert annotations and registry tags are written by programs that sometimes print what they should not
(``password=...`` in a connection string, ``AWS_SECRET_ACCESS_KEY=...`` in a dumped environment, a bearer token
in an HTTP error). :func:`redact` replaces the secret part with ``***`` and keeps the rest readable:

- well-known token shapes: AWS access key ids, GitHub/GitLab/Slack tokens, OpenAI/Anthropic-style ``sk-`` keys,
  Google API keys, JWTs, PEM private key blocks, ``user:password@`` in URLs, ``Authorization``/``Bearer`` values;
- the value of an assignment whose name looks secret (``password``, ``secret``, ``token``, ``api_key``,
  ``access_key``, ``credentials``, ... in ``NAME=value``, ``NAME: value`` and ``"NAME": "value"`` forms);
- the values of named variables (``names``: e.g. the environment variables a pod fills from Secrets, which the
  triage context reads from the pod spec) and exact values (``values``: e.g. this step's own tokens).

It over-redacts rather than under-redacts: a reviewer loses a little context, never a credential.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

MASK = "***"
# Environment variables of our own steps that hold Secret values: never echoed, whatever text they appear in.
OWN_SECRET_ENV = ("HF_FORGE_TOKEN", "HF_WEBHOOK_SECRET", "HF_DATABRICKS_SECRET", "HF_DRIFT_TOKEN",
                  "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_PASSWORD", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
_MIN_EXACT_VALUE = 6  # shorter "secrets" would redact ordinary words

_SECRET_WORD = (r"(?:password|passwd|pwd|passphrase|secret|token(?!iz|s\b|s_|_count|_len|_limit)|credentials?|"
                r"api[_-]?key|apikey|access[_-]?key|"
                r"private[_-]?key|account[_-]?key|auth[_-]?key|client[_-]?secret|session[_-]?key|signing[_-]?key|"
                r"encryption[_-]?key|master[_-]?key|connection[_-]?string)")
_NAME = rf"[A-Za-z0-9_.-]*{_SECRET_WORD}[A-Za-z0-9_.-]*"
_VALUE = r"(?:\"[^\"\n]*\"|'[^'\n]*'|[^\s,;&\"'}\])]+)"

_PATTERNS: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    (re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.S),
     "-----BEGIN PRIVATE KEY----- *** -----END PRIVATE KEY-----"),
    (re.compile(r"(?i)\b((?:proxy-)?authorization)(\s*[:=]\s*)(?:(bearer|basic|token|digest)\s+)?[^\s,;]+"),
     lambda m: f"{m.group(1)}{m.group(2)}{(m.group(3) + ' ') if m.group(3) else ''}{MASK}"),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\1 {MASK}"),
    (re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}\b"), MASK),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}\b"), MASK),
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}\b"), MASK),
    (re.compile(r"\bglpat-[A-Za-z0-9_-]{16,}\b"), MASK),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"), MASK),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{20,}\b"), MASK),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), MASK),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b"), MASK),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@"), rf"\1{MASK}@"),
    # "NAME": "value" (JSON), NAME=value, NAME: value, --name=value
    (re.compile(rf"(?i)([\"']?{_NAME}[\"']?)(\s*[:=]\s*)({_VALUE})"), rf"\1\2{MASK}"),
]


def _name_pattern(names: Iterable[str]) -> re.Pattern[str] | None:
    wanted = sorted({n for n in names if n and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,200}", n)}, key=len,
                    reverse=True)
    if not wanted:
        return None
    alternatives = "|".join(re.escape(n) for n in wanted)
    return re.compile(rf"([\"']?\b(?:{alternatives})\b[\"']?)(\s*[:=]\s*)({_VALUE})")


def own_secret_values() -> list[str]:
    """The Secret-backed values this step holds (its tokens), so no text it writes can echo them."""
    return [v for v in (os.environ.get(name, "") for name in OWN_SECRET_ENV) if len(v) >= _MIN_EXACT_VALUE]


def redact(text: str, *, names: Iterable[str] = (), values: Iterable[str] = ()) -> str:
    """``text`` with every secret it holds replaced by ``***`` (see the module docstring)."""
    if not text:
        return text
    for value in sorted({v for v in values if v and len(v) >= _MIN_EXACT_VALUE}, key=len, reverse=True):
        text = text.replace(value, MASK)
    named = _name_pattern(names)
    if named is not None:
        text = named.sub(rf"\1\2{MASK}", text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _secret_key(key: str) -> bool:
    return re.fullmatch(rf"(?i){_NAME}", key) is not None


def redact_data(data: Any, *, names: Iterable[str] = (), values: Iterable[str] = ()) -> Any:
    """A JSON-like structure with every string redacted, and the value of every secret-looking key masked."""
    names, values = list(names), list(values)
    if isinstance(data, str):
        return redact(data, names=names, values=values)
    if isinstance(data, Mapping):
        out: dict[Any, Any] = {}
        for key, value in data.items():
            if isinstance(key, str) and (_secret_key(key) or key in names) and isinstance(value, (str, int, float)) \
                    and not isinstance(value, bool) and str(value) != "":
                out[key] = MASK
            else:
                out[key] = redact_data(value, names=names, values=values)
        return out
    if isinstance(data, list):
        return [redact_data(item, names=names, values=values) for item in data]
    return data
