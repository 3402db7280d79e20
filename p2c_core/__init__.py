"""p2c_core: the Prospect to cash sync engine, flows, clients and state.

Kept import-light on purpose: `function_app` imports `p2c_core.flows` at every cold
start, so heavy modules (pydantic, httpx, Azure SDKs) load only inside function bodies.
"""
