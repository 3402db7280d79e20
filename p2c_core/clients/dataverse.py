"""Dataverse Web API specifics on the shared OData client."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from p2c_core.clients.batch import BatchRequest
from p2c_core.clients.keys import key_segment
from p2c_core.clients.odata import ODataClient, Page, Row, ServiceProfile
from p2c_core.errors import NotFoundError

PROFILE = ServiceProfile(
    name="dataverse",
    root_path="/api/data/v9.2/",
    headers={
        "OData-MaxVersion": "4.0",
        "OData-Version": "4.0",
        "Accept": "application/json",
        "Content-Type": "application/json; charset=utf-8",
    },
    request_id_headers=("x-ms-service-request-id", "REQ_ID"),
    max_concurrency=52,  # service protection: 52 concurrent requests per user
)


class DataverseClient:
    def __init__(self, odata: ODataClient, *, page_size: int = 5000) -> None:
        self.odata = odata
        self.page_size = page_size

    def _prefer(self, *extra: str) -> dict[str, str]:
        return {"Prefer": ",".join([f"odata.maxpagesize={self.page_size}", *extra])}

    def track_changes(self, entity_set: str, select: list[str], link: str | None) -> Iterator[Page]:
        """Change tracking: from `link` (a nextLink or deltaLink) or a new initial read."""
        headers = self._prefer("odata.track-changes")
        if link:
            return self.odata.pages(link, headers=headers)
        return self.odata.pages(entity_set, params={"$select": ",".join(select)}, headers=headers)

    def query(self, entity_set: str, *, select: list[str], filter: str | None = None) -> Iterator[Page]:
        params = {"$select": ",".join(select)}
        if filter:
            params["$filter"] = filter
        return self.odata.pages(entity_set, params=params, headers=self._prefer())

    def upsert(
        self, entity_set: str, key: Mapping[str, str], body: Mapping[str, Any], *, returning: str | None = None
    ) -> Row | None:
        """PATCH by alternate key without conditions: creates or updates.

        `returning`: a column to read back from the written row (its id), in the same request.
        """
        if returning is None:
            self.odata.request("PATCH", key_segment(entity_set, key), json_body=dict(body))
            return None
        response = self.odata.request(
            "PATCH",
            key_segment(entity_set, key),
            params={"$select": returning},
            headers={"Prefer": "return=representation"},
            json_body=dict(body),
        )
        return self.odata.json_of(response)

    def upsert_request(self, entity_set: str, key: Mapping[str, str], body: Mapping[str, Any]) -> BatchRequest:
        """The `upsert` of one record as a part of a `$batch`."""
        return BatchRequest("PATCH", key_segment(entity_set, key), json_body=dict(body))

    def create_request(self, entity_set: str, key: Mapping[str, str], body: Mapping[str, Any]) -> BatchRequest:
        """Create by alternate key only (`If-None-Match: *`): 412 if it exists."""
        return BatchRequest("PATCH", key_segment(entity_set, key), json_body=dict(body), headers={"If-None-Match": "*"})

    def update_request(self, entity_set: str, key: Mapping[str, str], body: Mapping[str, Any]) -> BatchRequest:
        """Update by alternate key only (`If-Match: *`), as a part of a `$batch`: 404 if it is gone."""
        return BatchRequest("PATCH", key_segment(entity_set, key), json_body=dict(body), headers={"If-Match": "*"})

    def upsert_by_id(self, entity_set: str, guid: str, body: Mapping[str, Any]) -> None:
        """PATCH to a primary key the caller chose: creates it once, updates it after."""
        self.odata.request("PATCH", key_segment(entity_set, guid), json_body=dict(body))

    def update(self, entity_set: str, guid: str, body: Mapping[str, Any]) -> None:
        """Update only (If-Match: *): a row deleted meanwhile is a 404, not a new row."""
        self.odata.request("PATCH", key_segment(entity_set, guid), headers={"If-Match": "*"}, json_body=dict(body))

    def delete(self, entity_set: str, guid: str) -> None:
        self.odata.request("DELETE", key_segment(entity_set, guid))

    def get(self, entity_set: str, key: Mapping[str, str] | str, select: list[str]) -> Row | None:
        try:
            return self.odata.get_json(key_segment(entity_set, key), params={"$select": ",".join(select)})
        except NotFoundError:
            return None
