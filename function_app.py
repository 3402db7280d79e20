"""The Functions app: for every flow, a timer (poll) and a queue trigger (apply);
plus `GET /api/status` (function key) and `POST /api/replay` (admin key) for operators, and the
operator console at `/api/console/` (App Service authentication; see p2c_core/console/auth.py).

Registration only. Each body is one call into p2c_core, imported lazily so a cold
start pays for azure.functions and the flow registry alone.
"""

import os
from collections.abc import Callable, Iterable
from typing import Any

import azure.functions as func

from p2c_core.flow import Flow
from p2c_core.flows import all_flows


def thread_binder(context: func.Context) -> Callable[[], None]:
    """What a worker thread calls so the Python worker keeps its logs: records are applied
    on a thread pool, and the worker drops a log from a thread that names no invocation
    ("Logging from background threads", Azure Functions Python developer guide)."""

    def bind() -> None:
        storage: Any = context.thread_local_storage  # a threading.local; typed as its class
        storage.invocation_id = context.invocation_id

    return bind


def _register(app: func.FunctionApp, flow: Flow) -> None:
    # Read here rather than through settings so registration stays import-light.
    schedule = os.environ.get(f"P2C_FLOWS__{flow.name.upper()}__SCHEDULE") or _push_schedule() or flow.schedule

    @app.function_name(name=f"{flow.name}_poll")
    @app.timer_trigger(arg_name="timer", schedule=schedule, run_on_startup=False, use_monitor=True)
    def poll(timer: func.TimerRequest) -> None:
        from p2c_core.functions import run_poll

        run_poll(flow.name)

    @app.function_name(name=f"{flow.name}_apply")
    @app.queue_trigger(arg_name="msg", queue_name=flow.queue, connection="AzureWebJobsStorage")
    def apply(msg: func.QueueMessage, context: func.Context) -> None:
        from p2c_core.functions import run_apply
        from p2c_core.hostconfig import max_dequeue_count

        run_apply(
            flow.name,
            msg.get_body(),
            message_id=msg.id,
            last_attempt=(msg.dequeue_count or 1) >= max_dequeue_count(),
            bind_thread=thread_binder(context),
        )


def _register_operations(app: func.FunctionApp) -> None:
    @app.function_name(name="status")
    @app.route(route="status", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
    def status(req: func.HttpRequest) -> func.HttpResponse:
        from p2c_core.functions import http_status

        return func.HttpResponse(**http_status())

    @app.function_name(name="replay")
    # The admin (master) key, not a function key: replay re-signs what it re-enqueues
    # (docs/security.md); in Azure the platform's Entra authentication stands in front too.
    @app.route(route="replay", methods=["POST"], auth_level=func.AuthLevel.ADMIN)
    def replay(req: func.HttpRequest) -> func.HttpResponse:
        from p2c_core.functions import http_replay

        return func.HttpResponse(**http_replay(req.get_body()))

    # Anonymous at the Functions level: App Service authentication (Microsoft Entra) signs users
    # in before the request gets here, and the console checks who they are and their role.
    @app.function_name(name="console")
    @app.route(route="console/{*path}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
    def console(req: func.HttpRequest) -> func.HttpResponse:
        from p2c_core.console.azure import respond

        path = req.route_params.get("path") or ""
        return func.HttpResponse(**respond(req.method, path, req.params, req.headers, req.get_body(), req.url))


def _push_schedule() -> str | None:
    """With push on, the timers are the backstop and may run less often (P2C_EVENTS_POLL_SCHEDULE)."""
    if os.environ.get("P2C_EVENTS_ENABLED", "").strip().lower() not in ("1", "true", "yes", "on"):
        return None
    value = os.environ.get("P2C_EVENTS_POLL_SCHEDULE", "0 */30 * * * *")
    return None if value.strip().lower() in ("", "null") else value


def _register_events(app: func.FunctionApp) -> None:
    """Live sync: pushed events in (function key: Dataverse's WebhookKey, the F&O endpoint URL's
    `code`), nudges out to a queue whose function reads and applies the rows (p2c_core/events.py)."""

    def receive(service: str, req: func.HttpRequest) -> func.HttpResponse:
        from p2c_core.functions import http_events

        return func.HttpResponse(**http_events(service, req.get_body(), dict(req.params), dict(req.headers)))

    @app.function_name(name="dataverse_events")
    @app.route(route="events/dataverse", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
    def dataverse_events(req: func.HttpRequest) -> func.HttpResponse:
        return receive("dataverse", req)

    @app.function_name(name="fno_events")
    @app.route(route="events/fno", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
    def fno_events(req: func.HttpRequest) -> func.HttpResponse:
        return receive("fno", req)

    @app.function_name(name="nudges_apply")
    @app.queue_trigger(arg_name="msg", queue_name="p2c-nudges", connection="AzureWebJobsStorage")
    def nudges_apply(msg: func.QueueMessage, context: func.Context) -> None:
        from p2c_core.functions import run_nudge

        run_nudge(msg.get_body(), bind_thread=thread_binder(context))


def build_app(flows: Iterable[Flow]) -> func.FunctionApp:
    """An app with the functions of these flows (the registry's, in dependency order)."""
    built = func.FunctionApp()
    for flow in flows:
        _register(built, flow)
    _register_operations(built)
    _register_events(built)
    return built


def _check_overlay() -> None:
    """An invalid mapping overlay stops the app here, naming the problem (docs/customizing.md).
    Checked only when one is set: without one, indexing stays import-light."""
    if os.environ.get("P2C_MAPPING_OVERLAY") or os.environ.get("P2C_MAPPING_OVERLAY_FILE"):
        from p2c_core.overlay import load

        load(os.environ.get("P2C_MAPPING_OVERLAY"), os.environ.get("P2C_MAPPING_OVERLAY_FILE"))


_check_overlay()
app = build_app(all_flows())
