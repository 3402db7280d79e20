"""`p2c`'s entry point: global options anywhere on the line, logging, and errors as causes.

A command raises; this turns it into one or two lines on stderr (or one JSON object on
stdout with `--json`) and the documented exit code (p2c_cli/errors.py). A traceback only
with `--debug`.
"""

from __future__ import annotations

import sys
import traceback

import typer

from p2c_cli.errors import ExitCode, OperatorError, explain

GLOBAL_FLAGS = ("-v", "--verbose", "--debug")


def hoist_global_flags(argv: list[str]) -> list[str]:
    """`p2c sync -v accounts` means `p2c -v sync accounts`: the app callback reads them."""
    end = argv.index("--") if "--" in argv else len(argv)
    flags = [a for a in argv[:end] if a in GLOBAL_FLAGS]
    rest = [a for a in argv[:end] if a not in GLOBAL_FLAGS]
    return [*dict.fromkeys(flags), *rest, *argv[end:]]


def run(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (`python -m p2c_cli` and the `p2c` script exit with it)."""
    from typer.main import get_command

    from p2c_cli.main import app

    args = hoist_global_flags(list(sys.argv[1:] if argv is None else argv))
    json_mode = "--json" in args
    debug = "--debug" in args
    command = get_command(app)
    try:
        result = command.main(args=args, prog_name="p2c", standalone_mode=False)
    except typer.TyperException as exc:  # usage errors: the parser's own wording names the option
        if json_mode:
            print(OperatorError(ExitCode.USAGE, exc.format_message()).as_json())
        elif callable(show := getattr(exc, "show", None)):
            show()
        else:
            print(f"error: {exc.format_message()}", file=sys.stderr)
        return ExitCode.USAGE if exc.exit_code in (1, 2) else exc.exit_code
    except typer.Abort:
        return _report(explain(KeyboardInterrupt()), json_mode)
    except Exception as exc:
        if debug:
            traceback.print_exc()
        return _report(explain(exc), json_mode)
    if result == ExitCode.INTERRUPTED:  # Typer turns Ctrl-C into a silent exit 130
        return _report(explain(KeyboardInterrupt()), json_mode)
    return result if isinstance(result, int) else ExitCode.OK


def _report(error: OperatorError, json_mode: bool) -> int:
    if json_mode:
        print(error.as_json(), flush=True)
    else:
        for line in error.lines():
            print(line, file=sys.stderr, flush=True)
    return int(error.code)


def main() -> None:
    sys.exit(run())
