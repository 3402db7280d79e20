"""Rows of every entity set in SQLite: in memory by default, in a file when asked.

Each row carries the org-wide version at which it last changed (Dataverse's
versionnumber), and deletions leave tombstones, so change tracking can answer "what
changed since version N".
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

Row = dict[str, Any]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rows (eset TEXT, pk TEXT, version INTEGER, data TEXT, PRIMARY KEY (eset, pk));
CREATE INDEX IF NOT EXISTS rows_version ON rows (eset, version);
CREATE TABLE IF NOT EXISTS tombstones (eset TEXT, pk TEXT, version INTEGER);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER);
"""


class Store:
    def __init__(self, path: Path | None = None) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False, isolation_level=None)
        self.db.executescript(_SCHEMA)
        # Alternate keys compare case-insensitively (str.casefold); indexes on it need it deterministic.
        self.db.create_function("casefold", 1, _casefold, deterministic=True)
        self.lock = threading.RLock()
        # Called after each write when set (the F&O push, p2c_sandbox/push_fno.py): entity set,
        # key, the row written (for a delete: the row as it was) and whether it was a create.
        self.on_write: Callable[[str, str, Row, str], None] | None = None

    def close(self) -> None:
        with self.lock:
            self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside happen or none do (a `$batch` changeset); counters included."""
        with self.lock:
            self.db.execute("SAVEPOINT changeset")
            try:
                yield
            except BaseException:
                self.db.execute("ROLLBACK TO changeset")
                self.db.execute("RELEASE changeset")
                raise
            self.db.execute("RELEASE changeset")

    def is_empty(self) -> bool:
        with self.lock:
            return self.db.execute("SELECT COUNT(*) FROM rows").fetchone()[0] == 0

    def next(self, counter: str, start: int = 1) -> int:
        with self.lock:
            row = self.db.execute("SELECT value FROM counters WHERE name = ?", (counter,)).fetchone()
            value = (row[0] + 1) if row else start
            self.db.execute("INSERT OR REPLACE INTO counters VALUES (?, ?)", (counter, value))
            return value

    def current(self, counter: str) -> int:
        with self.lock:
            row = self.db.execute("SELECT value FROM counters WHERE name = ?", (counter,)).fetchone()
            return row[0] if row else 0

    def get(self, eset: str, pk: str) -> Row | None:
        with self.lock:
            row = self.db.execute("SELECT data FROM rows WHERE eset = ? AND pk = ?", (eset, pk)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, eset: str, pk: str, data: Row, version: int = 0) -> None:
        with self.lock:
            existed = self.on_write is not None and self.get(eset, pk) is not None
            self.db.execute("INSERT OR REPLACE INTO rows VALUES (?, ?, ?, ?)", (eset, pk, version, json.dumps(data)))
            if self.on_write is not None:
                self.on_write(eset, pk, data, "Updated" if existed else "Created")

    def delete(self, eset: str, pk: str, version: int = 0) -> None:
        with self.lock:
            before = self.get(eset, pk) if self.on_write is not None else None
            self.db.execute("DELETE FROM rows WHERE eset = ? AND pk = ?", (eset, pk))
            self.db.execute("INSERT INTO tombstones VALUES (?, ?, ?)", (eset, pk, version))
            if self.on_write is not None and before is not None:
                self.on_write(eset, pk, before, "Deleted")

    def scan(self, eset: str, *, after_pk: str | None = None, since: int = -1) -> Iterator[tuple[str, Row]]:
        """Rows in primary-key order (stable keyset paging), changed after `since`.

        Read a chunk at a time, so a reader that stops after one page pays for one page.
        """
        after = after_pk or ""
        while True:
            with self.lock:
                rows = self.db.execute(
                    "SELECT pk, data FROM rows WHERE eset = ? AND pk > ? AND version > ? ORDER BY pk LIMIT 1000",
                    (eset, after, since),
                ).fetchall()
            for pk, data in rows:
                yield pk, json.loads(data)
            if len(rows) < 1000:
                return
            after = rows[-1][0]

    def find_by(self, eset: str, key: dict[str, Any]) -> list[Row]:
        """Rows whose columns equal `key`'s values, strings compared casefolded (an alternate key).

        Answered from an index on those columns, built on first use: a scan would cost a
        lookup, and so every write by alternate key, the whole table.
        """
        columns = tuple(sorted(key))
        if not all(re.fullmatch(r"\w+", c) for c in (eset, *columns)):
            raise ValueError(f"not an entity set and columns: {eset} {columns}")
        terms = [f"casefold(json_extract(data, '$.{c}'))" for c in columns]
        name = f"rows_key_{eset}_{'_'.join(columns)}"
        with self.lock:
            # A partial index per entity set (the literal eset in the query makes it usable); asked
            # for each time, as a rolled-back changeset takes an index created inside it away.
            self.db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON rows ({', '.join(terms)}) WHERE eset = '{eset}'")
            where = " AND ".join(f"{t} = ?" for t in terms)
            # INDEXED BY: for ORDER BY pk the planner would rather walk the primary key, i.e. the table.
            rows = self.db.execute(
                f"SELECT data FROM rows INDEXED BY {name} WHERE eset = '{eset}' AND {where} ORDER BY pk",
                [_casefold(_sql_value(key[c])) for c in columns],
            ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def deleted_since(self, eset: str, since: int) -> list[str]:
        with self.lock:
            rows = self.db.execute(
                "SELECT DISTINCT pk FROM tombstones WHERE eset = ? AND version > ? ORDER BY pk", (eset, since)
            ).fetchall()
        return [r[0] for r in rows]


def _casefold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _sql_value(value: Any) -> Any:
    """A key value as json_extract gives it back: JSON true/false are 1/0."""
    return int(value) if isinstance(value, bool) else value
