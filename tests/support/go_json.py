"""Re-export: what Argo Events (Go) does to a webhook request lives in hera_flows/local/standins/go_json.py."""

from hera_flows.local.standins.go_json import (  # noqa: F401
    MASKED_AUTHORIZATION,
    argo_delivered,
    argo_event_data,
    go_compact,
    go_header,
    go_string,
)
