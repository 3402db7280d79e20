"""What the P2C solution's plug-ins and actions, and the server's ownership and lookup
annotation rules, may do with the Dataverse service: read its tables and rows, write
through it (as a plug-in's IOrganizationService does). A protocol, so that they depend on
this and not on the service that runs them."""

from __future__ import annotations

from typing import Any, Protocol

from starlette.requests import Request

from p2c_sandbox.schema import EntitySchema
from p2c_sandbox.service import ServiceError
from p2c_sandbox.store import Row, Store


class Org(Protocol):
    store: Store
    schemas: dict[str, EntitySchema]

    def insert(self, schema: EntitySchema, row: Row, columns: set[str]) -> Row: ...

    def modify(self, schema: EntitySchema, existing: Row, values: Row) -> Row: ...

    def remove(self, schema: EntitySchema, row: Row) -> None: ...

    # Below the plug-ins (ownership): a row saved as it is, a lookup bound by reference.
    def save(self, schema: EntitySchema, row: Row, *, created: bool) -> Row: ...

    def bind(self, target_set: str, ref: str) -> str: ...

    # Answering a request (the actions): the service root, a row as the Web API returns it.
    def root(self, request: Request) -> str: ...

    def project(
        self, request: Request, schema: EntitySchema, row: Row, cols: list[str], *, etag: bool = True
    ) -> Row: ...

    def not_found(self, schema: EntitySchema, key: dict[str, Any] | str) -> ServiceError: ...
