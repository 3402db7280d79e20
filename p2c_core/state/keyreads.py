"""Reading many rows of one partition in few requests: a query per 14 row keys.

Table Storage has no multi-get, but one query can name several rows:
`PartitionKey eq 'p' and (RowKey eq 'a' or RowKey eq 'b' ...)`. A `$filter` holds at most
15 discrete comparisons (https://learn.microsoft.com/rest/api/storageservices/querying-tables-and-entities),
the `PartitionKey eq` among them, so a query names at most 14 rows.

The trade-off, on real Azure: the service serves such a filter as a partition scan, not as
point reads nor as a range query
(https://learn.microsoft.com/azure/storage/tables/table-storage-design-for-query). Each
query is one billed request (and one round trip) instead of up to 14, but its server time
grows with the partition; a query that runs past five seconds answers with a continuation
token (https://learn.microsoft.com/rest/api/storageservices/query-timeout-and-pagination):
every page is followed, each a request of its own. Where a partition has only one row to
read, it is a point read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from p2c_core.state.tables import chunks

if TYPE_CHECKING:
    from azure.data.tables import TableClient

# At most 15 comparisons in one `$filter` (above); one of them is the partition's.
MAX_COMPARISONS = 15
ROWS_PER_QUERY = MAX_COMPARISONS - 1


def literal(value: str) -> str:
    """A string constant of a `$filter`: in single quotes, each single quote doubled (OData)."""
    return "'" + value.replace("'", "''") + "'"


def rows_filter(partition: str, rows: Sequence[str]) -> str:
    """The filter naming `rows` of `partition`: 1 + len(rows) comparisons."""
    if not 0 < len(rows) <= ROWS_PER_QUERY:
        raise ValueError(f"a filter names 1 to {ROWS_PER_QUERY} rows, not {len(rows)}")
    either = " or ".join(f"RowKey eq {literal(r)}" for r in rows)
    return f"PartitionKey eq {literal(partition)} and ({either})"


def read_rows(client: TableClient, partition: str, rows: Sequence[str]) -> dict[str, Any]:
    """The entities of `rows` in `partition`, by row key; a row that is not there is absent
    (as a point read that finds nothing). One row: a point read; more: a query per 14."""
    from azure.core.exceptions import ResourceNotFoundError

    wanted = list(dict.fromkeys(rows))
    if len(wanted) == 1:
        try:
            return {wanted[0]: client.get_entity(partition, wanted[0])}
        except ResourceNotFoundError:
            return {}
    named, found = set(wanted), {}
    for part in chunks(wanted, ROWS_PER_QUERY):
        for entity in client.query_entities(rows_filter(partition, part)):
            if entity["RowKey"] in named:  # the filter names only these; kept to be sure
                found[entity["RowKey"]] = entity
    return found
