"""Benefits without applying in the demo city 演示市: every rule in force runs once over the
seeded population, so the residents aged 80 or older hold 高龄津贴 and see why. A re-run
grants nothing new (the runs are idempotent)."""

from typing import Any

from .errors import DataNotGranted
from .services import entitlements_run


def entitlements_demo_seed(*, actor: Any) -> dict[str, int]:
    """Run the rules; a seed without the demo's sharing grants (no data administrator to
    approve them) has no data to run them on, and grants nothing."""
    try:
        outcomes = entitlements_run(actor=actor)
    except DataNotGranted:
        return {"benefits granted": 0}
    return {"benefits granted": sum(o.run.granted for o in outcomes)}
