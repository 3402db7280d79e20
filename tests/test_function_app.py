"""The function index as the host sees it (app.get_functions(), called once)."""

from __future__ import annotations

import inspect
from functools import cache

import azure.functions as func
import pytest

from p2c_core.flows import all_flows
from p2c_core.settings import valid_ncrontab


@cache
def functions() -> tuple[func.Function, ...]:
    import function_app
    from p2c_cli.host import indexed

    return tuple(indexed(function_app.app))


def trigger(fn: func.Function) -> dict:
    t = fn.get_trigger()
    assert t is not None
    return t.get_dict_repr()


def test_every_flow_has_a_timer_and_a_queue_function():
    names = [str(fn.get_function_name()) for fn in functions()]
    assert len(names) == len(set(names)), "function names must be unique"
    per_flow = [f"{f.name}_poll" for f in all_flows()] + [f"{f.name}_apply" for f in all_flows()]
    events = ["dataverse_events", "fno_events", "nudges_apply"]
    assert sorted(names) == sorted([*per_flow, "status", "replay", "console", *events])
    for flow in all_flows():
        by_name = {fn.get_function_name(): fn for fn in functions()}
        assert trigger(by_name[f"{flow.name}_poll"])["type"] == "timerTrigger"
        queue = trigger(by_name[f"{flow.name}_apply"])
        assert queue["type"] == "queueTrigger"
        assert queue["queueName"] == flow.queue == f"p2c-{flow.name.replace('_', '-')}"
        assert queue["connection"] == "AzureWebJobsStorage"


def test_operator_endpoints_need_a_key_and_replay_the_admin_key():
    by_name = {fn.get_function_name(): fn for fn in functions()}
    levels = {"status": func.AuthLevel.FUNCTION, "replay": func.AuthLevel.ADMIN}
    for name, method in (("status", "GET"), ("replay", "POST")):
        spec = trigger(by_name[name])
        assert spec["type"] == "httpTrigger" and spec["route"] == name
        assert spec["authLevel"] == levels[name]
        assert [str(getattr(m, "value", m)) for m in spec["methods"]] == [method]


def test_console_is_anonymous_for_app_service_authentication_and_checks_itself():
    spec = trigger({fn.get_function_name(): fn for fn in functions()}["console"])
    assert spec["type"] == "httpTrigger" and spec["route"] == "console/{*path}"
    assert spec["authLevel"] == func.AuthLevel.ANONYMOUS


@pytest.mark.parametrize("index", range(2 * len(all_flows()) + 6))
def test_arg_name_is_the_parameter_name(index):
    fn = functions()[index]
    params = list(inspect.signature(fn.get_user_function()).parameters)
    # `context` is the worker's invocation context, passed by name (apply functions take it).
    assert [p for p in params if p != "context"] == [trigger(fn)["name"]]


def test_event_endpoints_need_the_function_key_and_nudges_have_a_queue():
    by_name = {fn.get_function_name(): fn for fn in functions()}
    for name, route in (("dataverse_events", "events/dataverse"), ("fno_events", "events/fno")):
        spec = trigger(by_name[name])
        assert spec["type"] == "httpTrigger" and spec["route"] == route
        assert spec["authLevel"] == func.AuthLevel.FUNCTION
        assert [str(getattr(m, "value", m)) for m in spec["methods"]] == ["POST"]
    queue = trigger(by_name["nudges_apply"])
    assert queue["type"] == "queueTrigger" and queue["queueName"] == "p2c-nudges"


def test_with_push_on_the_timers_run_on_the_push_schedule_unless_a_flow_sets_its_own(monkeypatch):
    import importlib
    import sys

    monkeypatch.setenv("P2C_EVENTS_ENABLED", "true")
    monkeypatch.setenv("P2C_EVENTS_POLL_SCHEDULE", "0 0 * * * *")
    monkeypatch.setenv("P2C_FLOWS__PRODUCTS__SCHEDULE", "0 */7 * * * *")
    saved = sys.modules.pop("function_app")
    try:
        fresh = importlib.import_module("function_app")
        specs = {f.get_function_name(): trigger(f) for f in fresh.app.get_functions()}
        assert specs["accounts_poll"]["schedule"] == "0 0 * * * *"
        assert specs["products_poll"]["schedule"] == "0 */7 * * * *"
    finally:
        sys.modules["function_app"] = saved


def test_schedules_are_valid_ncrontab_and_follow_settings(monkeypatch):
    for fn in functions():
        spec = trigger(fn)
        if spec["type"] == "timerTrigger":
            assert valid_ncrontab(spec["schedule"]), spec
    # The schedule setting is read at registration: a fresh import picks it up.
    import importlib
    import sys

    monkeypatch.setenv("P2C_FLOWS__ACCOUNTS__SCHEDULE", "0 0 */2 * * *")
    saved = sys.modules.pop("function_app")
    try:
        fresh = importlib.import_module("function_app")
        spec = next(trigger(f) for f in fresh.app.get_functions() if f.get_function_name() == "accounts_poll")
        assert spec["schedule"] == "0 0 */2 * * *"
    finally:
        sys.modules["function_app"] = saved


def test_function_app_imports_no_heavy_modules():
    import subprocess
    import sys

    code = (
        "import sys, function_app; "
        "heavy = [m for m in ('pydantic', 'httpx', 'azure.data.tables', 'azure.storage.queue', 'azure.identity', "
        "'opentelemetry') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
