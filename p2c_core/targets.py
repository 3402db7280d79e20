"""Writing mapped records to a flow's target, idempotently, documents with their lines."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from p2c_core import line_writes
from p2c_core.clients.batch import BatchRequest
from p2c_core.clients.dataverse import DataverseClient
from p2c_core.clients.fno import FnoClient
from p2c_core.clients.keys import key_segment
from p2c_core.compare import bound_id, identity, same
from p2c_core.errors import ConflictError, NotFoundError, P2CError, PermanentError, PreconditionFailedError
from p2c_core.flow import Flow, Lines, id_column
from p2c_core.sources import any_of


@dataclass
class WriteResult:
    """A record written (or, for a create-only flow, found there and left alone)."""

    target_key: str


@dataclass
class LineWrite:
    key: Any
    payload: dict[str, Any]
    create_only: dict[str, Any]


@dataclass
class WriteItem:
    """One record's write: natural key, mapped fields, create-only fields, lines."""

    key: str
    payload: Mapping[str, Any]
    create_only: Mapping[str, Any]
    known: bool  # the key map says p2c wrote it before
    lines: list[LineWrite] | None = None


class TargetWriter(Protocol):
    """Writes one record (with its lines) to a flow's target, idempotently."""

    def write(self, item: WriteItem) -> WriteResult: ...


@runtime_checkable
class BatchWriter(TargetWriter, Protocol):
    """A writer that can also send many header-only records in one `$batch`."""

    def write_many(self, items: list[WriteItem]) -> list[WriteResult | P2CError]:
        """Write header-only records in few round trips; one result or error per item."""
        ...


class FnoWriter:
    """F&O has no upsert: update when the record is known, create when missing.

    `known` (the key map has written this record before) skips the look-up: steady-state
    changes cost one request. A create that finds the record already there (a retry
    after a lost response) turns into an update. Lines are compared with the target's
    and only the differences are written.
    """

    def __init__(self, client: FnoClient, flow: Flow) -> None:
        self.client = client
        self.flow = flow

    def address(self, key: str, payload: Mapping[str, Any]) -> dict[str, str | int]:
        target = self.flow.target
        return self.client.key(**{target.key: key}, **{k: payload[k] for k in getattr(target, "more_keys", ())})

    def write(self, item: WriteItem) -> WriteResult:
        entity = self.flow.target.entity_set
        address = self.address(item.key, item.payload)
        body = {k: v for k, v in item.payload.items() if k not in address}
        created = self._header(entity, address, body, item.create_only, item.known)
        # Lines too when the header was there already: an earlier attempt may have
        # created it and failed before its lines (create-only flows included).
        if item.lines is not None and self.flow.lines is not None:
            self._lines(self.flow.lines, item.key, item.lines, fresh=created)
        return WriteResult(target_key=item.key)

    def write_many(self, items: list[WriteItem]) -> list[WriteResult | P2CError]:
        """One `$batch`: a create for each record p2c has not written, an update for the others.

        No look-up first: a create that meets an existing record (or an update that meets
        none) is answered alone, and is redone by `write`, which settles either case. On an
        initial load almost every record is new, so a message costs one round trip.
        """
        target, client = self.flow.target, self.client
        if getattr(target, "more_keys", ()):
            return [_alone(self, item) for item in items]
        requests: list[BatchRequest] = []
        for item in items:
            address = self.address(item.key, item.payload)
            body = {k: v for k, v in item.payload.items() if k not in address}
            if item.known:
                requests.append(client.update_request(target.entity_set, address, body))
            else:
                full = {**{k: v for k, v in address.items() if k != "dataAreaId"}, **body, **item.create_only}
                requests.append(client.create_request(target.entity_set, full))

        def guessed_wrong(item: WriteItem, error: P2CError) -> bool:
            return _already_exists(error) if not item.known else isinstance(error, NotFoundError)

        return _results(self, items, client.odata.batch(requests), guessed_wrong)

    def _header(
        self,
        entity: str,
        address: dict[str, str | int],
        body: dict[str, Any],
        create_only: Mapping[str, Any],
        known: bool,
    ) -> bool:
        """Create when missing, else update (a create-only flow leaves an existing record alone).
        True when this call created it (so it has no lines yet)."""
        full = {**{k: v for k, v in address.items() if k != "dataAreaId"}, **body, **create_only}
        if not known and self.client.get(entity, address, select=[self.flow.target.key]) is None:
            try:
                self.client.create(entity, full)
                return True
            except (ConflictError, PermanentError) as exc:
                if not _already_exists(exc):
                    raise
        if self.flow.create_only:
            return False
        try:
            self.client.update(entity, address, body)
        except NotFoundError:
            self.client.create(entity, full)
            return True
        return False

    def _lines(self, spec: Lines, number: str, lines: list[LineWrite], *, fresh: bool = False) -> None:
        """The differences from the target's lines, in changesets (line_writes.py); a header
        created just now has none, so they are not read."""
        assert spec.target_key is not None, "F&O lines are matched by their key"
        select = list(dict.fromkeys([spec.target_key, *(c for line in lines for c in line.payload)]))
        current: dict[Any, dict[str, Any]] = {}
        if not fresh:
            for page in self.client.query(spec.target, select=select, filter=any_of(spec.target_parent, [number])):
                for row in page.rows:
                    current[row[spec.target_key]] = row
        writes: list[BatchRequest] = []
        for line in lines:
            address = self.client.key(**{spec.target_parent: number, spec.target_key: line.key})
            body = {k: v for k, v in line.payload.items() if k not in address}
            now = current.pop(line.key, None)
            if now is None:
                full = {spec.target_parent: number, spec.target_key: line.key, **body, **line.create_only}
                writes.append(self.client.create_request(spec.target, full))
                continue
            changed = {k: v for k, v in body.items() if not same(now.get(k), v)}
            if changed:
                writes.append(self.client.update_request(spec.target, address, changed))
        gone = [
            BatchRequest("DELETE", key_segment(spec.target, self.client.key(**{spec.target_parent: number,
                                                                              spec.target_key: key})),
                         {"cross-company": "true"})
            for key in current
        ]  # fmt: skip
        line_writes.send(self.client.odata, writes, gone)


