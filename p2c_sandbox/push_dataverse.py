"""Dataverse webhooks from the sandbox: after each committed Create, Update or Delete, a
RemoteExecutionContext to every webhook step registered for it (registration.py).

The context is built as the service serializes it ("Use WebHooks to create external
handlers for server events", Request Body): MessageName, PrimaryEntityName and -Id, Stage
40, Mode 1 (asynchronous), OperationCreatedOn as `/Date(ms)/`, and InputParameters'
Target: the entity with the attributes the write set (an Update's Target holds only what
changed), or for a Delete an EntityReference.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from starlette.routing import Route

from p2c_sandbox.push import PushAdmin, Sender, send_dataverse, wcf_date
from p2c_sandbox.registration import Registrations, Webhook
from p2c_sandbox.store import Row

if TYPE_CHECKING:
    from p2c_sandbox.schema import EntitySchema

ENTITY = "Entity:http://schemas.microsoft.com/xrm/2011/Contracts"
REFERENCE = "EntityReference:http://schemas.microsoft.com/xrm/2011/Contracts"
ORGANIZATION = "4ef5b371-e89e-e711-8122-000d3aa2331c"
USER = "75c2dd85-e89e-e711-8122-000d3aa2331c"
BUSINESS_UNIT = "e2b9dd85-e89e-e711-8122-000d3aa2331c"
# Columns the server sets on every save: not what the caller changed (filtering attributes).
_SYSTEM = {"modifiedon", "versionnumber", "createdon"}


class DataversePush(PushAdmin):
    def __init__(self, schemas: dict[str, EntitySchema]) -> None:
        self.schemas = schemas
        self.registrations = Registrations({s.entity_type for s in schemas.values()})
        self.sender = Sender("dataverse")

    def committed(self, message: str, schema: EntitySchema, row: Row, before: Row | None, columns: set[str]) -> None:
        """A write committed: `columns` the caller set; an Update also counts what plug-ins changed."""
        changed = None
        if message == "Update":
            changed = {c for c in columns | {k for k in row if before is None or row.get(k) != before.get(k)}
                       if c not in _SYSTEM}  # fmt: skip
            changed = {_attribute(c) for c in changed}
        hooks = self.registrations.webhooks(message, schema.entity_type, changed)
        for hook in hooks:
            context = self.context(message, schema, row, changed, hook)
            self.sender.event(
                lambda oversized, h=hook, c=context: send_dataverse(self.sender, h.url, h.key, c, oversized)
            )

    def context(
        self, message: str, schema: EntitySchema, row: Row, changed: set[str] | None, hook: Webhook
    ) -> dict[str, Any]:
        pk = schema.keys[0]
        row_id = str(row[pk])
        if message == "Delete":
            target: dict[str, Any] = {"__type": REFERENCE, "Id": row_id, "KeyAttributes": [],
                                      "LogicalName": schema.entity_type, "Name": None, "RowVersion": None}  # fmt: skip
        else:
            attributes = [{"key": _attribute(k), "value": self.value(schema, k, v)} for k, v in row.items()
                          if changed is None or _attribute(k) in changed or k == pk]  # fmt: skip
            target = {"__type": ENTITY, "Attributes": attributes, "EntityState": None, "FormattedValues": [],
                      "Id": row_id, "KeyAttributes": [], "LogicalName": schema.entity_type,
                      "RelatedEntities": [], "RowVersion": str(row.get("versionnumber") or "") or None}  # fmt: skip
        return {
            "BusinessUnitId": BUSINESS_UNIT, "CorrelationId": str(uuid.uuid4()), "Depth": 1,
            "InitiatingUserId": USER, "InputParameters": [{"key": "Target", "value": target}],
            "IsExecutingOffline": False, "IsInTransaction": False, "IsOfflinePlayback": False, "IsolationMode": 1,
            "MessageName": message, "Mode": 1, "OperationCreatedOn": wcf_date(time.time()),
            "OperationId": str(uuid.uuid4()), "OrganizationId": ORGANIZATION, "OrganizationName": "sandbox",
            "OutputParameters": [],
            "OwningExtension": {"Id": hook.step_id, "KeyAttributes": [], "LogicalName": "sdkmessageprocessingstep",
                                "Name": hook.step_name, "RowVersion": None},
            "ParentContext": None, "PostEntityImages": [], "PreEntityImages": [],
            "PrimaryEntityId": row_id, "PrimaryEntityName": schema.entity_type, "RequestId": None,
            "SecondaryEntityName": "none", "SharedVariables": [], "Stage": 40, "UserId": USER,
        }  # fmt: skip

    def value(self, schema: EntitySchema, column: str, value: Any) -> Any:
        """A lookup (`_x_value`) as an EntityReference, as the SDK serializes it; else the value."""
        if not (column.startswith("_") and column.endswith("_value")) or value is None:
            return value
        name = _attribute(column)
        target = next((t for nav, t in schema.lookups.items() if schema.lookup_columns.get(nav, nav) == name), None)
        logical = self.schemas[target].entity_type if target in self.schemas else None
        return {"__type": REFERENCE, "Id": value, "KeyAttributes": [], "LogicalName": logical, "Name": None,
                "RowVersion": None}  # fmt: skip

    def routes(self) -> list[Route]:
        return self.push_routes()


def _attribute(column: str) -> str:
    """The attribute's logical name: `_parentcustomerid_value` -> `parentcustomerid`."""
    return column[1:-6] if column.startswith("_") and column.endswith("_value") else column
