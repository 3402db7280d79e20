"""A document's line writes in few requests: changesets of at most MAX_BATCH_REQUESTS.

The creates and updates of one document's lines go as changesets (atomic: a line the
service refuses rolls its changeset back and the document fails or retries alone, as a
line written by itself would make it); the deletes of lines removed at the source go
as independent parts, where a line deleted meanwhile (404) is not an error. A 600-line
order is one `$batch` instead of 600 requests. Every write is idempotent (creates that
meet a line already there are redone as updates by the next attempt, which reads the
target's lines), so the changesets of one document need not be one transaction.
"""

from __future__ import annotations

from p2c_core.clients.batch import MAX_BATCH_REQUESTS, BatchRequest
from p2c_core.clients.odata import ODataClient
from p2c_core.errors import NotFoundError, ODataError


def send(odata: ODataClient, writes: list[BatchRequest], deletes: list[BatchRequest], *,
         size: int = MAX_BATCH_REQUESTS) -> None:  # fmt: skip
    """Write them all or raise the first error (the document's, for its failure entry)."""
    for start in range(0, len(writes), size):
        (answer,) = odata.changesets([writes[start : start + size]])
        if isinstance(answer, ODataError):
            raise answer
    for start in range(0, len(deletes), size):
        for result in odata.batch(deletes[start : start + size]):
            if isinstance(result, ODataError) and not isinstance(result, NotFoundError):
                raise result
