"""Settings: one validated object from environment variables (app settings, .env).

Every name is `P2C_` + field, nested with `__` (`P2C_FLOWS__ACCOUNTS__SCHEDULE`), except
the Functions host's own `AzureWebJobsStorage` (a connection string locally; identity
based in Azure as `AzureWebJobsStorage__accountName` / `__queueServiceUri` / ...).
A missing or bad setting fails at start with a message naming the variable.
"""

from __future__ import annotations

import ipaddress
import os
import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, PrivateAttr, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from p2c_core.appservice import in_azure, unresolved_message, unresolved_references
from p2c_core.companies import Companies, CompanyEntry, parse_company_map
from p2c_core.errors import SettingsError
from p2c_core.settings_models import (
    AppUser,
    ConsoleSettings,
    Defaults,
    FlowSettings,
    ValueMaps,
    check_app_users,
    valid_ncrontab,
)

if TYPE_CHECKING:
    from p2c_core.overlay import Overlay

PREFIX = "P2C_"
STORAGE = "AzureWebJobsStorage"
# Identity-based storage settings the Functions host and p2c both read in Azure.
STORAGE_IDENTITY_SUFFIXES = (
    "accountName",
    "credential",
    "clientId",
    "blobServiceUri",
    "queueServiceUri",
    "tableServiceUri",
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=PREFIX,
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        case_sensitive=False,
        # An empty app setting means "use the default"; `null` clears an optional one.
        env_ignore_empty=True,
        env_parse_none_str="null",
    )

    dataverse_url: str
    fno_url: str
    # The one legal entity, or with P2C_COMPANIES the one whose keys carry no company
    # (those written before the map was set); then it must be one of the map's.
    fno_company: str
    # Several legal entities (p2c_core/companies.py, docs/companies.md): JSON, legal entity ->
    # how its Sales rows are recognised, their owner in Sales, per-company defaults/value maps.
    companies: dict[str, CompanyEntry] | None = None
    auth_mode: Literal["azure", "none"] = "azure"
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    managed_identity_client_id: str | None = None
    # HMAC-SHA256 key of queue messages (signing.py): a Key Vault reference in Azure,
    # required there; the local environment generates one per state directory.
    message_signing_key: SecretStr | None = Field(default=None, min_length=32)

    http_timeout_seconds: float = Field(default=30.0, gt=0)
    http_max_retries: int = Field(default=3, ge=0, le=10)
    # Per-record attempts (transient errors) before it fails.
    record_max_attempts: int = Field(default=8, ge=1, le=50)
    # First wait before a record is tried again; doubles per attempt (jittered, at most
    # 15 minutes), or Retry-After when the service sent one.
    record_retry_base_seconds: float = Field(default=5.0, ge=0.1, le=600)
    # How long a record waits for a record of another flow it refers to (a quote for its
    # customer) before it fails: a parent flow's failed polls must not fail its children.
    dependency_wait_minutes: float = Field(default=240.0, gt=0, le=7 * 24 * 60)
    # How long one worker may hold a record it is applying; after a crash, the record
    # waits this long before another delivery may take it over.
    apply_lease_seconds: float = Field(default=120.0, ge=1, le=3600)
    # Failure entries not seen again for this long are forgotten (at the flow's next poll).
    failure_retention_days: float = Field(default=90.0, gt=0, le=3650)
    page_size: int = Field(default=5000, ge=1, le=5000)
    chunk_size: int = Field(default=100, ge=1, le=1000)
    # Records of one message written per `$batch` (header-only flows); 1 = a request each.
    batch_size: int = Field(default=100, ge=1, le=1000)
    # Records of one message applied at once (flows with lines); 1 = one after another.
    record_concurrency: int = Field(default=8, ge=1, le=52)
    # Rows an F&O scan reads per tick (p2c_core/fno_window.py): idle ticks cost the same at any
    # size; a full pass takes rows / this many ticks. 0: the whole entity every tick.
    fno_scan_window: int = Field(default=10_000, ge=0, le=10_000)

    # Auto-pause: a flow pauses itself when this share of its records failed (written,
    # skipped and failed counted) in the window, once at least the minimum were tried.
    # `null` turns it off.
    auto_pause_failure_share: float | None = Field(default=0.9, gt=0, le=1)
    auto_pause_window_minutes: float = Field(default=15.0, gt=0, le=7 * 24 * 60)
    auto_pause_min_records: int = Field(default=20, ge=1)

    # Live sync (docs/operations.md, "Live sync"): the event functions take pushes from
    # Dataverse webhooks and F&O data events when on; they check `events_key` (the function
    # key: Dataverse sends it as the WebhookKey `code`). A Key Vault reference in Azure.
    events_enabled: bool = False
    events_key: SecretStr | None = Field(default=None, min_length=32)
    # How long a nudge waits before its row is read: a burst of events for one row is one read.
    events_coalesce_seconds: float = Field(default=1.0, ge=0, le=60)
    # With push on, the flows' timers (the backstop) run on this schedule instead of their own
    # (a flow's P2C_FLOWS__<FLOW>__SCHEDULE still wins); null keeps their own.
    events_poll_schedule: str | None = "0 */30 * * * *"
    # Several Dataverse application users, used in turn, each with its own budget
    # (docs/scaling.md); empty: the one identity above.
    dataverse_app_users: list[AppUser] = []
    # Dataverse's service protection window (300 s): the pace is its budgets over it.
    dataverse_limit_window_seconds: float = Field(default=300.0, gt=0, le=3600)

    # Per flow, by registered name (P2C_FLOWS__ACCOUNTS__ENABLED -> flows["accounts"].enabled).
    flows: dict[str, FlowSettings] = {}
    # A mapping overlay (docs/customizing.md): JSON text, or a file relative to the app root.
    mapping_overlay: str | None = None
    mapping_overlay_file: str | None = None
    _parsed_overlay: Overlay | None = PrivateAttr(default=None)
    value_maps: ValueMaps = ValueMaps()
    defaults: Defaults = Defaults()
    console: ConsoleSettings = ConsoleSettings()

    @field_validator("dataverse_url", "fno_url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {v!r}")
        # scheme://host[:port][/path] only: user info, a query or a fragment can make two
        # URL parsers disagree on the host (and none belongs in a service root anyway).
        if "@" in parts.netloc or "\\" in v or parts.query or parts.fragment:
            raise ValueError("a service URL is scheme://host[:port][/path], without user info, query or fragment")
        return v.rstrip("/")

    @field_validator("fno_url")
    @classmethod
    def _fno_root(cls, v: str) -> str:
        # p2c adds /data itself; a pasted OData URL would address /data/data.
        if urlsplit(v).path.rstrip("/").lower().endswith("/data"):
            raise ValueError(f"give F&O's root URL, without /data: {v.rstrip('/').removesuffix('/data')!r}")
        return v

    @field_validator("events_poll_schedule")
    @classmethod
    def _events_schedule(cls, v: str | None) -> str | None:
        if v is not None and not valid_ncrontab(v):
            raise ValueError(f"not a 6-field NCRONTAB expression (sec min hour day month dow): {v!r}")
        return v

    @field_validator("fno_company")
    @classmethod
    def _company(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9]{1,4}", v):
            raise ValueError(f"not an F&O legal entity id (1-4 letters/digits): {v!r}")
        return v.lower()

    @model_validator(mode="after")
    def _auth(self) -> Settings:
        for name, url in (("P2C_DATAVERSE_URL", self.dataverse_url), ("P2C_FNO_URL", self.fno_url)):
            # A token (or the data) in clear text is never right; loopback is the sandbox.
            if urlsplit(url).scheme != "https" and (self.auth_mode == "azure" or not is_loopback(url)):
                raise ValueError(f"{name} must be an https:// URL (http:// only for the sandbox on loopback)")
        if self.auth_mode == "azure" and self.message_signing_key is None:
            raise ValueError("P2C_MESSAGE_SIGNING_KEY is required (the Key Vault secret of the deployment)")
        if self.auth_mode == "none":
            for name, url in (("P2C_DATAVERSE_URL", self.dataverse_url), ("P2C_FNO_URL", self.fno_url)):
                if not is_loopback(url):
                    raise ValueError(
                        f"P2C_AUTH_MODE=none is only for the local sandbox, but {name} is not a loopback URL"
                    )
        if self.client_secret is not None and not (self.tenant_id and self.client_id):
            raise ValueError("P2C_CLIENT_SECRET needs P2C_TENANT_ID and P2C_CLIENT_ID")
        if self.auth_mode == "azure":
            check_app_users(self.dataverse_app_users, self.tenant_id)
        return self

    @model_validator(mode="after")
    def _events(self) -> Settings:
        if self.events_enabled and self.events_key is None:
            raise ValueError("P2C_EVENTS_ENABLED needs P2C_EVENTS_KEY (the key the event sources send)")
        return self

    @field_validator("flows")
    @classmethod
    def _registered(cls, v: dict[str, FlowSettings]) -> dict[str, FlowSettings]:
        from p2c_core.flows import registry
        from p2c_core.on_delete import choices
        from p2c_core.suggest import did_you_mean

        names = registry().names
        for name, flow_settings in v.items():
            if name not in names:
                raise ValueError(f"no flow is named {name!r}{did_you_mean(name, names)}")
            offered = choices(registry().get(name))
            if flow_settings.on_delete not in offered:
                raise ValueError(
                    f"P2C_FLOWS__{name.upper()}__ON_DELETE={flow_settings.on_delete} is not offered by flow "
                    f"{name}; it offers {', '.join(offered)} (docs/lifecycle.md)"
                )
        return v

    @field_validator("companies")
    @classmethod
    def _company_map(cls, v: dict[str, CompanyEntry] | None) -> dict[str, CompanyEntry] | None:
        return None if v is None else parse_company_map(v)

    @model_validator(mode="after")
    def _default_company_mapped(self) -> Settings:
        if self.companies is not None and self.fno_company not in self.companies:
            raise ValueError(
                f"P2C_FNO_COMPANY={self.fno_company} is not in P2C_COMPANIES ({', '.join(self.companies)}): "
                "it names the company of keys written before the map was set"
            )
        return self

    def company_map(self) -> Companies:
        """The companies this deployment serves (one, unless P2C_COMPANIES is set)."""
        return Companies(default=self.fno_company, entries=dict(self.companies or {}))

    @model_validator(mode="after")
    def _overlay_valid(self) -> Settings:
        parsed = self.overlay()  # an invalid overlay stops the app at start, naming the problem
        if parsed.companies:
            from p2c_core import overlay

            where = overlay.FILE_SETTING if self.mapping_overlay_file else overlay.SETTING
            overlay.check_companies(parsed, self.company_map().ids, where)
        return self

    def overlay(self) -> Overlay:
        """The mapping overlay these settings name (parsed once)."""
        if self._parsed_overlay is None:
            from p2c_core import overlay

            self._parsed_overlay = overlay.load(self.mapping_overlay, self.mapping_overlay_file)
        return self._parsed_overlay

    def flow(self, name: str) -> FlowSettings:
        """The settings of one flow (its defaults when none are set)."""
        return self.flows.get(name) or FlowSettings()


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _env_name(loc: tuple[int | str, ...]) -> str:
    return PREFIX + "__".join(str(p).upper() for p in loc)


