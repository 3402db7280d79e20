"""Columns Dataverse computes from others on save, which the table reference lists as
read-only (valid for neither create nor update): a client may not write them, so the
sandbox fills them as the real service does."""

from __future__ import annotations

from typing import Any

# contact.fullname: "Combines and shows the contact's first and last names" (contact table
# reference, powerapps-docs reference/entities/contact.md). The order follows the org's full
# name format (UserSettingsFullNameConventionCode: LastFirst = 0, FirstLast = 1, ...); the
# sandbox's org uses FirstLast (docs/fidelity.md).
_NAME_PARTS = ("firstname", "lastname")


def derived(logical: str, row: dict[str, Any]) -> dict[str, Any]:
    """The computed columns of a row about to be saved (none for most tables)."""
    if logical != "contact" or not any(row.get(part) for part in _NAME_PARTS):
        return {}
    return {"fullname": " ".join(str(row[part]) for part in _NAME_PARTS if row.get(part))}
