"""F&O OData (data entities) specifics on the shared OData client.

F&O has no upsert: an update of a missing key is 404 and a create of an existing key
fails, so writers look up by key first (or trust the key map) and fall back.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from p2c_core.clients.batch import BatchRequest
from p2c_core.clients.keys import key_segment
from p2c_core.clients.odata import ODataClient, Page, Row, ServiceProfile
from p2c_core.errors import NotFoundError

PROFILE = ServiceProfile(
    name="fno",
    root_path="/data/",
    headers={
        "OData-MaxVersion": "4.0",
        "OData-Version": "4.0",
        "Accept": "application/json",
        "Content-Type": "application/json; charset=utf-8",
    },
    request_id_headers=("ms-dyn-aid",),
)


class FnoClient:
    def __init__(self, odata: ODataClient, *, company: str) -> None:
        self.odata = odata
        self.company = company

    def key(self, **parts: str | int) -> dict[str, str | int]:
        return {"dataAreaId": self.company, **parts}

    def get(self, entity_set: str, key: Mapping[str, str | int], select: list[str] | None = None) -> Row | None:
        params = {"cross-company": "true"}
        if select:
            params["$select"] = ",".join(select)
        try:
            return self.odata.get_json(key_segment(entity_set, key), params=params)
        except NotFoundError:
            return None

    def create(self, entity_set: str, body: Mapping[str, Any]) -> Row:
        response = self.odata.request("POST", entity_set, json_body={"dataAreaId": self.company, **body})
        return self.odata.json_of(response) if response.content else {}

    def create_request(self, entity_set: str, body: Mapping[str, Any]) -> BatchRequest:
        return BatchRequest("POST", entity_set, json_body={"dataAreaId": self.company, **body})

    def update_request(self, entity_set: str, key: Mapping[str, str | int], body: Mapping[str, Any]) -> BatchRequest:
        return BatchRequest("PATCH", key_segment(entity_set, key), {"cross-company": "true"}, dict(body))

    def update(self, entity_set: str, key: Mapping[str, str | int], body: Mapping[str, Any]) -> None:
        self.odata.request(
            "PATCH", key_segment(entity_set, key), params={"cross-company": "true"}, json_body=dict(body)
        )

    def delete(self, entity_set: str, key: Mapping[str, str | int]) -> None:
        self.odata.request("DELETE", key_segment(entity_set, key), params={"cross-company": "true"})

    def resume(self, link: str) -> Iterator[Page]:
        """Pages from a nextLink a scan stopped at."""
        return self.odata.pages(link)

    def query(
        self, entity_set: str, *, select: list[str], filter: str | None = None, orderby: str | None = None,
        top: int | None = None,
    ) -> Iterator[Page]:  # fmt: skip
        """Rows of this company (cross-company + dataAreaId filter, as F&O advises)."""
        where = f"dataAreaId eq '{self.company}'"
        params = {
            "cross-company": "true",
            "$select": ",".join(select),
            "$filter": f"{where} and ({filter})" if filter else where,
        }
        if orderby:
            params["$orderby"] = orderby
        if top is not None:
            params["$top"] = str(top)
        return self.odata.pages(entity_set, params=params)