def _results(
    writer: TargetWriter,
    items: list[WriteItem],
    answers: list[Any],
    guessed_wrong: Callable[[WriteItem, P2CError], bool],
) -> list[WriteResult | P2CError]:
    """One result per batched item: written, its own error, or (when the batch took it for
    new and it was not, or the other way round) written alone by `write`, which looks first."""
    out: list[WriteResult | P2CError] = []
    for item, answer in zip(items, answers, strict=True):
        if not isinstance(answer, P2CError):
            out.append(WriteResult(target_key=item.key))
        elif guessed_wrong(item, answer):
            out.append(_alone(writer, item))
        else:
            out.append(answer)
    return out


def _alone(writer: TargetWriter, item: WriteItem) -> WriteResult | P2CError:
    try:
        return writer.write(item)
    except P2CError as exc:
        return exc


def _already_exists(exc: Exception) -> bool:
    if isinstance(exc, ConflictError):
        return True
    text = str(exc).lower()
    return "already exists" in text or "duplicate" in text


class DataverseWriter:
    """Dataverse upserts by alternate key (PATCH); create-only fields go only into a create.

    A record p2c has not written before is looked up first, so a record that exists
    (e.g. a Sales-born order coming back from F&O) is updated, never re-marked.
    """

    def __init__(self, client: DataverseClient, flow: Flow, gone: Callable[[str], None] | None = None) -> None:
        self.client = client
        self.flow = flow
        # Told the id of a bound row a write found missing (deleted in Sales): a cached
        # reference to forget (references.py), so the next look-up asks again.
        self.gone = gone

    def write(self, item: WriteItem) -> WriteResult:
        try:
            return self._write(item)
        except NotFoundError as exc:
            self._dangling(item, exc)
            raise

    def _dangling(self, item: WriteItem, error: P2CError) -> None:
        """A 404 naming a row the item binds (`uom With Id = <id> Does Not Exist`): that id is gone."""
        if self.gone is None or not isinstance(error, NotFoundError):
            return
        text = str(error).lower()
        for name, value in {**item.payload, **item.create_only}.items():
            guid = bound_id(value) if name.endswith("@odata.bind") else None
            if guid and guid in text:
                self.gone(guid)

    def _write(self, item: WriteItem) -> WriteResult:
        target = self.flow.target
        pk = id_column(target.entity_set)
        alternate = {target.key: item.key}
        body = {k: v for k, v in item.payload.items() if k != target.key}
        guid: str | None = None
        exists = item.known
        if not item.known:
            row = self.client.get(target.entity_set, alternate, select=[pk])
            exists, guid = row is not None, (row or {}).get(pk)
        if exists and self.flow.create_only:
            return WriteResult(target_key=item.key)
        written = self.client.upsert(
            target.entity_set,
            alternate,
            body if exists else {**body, **item.create_only},
            returning=pk if self.flow.lines is not None else None,
        )
        guid = (written or {}).get(pk) or guid
        if item.lines is not None and self.flow.lines is not None:
            assert guid is not None, "upsert returned no id"
            self._lines(self.flow.lines, guid, item.lines, fresh=not exists)
        return WriteResult(target_key=item.key)

    def write_many(self, items: list[WriteItem]) -> list[WriteResult | P2CError]:
        """One `$batch` of upserts by alternate key, without a look-up first.

        A record p2c has not written goes as a create (`If-None-Match: *`) with its
        create-only fields. The ones that turn out to exist (412) go together in one more
        `$batch` as updates (`If-Match: *`) without them; a create-only flow leaves them alone.
        """
        target, client = self.flow.target, self.client
        requests: list[BatchRequest] = []
        for item in items:
            body = {k: v for k, v in item.payload.items() if k != target.key}
            alternate = {target.key: item.key}
            if item.known:
                requests.append(client.upsert_request(target.entity_set, alternate, body))
            else:
                requests.append(client.create_request(target.entity_set, alternate, {**body, **item.create_only}))

        answers: list[Any] = list(client.odata.batch(requests))
        existing = [
            i for i, (item, answer) in enumerate(zip(items, answers, strict=True))
            if not item.known and isinstance(answer, PreconditionFailedError)
        ]  # fmt: skip
        if existing:
            redone = self._update_existing([items[i] for i in existing])
            for i, result in zip(existing, redone, strict=True):
                # Deleted between the create and the update (404): the 412 stands, and `write`
                # looks and settles it.
                if not isinstance(result, NotFoundError):
                    answers[i] = result

        def guessed_wrong(item: WriteItem, error: P2CError) -> bool:
            return not item.known and isinstance(error, PreconditionFailedError)

        for item, answer in zip(items, answers, strict=True):
            self._dangling(item, answer)
        return _results(self, items, answers, guessed_wrong)

    def _update_existing(self, items: list[WriteItem]) -> list[Any]:
        """Records a batched create found there already: one `$batch` of updates by alternate
        key (`If-Match: *`: a row deleted meanwhile is a 404, not a row without its create-only
        fields); a create-only flow leaves them as they are, without a request."""
        if self.flow.create_only:
            return [None] * len(items)
        target = self.flow.target
        updates = [
            self.client.update_request(
                target.entity_set, {target.key: item.key}, {k: v for k, v in item.payload.items() if k != target.key}
            )
            for item in items
        ]
        return list(self.client.odata.batch(updates))

    def _lines(self, spec: Lines, parent: str, lines: list[LineWrite], *, fresh: bool = False) -> None:
        """The lines in changesets (line_writes.py); a header not there before has none to read."""
        pk = id_column(spec.target)
        parent_column = f"_{spec.target_parent}_value"
        match = [spec.target_key] if spec.target_key else [f"_{c}_value" for c in spec.match]
        current: dict[tuple[Any, ...], str] = {}
        mine = f"{parent_column} eq {parent}" + (f" and {spec.owned.odata()}" if spec.owned else "")
        for page in [] if fresh else self.client.query(spec.target, select=[pk, *match], filter=mine):
            for row in page.rows:
                current[tuple(identity(row.get(c)) for c in match)] = row[pk]
        parent_set = self.flow.target.entity_set
        writes: list[BatchRequest] = []
        for line in lines:
            if spec.target_key:
                ident: tuple[Any, ...] = (identity(line.key),)
            else:
                ident = tuple(identity(bound_id(line.payload.get(f"{c}@odata.bind"))) for c in spec.match)
            guid = current.pop(ident, None)
            if guid is None:
                # Created by PATCH to an id derived from the document and line: a retried
                # create (lost response) updates the same row instead of adding a second.
                guid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"p2c:{spec.target}:{parent}:{ident}"))
                parent_bind = {f"{spec.target_parent}@odata.bind": f"/{parent_set}({parent})"}
                body = {**line.payload, **line.create_only, **parent_bind}
                writes.append(BatchRequest("PATCH", key_segment(spec.target, guid), json_body=body))
            else:
                writes.append(
                    BatchRequest("PATCH", key_segment(spec.target, guid), headers={"If-Match": "*"},
                                 json_body=dict(line.payload))
                )  # fmt: skip
        gone = [BatchRequest("DELETE", key_segment(spec.target, guid)) for guid in current.values()]
        line_writes.send(self.client.odata, writes, gone)
