"""The code that runs inside the workflow pods, one module per step: `hera-flows step NAME ...`.

Every step module declares its ``CONTRACT`` (hera_flows/steps/contract.py) and a ``main(argv)``; the table of step
names comes from the pattern records (hera_flows/catalog.py): shared steps live here, each pattern's own under
``hera_flows/steps/<pattern id>/``. Modules are imported lazily (only the one step that runs), so a pod does not pay
for mlflow or kubernetes imports it does not need.
"""

from __future__ import annotations

import importlib
from typing import Any

from hera_flows.catalog import step_aliases, step_modules

# step name -> module (whose ``main`` runs it); earlier names keep working for workflows started before an upgrade.
STEPS: dict[str, str] = step_modules()
ALIASES: dict[str, str] = step_aliases()


def step_contract(name: str) -> Any:
    """The ``Step`` contract of step ``name`` (imports only that step's module)."""
    return importlib.import_module(STEPS[ALIASES.get(name, name)]).CONTRACT
