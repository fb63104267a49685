"""Steps of the failure-triage pattern: guard, context (Kubernetes API), classify, smoke (schema check)."""
