"""The nested models of the settings: per flow, value maps, defaults, console access.

Apart from `settings.py` (the environment, the top-level model and its checks) to keep each
short; `settings` re-exports them.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from p2c_core import catalog


def valid_ncrontab(expr: str) -> bool:
    """NCRONTAB as the Functions timer trigger takes it: six fields, seconds first."""
    from croniter import croniter

    return len(expr.split()) == 6 and croniter.is_valid(expr, second_at_beginning=True)


class FlowSettings(BaseModel):
    """`P2C_FLOWS__<FLOW>__ENABLED`, `__PAUSED`, `__SCHEDULE`, `__ON_DELETE`, for every registered flow."""

    enabled: bool = True
    # Paused: the timer reads nothing and queued changes wait in the queue until resumed.
    paused: bool = False
    # None = the flow's own default schedule (see p2c_core/flows/).
    schedule: str | None = None
    # A source row deleted or deactivated: `ignore` (counted as `removed`), `hold` (the F&O
    # customer put on hold) or `deactivate` (the Sales row); which a flow offers: docs/lifecycle.md.
    on_delete: Literal["ignore", "hold", "deactivate"] = "ignore"

    @field_validator("schedule")
    @classmethod
    def _ncrontab(cls, v: str | None) -> str | None:
        if v is not None and not valid_ncrontab(v):
            raise ValueError(f"not a 6-field NCRONTAB expression (sec min hour day month dow): {v!r}")
        return v


ValueMapTable = dict[str, str]


class ValueMaps(BaseModel):
    """Value maps as JSON objects, e.g. `P2C_VALUE_MAPS__PAYMENT_TERMS='{"1": "Net30"}'`.

    None = the built-in default (country, unit, product_type, price_list) or, for terms
    and delivery maps, "not mapped": the field is left out.
    """

    country: ValueMapTable | None = None
    unit: ValueMapTable | None = None
    price_list: ValueMapTable | None = None
    payment_terms: ValueMapTable | None = None
    # Sales freight terms -> F&O delivery terms (FLOWS.md's delivery_terms).
    freight_terms: ValueMapTable | None = None
    # Sales shipping method -> F&O delivery mode (FLOWS.md's delivery_mode).
    shipping_method: ValueMapTable | None = None
    product_type: ValueMapTable | None = None
    # F&O SalesOrderProcessingStatus -> Sales msdynce_processingstatus choice value.
    processing_status: ValueMapTable | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _keys_as_text(cls, v: Any) -> Any:
        # Choice values arrive as JSON numbers or strings; compare them as text.
        if isinstance(v, dict):
            return {str(k): v2 if v2 is None else str(v2) for k, v2 in v.items()}
        return v


def _default(name: str) -> Any:
    return catalog.DEFAULTS[name].value


class Defaults(BaseModel):
    """Defaults, `P2C_DEFAULTS__<NAME>`: the names and values of `catalog.DEFAULTS`."""

    customer_group: str = _default("customer_group")
    site: str | None = _default("site")
    warehouse: str | None = _default("warehouse")
    language: str = _default("language")
    country: str = _default("country")
    unit_group: str = _default("unit_group")


# One list of names: the catalog (which flows are checked against) and these models agree.
for _model, _names in ((ValueMaps, catalog.VALUE_MAPS), (Defaults, catalog.DEFAULTS)):
    if set(_model.model_fields) != set(_names):
        raise AssertionError(f"{_model.__name__} and the catalog disagree: {set(_model.model_fields) ^ set(_names)}")


class ConsoleSettings(BaseModel):
    """Who may use the console in Azure besides the app roles P2C.Operator / P2C.Viewer:
    members of these Microsoft Entra groups (object ids, a JSON list)."""

    operator_groups: list[str] = []
    viewer_groups: list[str] = []


# A pool of Dataverse application users (P2C_DATAVERSE_APP_USERS): clients/pool.py uses them.
class AppUser(BaseModel):
    """One application user of the pool: an Entra application with its secret (by the name of
    the app setting holding it) or certificate, or a user-assigned managed identity."""

    client_id: str = Field(min_length=1)
    secret_setting: str | None = None  # the app setting that holds its client secret
    certificate_path: str | None = None  # a PEM certificate file (with its private key)
    managed_identity: bool = False  # client_id is a user-assigned managed identity's

    @model_validator(mode="after")
    def _one_credential(self) -> AppUser:
        given = [self.secret_setting is not None, self.certificate_path is not None, self.managed_identity]
        if sum(given) != 1:
            raise ValueError(
                f"app user {self.client_id}: give exactly one of secret_setting, certificate_path, managed_identity"
            )
        return self


def check_app_users(users: list[AppUser], tenant_id: str | None) -> None:
    """At start: what each member needs is there (naming settings, never showing values)."""
    for user in users:
        if (user.secret_setting or user.certificate_path) and not tenant_id:
            raise ValueError(f"P2C_DATAVERSE_APP_USERS: app user {user.client_id} needs P2C_TENANT_ID")
        if user.secret_setting and not os.environ.get(user.secret_setting):
            raise ValueError(
                f"P2C_DATAVERSE_APP_USERS: app user {user.client_id} names secret setting "
                f"{user.secret_setting}, which is not set"
            )
