"""What goes to a poison queue for an unreadable message: itself if it fits, else a stand-in."""

from __future__ import annotations

import hashlib
import json

from p2c_core.envelope import MAX_JSON_BYTES
from p2c_core.poison import HEAD_BYTES, copy_of


def test_a_message_that_fits_goes_as_it_is():
    assert copy_of(b"not json", "accounts", "message-1") == b"not json"


def test_an_oversized_one_goes_as_a_small_hashed_stand_in_pointing_at_its_failure():
    raw = b"\xff" + b"x" * (MAX_JSON_BYTES + 10)
    stand_in = json.loads(copy_of(raw, "accounts", "message-abc"))
    assert stand_in["failure"] == {"flow": "accounts", "source_key": "message-abc"}
    assert stand_in["sha256"] == hashlib.sha256(raw).hexdigest() and stand_in["bytes"] == len(raw)
    assert len(stand_in["head"]) <= HEAD_BYTES and len(copy_of(raw, "accounts", "m")) < 4096
