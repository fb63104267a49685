"""The error the local runner raises when a run cannot start or go on (bad template, unknown parameter, missing
secret...).

It has its own module so that every part of the runner (substitution, templates, pods, scheduling) can raise it
without importing the runner's entry module, which imports them all.
"""

from __future__ import annotations


class RunError(Exception):
    """The run cannot start (bad template, unknown parameter, missing secret file...)."""
