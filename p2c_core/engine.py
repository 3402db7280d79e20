"""The one engine that runs every flow: poll (source -> queue) and apply (queue -> target).

Invariants kept (DESIGN.md): the cursor moves only after the changes it covers are
enqueued (1, `poll`); applying any delivery any number of times, in any order, has one
effect (2, `apply`); an older source version never overwrites a newer one (3); every
failure is a failure entry plus a poison message, and replayable (6, `failing`, `replay`).
"""

from p2c_core.apply import PAUSED_DELAY_S, apply, apply_record
from p2c_core.controls import paused
from p2c_core.failing import RECORD_BACKOFF
from p2c_core.outcome import Counts, Outcome
from p2c_core.poll import fit_message, poll
from p2c_core.replay import replay

__all__ = [
    "PAUSED_DELAY_S",
    "RECORD_BACKOFF",
    "Counts",
    "Outcome",
    "apply",
    "apply_record",
    "fit_message",
    "paused",
    "poll",
    "replay",
]
