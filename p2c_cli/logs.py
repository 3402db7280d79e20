"""Logging for `p2c`: quiet by default, `-v` p2c's own events, `--debug` everything."""

from __future__ import annotations

import logging

# Loggers that dump requests and headers at INFO; shown only with --debug.
WIRE_LOGGERS = ("azure", "httpx", "httpcore", "urllib3", "uvicorn.access")


def configure_logging(verbose: bool, debug: bool) -> None:
    """Quiet by default (records' problems are summarised at the end); `-v` shows p2c's
    own events as they happen; `--debug` everything, the SDKs' wire logs too."""
    level = logging.DEBUG if debug else logging.WARNING if verbose else logging.ERROR
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    logging.getLogger("p2c").setLevel(logging.DEBUG if debug else logging.INFO if verbose else logging.ERROR)
    for name in WIRE_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.WARNING)
