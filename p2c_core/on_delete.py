"""What a flow may do when its source row is deleted or deactivated (`P2C_FLOWS__<FLOW>__ON_DELETE`).

Apart from the doing (lifecycle.py), so that settings can check a choice without loading
the engine. Why each flow offers what it does: docs/lifecycle.md.
"""

from __future__ import annotations

from p2c_core.flow import Dataverse, FinOps, Flow

IGNORE, HOLD, DEACTIVATE = "ignore", "hold", "deactivate"
# Sales tables a removal at the F&O side deactivates, and their inactive statecode: products 1
# (Product entity OptionSet attribute metadata, learn.microsoft.com). The statuscode is left
# out: Dataverse gives the state's default status reason (products: 2).
INACTIVE = {"products": 1}


def choices(flow: Flow) -> tuple[str, ...]:
    """What ON_DELETE may be for this flow."""
    customers = isinstance(flow.target, FinOps) and flow.target.entity_set == "CustomersV3"
    if isinstance(flow.source, Dataverse) and customers:
        return (IGNORE, HOLD)
    scanned = isinstance(flow.source, FinOps) and not flow.source.since  # a date watermark sees no removal
    if scanned and isinstance(flow.target, Dataverse) and flow.target.entity_set in INACTIVE:
        return (IGNORE, DEACTIVATE)
    return (IGNORE,)
