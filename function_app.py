"""The Functions app: for every flow, a timer (poll) and a queue trigger (apply);
plus `GET /api/status` and `POST /api/replay` (function-key auth) for operators.

Registration only. Each body is one call into p2c_core, imported lazily so a cold
start pays for azure.functions and the flow registry alone.
"""

import os
from collections.abc import Iterable

import azure.functions as func

from p2c_core.flow import Flow
from p2c_core.flows import all_flows


def _register(app: func.FunctionApp, flow: Flow) -> None:
    # Read here rather than through settings so registration stays import-light.
    schedule = os.environ.get(f"P2C_FLOWS__{flow.name.upper()}__SCHEDULE") or flow.schedule

    @app.function_name(name=f"{flow.name}_poll")
    @app.timer_trigger(arg_name="timer", schedule=schedule, run_on_startup=False, use_monitor=True)
    def poll(timer: func.TimerRequest) -> None:
        from p2c_core.functions import run_poll

        run_poll(flow.name)

    @app.function_name(name=f"{flow.name}_apply")
    @app.queue_trigger(arg_name="msg", queue_name=flow.queue, connection="AzureWebJobsStorage")
    def apply(msg: func.QueueMessage) -> None:
        from p2c_core.functions import run_apply
        from p2c_core.hostconfig import max_dequeue_count

        run_apply(
            flow.name,
            msg.get_body(),
            message_id=msg.id,
            last_attempt=(msg.dequeue_count or 1) >= max_dequeue_count(),
        )


def _register_operations(app: func.FunctionApp) -> None:
    @app.function_name(name="status")
    @app.route(route="status", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
    def status(req: func.HttpRequest) -> func.HttpResponse:
        from p2c_core.functions import http_status

        return func.HttpResponse(**http_status())

    @app.function_name(name="replay")
    @app.route(route="replay", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
    def replay(req: func.HttpRequest) -> func.HttpResponse:
        from p2c_core.functions import http_replay

        return func.HttpResponse(**http_replay(req.get_body()))


def build_app(flows: Iterable[Flow]) -> func.FunctionApp:
    """An app with the functions of these flows (the registry's, in dependency order)."""
    built = func.FunctionApp()
    for flow in flows:
        _register(built, flow)
    _register_operations(built)
    return built


app = build_app(all_flows())
