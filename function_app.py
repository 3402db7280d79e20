"""The Functions app: for every flow, a timer (poll) and a queue trigger (apply);
plus `GET /api/status` and `POST /api/replay` (function-key auth) for operators, and the
operator console at `/api/console/` (App Service authentication; see p2c_core/console/auth.py).

Registration only. Each body is one call into p2c_core, imported lazily so a cold
start pays for azure.functions and the flow registry alone.
"""

import os

import azure.functions as func

from p2c_core.flow import Flow
from p2c_core.flows import FLOWS

app = func.FunctionApp()


def _register(flow: Flow) -> None:
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


for _flow in FLOWS:
    _register(_flow)


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


# Anonymous at the Functions level: App Service authentication (Microsoft Entra) signs users
# in before the request gets here, and the console checks who they are and their role.
@app.function_name(name="console")
@app.route(route="console/{*path}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
def console(req: func.HttpRequest) -> func.HttpResponse:
    from p2c_core.console.azure import respond

    path = req.route_params.get("path") or ""
    return func.HttpResponse(**respond(req.method, path, req.params, req.headers, req.get_body(), req.url))
