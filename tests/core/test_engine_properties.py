"""Property: any multiset and order of deliveries has the effect of one in-order delivery.

The state (key map, leases) is real, on Azurite; the target is an in-memory writer that
records every write, so the test sees duplicates and stale overwrites directly.
"""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2c_core import engine
from p2c_core.envelope import Record
from p2c_core.flow import Flow
from p2c_core.flows import get_flow
from p2c_core.runtime import Runtime
from p2c_core.settings import Settings
from p2c_core.targets import TargetWriter, WriteItem, WriteResult

accounts = get_flow("accounts")


class MemoryTarget:
    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.creates: dict[str, int] = {}

    def write(self, item: WriteItem) -> WriteResult:
        if item.key not in self.rows:
            self.creates[item.key] = self.creates.get(item.key, 0) + 1
            self.rows[item.key] = {**item.payload, **item.create_only}
        else:
            self.rows[item.key].update(item.payload)
        return WriteResult(target_key=item.key)


class MemoryRuntime(Runtime):
    target: MemoryTarget

    def writer(self, flow: Flow, company: str | None = None) -> TargetWriter:
        return self.target


def make_runtime(storage) -> MemoryRuntime:
    s = Settings(dataverse_url="http://127.0.0.1:1", fno_url="http://127.0.0.1:2", fno_company="usmf",
                 auth_mode="none")  # fmt: skip
    rt = MemoryRuntime(settings=s, storage=storage)
    rt.target = MemoryTarget()
    rt.versions.note(accounts, [50])  # as a poll records what it read before enqueueing it
    return rt


def change(key: str, version: int) -> Record:
    return Record(key=key, version=version, data={"accountnumber": key, "name": f"{key} v{version}"})


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[Record], list[Record]]:
    keys = draw(st.lists(st.sampled_from(["A-1", "O'Brien", "B/2"]), min_size=1, max_size=3, unique=True))
    changes = [change(k, v) for k in keys for v in sorted(draw(st.sets(st.integers(1, 50), min_size=1, max_size=4)))]
    extra = draw(st.lists(st.sampled_from(changes), max_size=6))
    order = draw(st.permutations(changes + extra))
    return changes, list(order)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=deliveries())
def test_any_delivery_order_and_multiplicity_gives_the_in_order_result(storage, case):
    changes, delivered = case
    rt = make_runtime(storage)
    prefix = f"p{uuid.uuid4().hex[:12]}-"  # examples share the storage fixture: each its own keys
    delivered = [r.model_copy(update={"key": prefix + r.key}) for r in delivered]
    for record in delivered:
        out = engine.Outcome("accounts", "apply")
        engine.apply_record(rt, accounts, record, out)
        assert out.counts.failed == 0 and out.counts.retried == 0
    newest: dict[str, int] = {}
    for r in changes:
        newest[prefix + r.key] = max(newest.get(prefix + r.key, 0), r.version)
    assert set(rt.target.rows) == set(newest)
    for key, version in newest.items():
        assert rt.target.rows[key]["OrganizationName"] == f"{key.removeprefix(prefix)} v{version}"
        assert rt.target.creates[key] == 1
