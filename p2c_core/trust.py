"""What the queue function checks before it applies anything a message says.

A message is applied only when p2c signed it (signing.py). A message that is not signed
(queued before signing existed) or whose signature does not match is not dropped: each of
its records becomes a failure entry that keeps the record, under `unverified:<key>`, so an
operator who has looked replays it (`p2c replay --flow F --key unverified:K`), which
re-signs it; a real failure entry of the same record is never overwritten by it. Every
record, signed or replayed, must then pass `check_record`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from p2c_core.errors import MessageError
from p2c_core.state import Failure

if TYPE_CHECKING:
    from p2c_core.envelope import Envelope, Record
    from p2c_core.flow import Flow
    from p2c_core.runtime import Runtime

log = logging.getLogger("p2c.trust")

UNVERIFIED = "unverified:"


class UntrustedMessage(MessageError):
    """A message p2c did not sign (or that changed since): nothing in it is applied."""


class OperationRefused(MessageError):
    """A record asks for an operation p2c does not carry (deletes)."""


def unverified_key(key: str) -> str:
    return UNVERIFIED + key


def hold_unverified(rt: Runtime, flow: Flow, envelope: Envelope, problem: str) -> int:
    """Keep each record of an unverified message as a failure entry; returns how many."""
    how = f"not applied: {problem}; after review, `p2c replay --flow {flow.name} --key '{UNVERIFIED}<key>'` re-signs it"
    for record in envelope.records:
        held = record.model_copy(update={"force": False, "replay": False, "attempt": 0, "waiting_since": None})
        rt.state.record_failure(
            Failure(
                flow=flow.name,
                source_key=unverified_key(record.key),
                attempt=0,
                error_class=UntrustedMessage.__name__,
                message=how,
                record=held.model_dump_json(),
            )
        )
    log.warning(
        "message for flow %s not applied (%s): %d record(s) kept as failure entries",
        flow.name, problem, len(envelope.records),
        extra={"p2c.flow": flow.name, "p2c.error_class": UntrustedMessage.__name__},
    )  # fmt: skip
    return len(envelope.records)


def check_record(rt: Runtime, flow: Flow, record: Record) -> None:
    """Raise for a record that must not be applied, signed or not."""
    if record.op not in ("upsert", "delete"):  # deletes: made by p2c's poll (docs/lifecycle.md)
        raise OperationRefused(f"op {record.op!r} is not carried by p2c: not applied")
    rt.versions.check(flow, record)
