"""Idle F&O scans that cost the same however many rows the entity has: a window per tick.

F&O's P2C entities have no change marker p2c can read: no delta link and no modified
date-time or RecId among their properties (APIS.md, fno-entities.json), and F&O's OData
offers `$filter`, `$orderby`, `$top`, `$skip`, `$count` but no `$apply` aggregation
(learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/data-entities/odata, "Supported
features"), so no count-and-max check can see an edit. A scanned flow therefore reads one
window per tick, `P2C_FNO_SCAN_WINDOW` rows in key order after the last window's last key
(`$orderby=<key>&$top=<window>`, one request), and keeps one digest per window
(state/windows.py): an unchanged window is told by one point read, and only a changed one
reads its rows' digests (a RowKey range of `<flow>~seen`) to send on what changed. A full
pass takes ceil(rows / window) ticks: a change is seen within that many ticks, which is the
price of an idle tick that does not grow with the data (docs/benchmarks.md).

The range read covers the window's keys by their ordinal order, F&O sorts by its collation;
a key outside the range reads as not seen and is sent on again, which the key map's content
hash then drops: more work, never a lost change.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from p2c_core.clients.keys import literal
from p2c_core.hashing import canonical_hash
from p2c_core.state.windows import Window

if TYPE_CHECKING:
    from p2c_core.sources import FnoChanges, SourcePage

# The resume token of a windowed scan: `window:<number>:<key the window starts after>`.
WINDOW = "window:"


def applies(changes: FnoChanges, link: str | None) -> bool:
    """Windowed: a scanned source (not a date watermark) not looking for removed rows
    (a removal is told only by a whole pass), from the start or a window's token."""
    source = changes.source
    return bool(changes.window) and not source.since and not changes.find_gone and (
        link is None or link.startswith(WINDOW)
    )  # fmt: skip


def parse(link: str | None) -> tuple[int, str]:
    if not link:
        return 0, ""
    number, _, after = link[len(WINDOW) :].partition(":")
    return int(number), after


def pages(changes: FnoChanges, link: str | None) -> Iterator[SourcePage]:
    """One window: the changed rows of it, as one page that completes this tick's read."""
    from p2c_core.sources import SourcePage, _plain, digest

    number, after = parse(link)
    source, size = changes.source, changes.window
    terms = [source.where.odata()] if source.where else []
    if after:
        terms.append(f"{source.key} gt {literal(after)}")
    query = changes.client.query(
        source.entity_set, select=changes.select(), filter=" and ".join(terms) or None, orderby=source.key, top=size
    )
    rows = [_plain(r) for page in query for r in page.rows]
    keys = [str(r[source.key]) for r in rows if r.get(source.key)]
    row_digests = [[str(r.get(source.key)), digest(r)] for r in rows]
    window = Window(number, after, canonical_hash(row_digests, 24))
    resume = f"{WINDOW}{number + 1}:{keys[-1]}" if len(rows) >= size and keys else None
    stored = changes.state.windows.get(changes.flow.name, number, changes.scope)
    if stored == window:  # nothing in this window changed since it was sent on
        yield SourcePage(rows=[], resume=resume, done=True)
        return
    changes.use_seen(changes.state.seen_range(changes.flow.name, keys, changes.scope))
    changed, digests = changes.changed(rows)
    changes.add_lines(changed)
    yield SourcePage(rows=changed, resume=resume, done=True, digests=digests, window=window)