def load_settings(**overrides: Any) -> Settings:
    """Validate the environment; a bad or missing setting raises SettingsError naming it.

    A value that is still a Key Vault reference is refused (it would be sent as the secret),
    and in Azure no `.env` is read: app settings are the only source there.
    """
    from pydantic_settings import SettingsError as UnparsedSetting

    unresolved = unresolved_references(n for n in os.environ if n.upper().startswith(PREFIX))
    if unresolved:
        raise SettingsError(unresolved_message(unresolved))
    try:
        return Settings(**overrides, _env_file=None if in_azure() else ".env")  # pyright: ignore[reportCallIssue]
    except UnparsedSetting as exc:  # a nested setting's value is not JSON
        field = re.search(r'field "(\w+)"', str(exc))
        name = f"{PREFIX}{field.group(1).upper()}__*" if field else "a P2C_ setting"
        raise SettingsError(f"invalid settings: {name}: a value that should be JSON is not") from None
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if p != "__root__")
            name = _env_name(loc) if loc else "settings"
            msg = err["msg"].removeprefix("Value error, ")
            if loc[:1] == ("value_maps",) and err["type"] == "dict_type":
                msg = 'not a JSON object of Sales value -> F&O value, e.g. {"1": "Net30"}'
            problems.append(f"{name}: {msg}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, validated once."""
    return load_settings()


def _environment() -> dict[str, str]:
    """The environment, over a `.env` file in the working folder (as the P2C_* settings read it)."""
    from dotenv import dotenv_values

    if in_azure():  # app settings are the only source there
        return dict(os.environ)
    env = {k: v for k, v in dotenv_values(".env").items() if v} if os.path.exists(".env") else {}
    return {**env, **os.environ}


def storage_settings() -> dict[str, str]:
    """`AzureWebJobsStorage` (connection string) or its identity-based parts."""
    unresolved = unresolved_references([STORAGE, *(f"{STORAGE}__{s}" for s in STORAGE_IDENTITY_SUFFIXES)])
    if unresolved:
        raise SettingsError(unresolved_message(unresolved))
    environment = _environment()
    found = {}
    if environment.get(STORAGE):
        found[STORAGE] = environment[STORAGE]
    for suffix in STORAGE_IDENTITY_SUFFIXES:
        value = environment.get(f"{STORAGE}__{suffix}")
        if value:
            found[suffix] = value
    if not found:
        raise SettingsError(
            f"{STORAGE}: missing; set a storage connection string (Azurite locally) or "
            f"{STORAGE}__accountName / __queueServiceUri and __tableServiceUri for identity-based access"
        )
    return found


def _model_names(model: type[BaseModel], prefix: str) -> list[str]:
    from p2c_core.flows import registry

    names: list[str] = []
    for name, info in model.model_fields.items():
        ann = info.annotation
        env = f"{prefix}{name.upper()}"
        if name == "flows" and model is Settings:
            for flow in registry().names:
                names.extend(_model_names(FlowSettings, f"{env}__{flow.upper()}__"))
        elif isinstance(ann, type) and issubclass(ann, BaseModel):
            names.extend(_model_names(ann, env + "__"))
        else:
            names.append(env)
    return names


def setting_names() -> list[str]:
    """Every environment variable the code reads, for the settings contract tests."""
    return [
        STORAGE,
        *(f"{STORAGE}__{suffix}" for suffix in STORAGE_IDENTITY_SUFFIXES),
        *_model_names(Settings, PREFIX),
        # Read by p2c_core.telemetry (and by the Functions host).
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    ]
