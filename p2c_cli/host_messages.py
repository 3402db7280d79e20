"""What the Functions host does with a queue message while and after its function runs.

The host keeps a running message invisible: every half of the visibility it received the
message with, it sets that visibility again (the WebJobs queue listener's
UpdateQueueMessageVisibilityCommand), so a message that runs long is not delivered a second
time meanwhile. Deleting or releasing a message that another delivery took over (pop receipt
changed) or that is gone is no error: the host logs it and lets the other delivery finish
(QueueProcessor.DeleteMessageAsync and ReleaseMessageAsync of the WebJobs Storage Queues
extension, Azure SDK for .NET).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("p2c.host")

# The Queue service's error codes for a message taken over or gone.
TAKEN_OVER = ("PopReceiptMismatch", "MessageNotFound", "QueueNotFound")


class Renewal:
    """While the block runs, `message` stays invisible (its pop receipt follows each renewal)."""

    def __init__(self, client: Any, message: Any, lease_seconds: float) -> None:
        self.client, self.message, self.lease = client, message, max(int(lease_seconds), 1)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True, name="p2c-host-renew")

    def __enter__(self) -> Renewal:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        from azure.core.exceptions import HttpResponseError

        while not self._stop.wait(self.lease / 2):
            try:
                updated = self.client.update_message(self.message, visibility_timeout=self.lease)
            except HttpResponseError as exc:
                log.info("message %s: visibility not renewed (%s)", self.message.id, _code(exc))
                return  # taken over or gone: its delete will say so
            self.message.pop_receipt = updated.pop_receipt


def settle(call: Callable[[], object], message_id: str) -> None:
    """Delete or release a message; one another delivery took over, or gone, is left alone."""
    from azure.core.exceptions import HttpResponseError

    try:
        call()
    except HttpResponseError as exc:
        if _code(exc) not in TAKEN_OVER:
            raise
        log.info("message %s: taken over or gone (%s), left to the other delivery", message_id, _code(exc))


def _code(exc: Exception) -> str | None:
    # The storage SDK sets the service's error code on the errors it raises.
    return getattr(exc, "error_code", None)
