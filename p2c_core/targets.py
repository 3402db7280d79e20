"""Writing mapped records to a flow's target, idempotently."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from p2c_core.dataverse import DataverseClient
from p2c_core.errors import ConflictError, NotFoundError, PermanentError
from p2c_core.flow import Flow
from p2c_core.fno import FnoClient


@dataclass
class WriteResult:
    created: bool
    target_key: str


class TargetWriter(Protocol):
    def write(
        self, key: str, payload: Mapping[str, Any], create_only: Mapping[str, Any], known: bool
    ) -> WriteResult: ...


class FnoWriter:
    """F&O has no upsert: update when the record is known, create when missing.

    `known` (the key map has written this record before) skips the look-up: steady-state
    changes cost one request. A create that finds the record already there (a retry
    after a lost response) turns into an update.
    """

    def __init__(self, client: FnoClient, flow: Flow) -> None:
        self.client = client
        self.flow = flow

    def write(self, key: str, payload: Mapping[str, Any], create_only: Mapping[str, Any], known: bool) -> WriteResult:
        entity = self.flow.target.entity_set
        address = self.client.key(**{self.flow.target.key: key})
        body = {k: v for k, v in payload.items() if k != self.flow.target.key}
        if not known and self.client.get(entity, address, select=[self.flow.target.key]) is None:
            try:
                self.client.create(entity, {self.flow.target.key: key, **body, **create_only})
                return WriteResult(created=True, target_key=key)
            except (ConflictError, PermanentError) as exc:
                if not _already_exists(exc):
                    raise
        try:
            self.client.update(entity, address, body)
        except NotFoundError:
            self.client.create(entity, {self.flow.target.key: key, **body, **create_only})
            return WriteResult(created=True, target_key=key)
        return WriteResult(created=False, target_key=key)


def _already_exists(exc: Exception) -> bool:
    if isinstance(exc, ConflictError):
        return True
    text = str(exc).lower()
    return "already exists" in text or "duplicate" in text


class DataverseWriter:
    """Dataverse upserts by alternate key: PATCH without conditions."""

    def __init__(self, client: DataverseClient, flow: Flow) -> None:
        self.client = client
        self.flow = flow

    def write(self, key: str, payload: Mapping[str, Any], create_only: Mapping[str, Any], known: bool) -> WriteResult:
        body = {**payload, **({} if known else create_only)}
        body.pop(self.flow.target.key, None)
        self.client.upsert(self.flow.target.entity_set, {self.flow.target.key: key}, body)
        return WriteResult(created=not known, target_key=key)
