"""The app's HTTP functions served on 127.0.0.1, as `func start` would route them: for the
sandbox's pushes in tests and benchmarks (`/api/<route>`, the request as an HttpRequest)."""

from __future__ import annotations

from typing import Any

import azure.functions as func
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from p2c_cli.host import indexed
from p2c_sandbox.server import BackgroundServer


class HttpHost:
    """`with HttpHost(function_app.app, ["dataverse_events", "fno_events"]) as host: host.url`."""

    def __init__(self, app: func.FunctionApp, names: list[str]) -> None:
        routes = []
        for fn in indexed(app):
            if fn.get_function_name() not in names:
                continue
            trigger = fn.get_trigger()
            assert trigger is not None
            spec = trigger.get_dict_repr()
            methods = [str(getattr(m, "value", m)) for m in spec.get("methods") or ["GET", "POST"]]
            routes.append(Route(f"/api/{spec['route']}", self._endpoint(fn.get_user_function()), methods=methods))
        self.server = BackgroundServer(Starlette(routes=routes))

    @staticmethod
    def _endpoint(user_function: Any) -> Any:
        async def call(request: Request) -> Response:
            req = func.HttpRequest(
                method=request.method, url=str(request.url), headers=dict(request.headers),
                params=dict(request.query_params), body=await request.body(),
            )  # fmt: skip
            # The function blocks (storage calls): run it off the event loop, as the worker does.
            from starlette.concurrency import run_in_threadpool

            answer: func.HttpResponse = await run_in_threadpool(user_function, req=req)
            return Response(answer.get_body(), status_code=answer.status_code, media_type=answer.mimetype)

        return call

    @property
    def url(self) -> str:
        return self.server.url

    def __enter__(self) -> HttpHost:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
