"""The local host keeps a running message invisible and lets a taken-over one go (on Azurite)."""

from __future__ import annotations

import copy
import time

import pytest
from azure.core.exceptions import HttpResponseError

from p2c_cli.host_messages import Renewal, settle


def test_a_message_running_past_its_lease_stays_invisible_and_is_deleted_by_its_runner(storage):
    queue = storage.queue("t-renew")
    queue.send_message(b"long")
    [message] = queue.receive_messages(max_messages=1, visibility_timeout=2)
    with Renewal(queue, message, lease_seconds=2):
        time.sleep(3.5)  # past the lease it was received with: renewed meanwhile
        assert list(queue.receive_messages(max_messages=1, visibility_timeout=1)) == []
    queue.delete_message(message)  # with the pop receipt of the last renewal
    assert queue.get_queue_properties().approximate_message_count == 0


def test_a_delete_of_a_message_another_delivery_took_over_is_left_alone(storage):
    queue = storage.queue("t-taken")
    queue.send_message(b"twice")
    [first] = queue.receive_messages(max_messages=1, visibility_timeout=30)
    stale = copy.copy(first)
    queue.update_message(first, visibility_timeout=30)  # the pop receipt changes
    settle(lambda: queue.delete_message(stale), stale.id)  # no error: the other delivery owns it
    assert queue.get_queue_properties().approximate_message_count == 1


def test_other_errors_of_a_delete_are_raised():
    error = HttpResponseError("server busy")
    error.error_code = "ServerBusy"  # type: ignore[attr-defined]

    def delete() -> None:
        raise error

    with pytest.raises(HttpResponseError):
        settle(delete, "m1")
