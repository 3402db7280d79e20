"""docs/operations.md's examples are real output: this runs each `$ p2c ...` block, in order,
against a fresh local sandbox, and checks (tests/test_operations_doc.py) or rewrites
(`python -m tools.operations_doc --write`) what the doc shows.

Times, ages and ports differ from run to run; they are compared as placeholders.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "operations.md"
# A fenced block whose first line is a command: `$ p2c ...`, then its output, then `(exit N)`.
BLOCK = re.compile(r"```\n(\$ p2c [^\n]*\n.*?)```", re.S)
VOLATILE = (
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(\+00:00)?( UTC)?"), "<time>"),
    (re.compile(r"\b\d+(\.\d+)?(s|m|h \d+m|d \d+h)\b"), "<age>"),
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:<port>"),
)


@dataclass
class Example:
    commands: list[str]  # `p2c ...` lines of one block
    shown: str  # the block as the doc has it
    real: str = ""  # the same commands' output now

    def matches(self) -> bool:
        return normalise(self.shown) == normalise(self.real)


def normalise(text: str) -> list[str]:
    """Lines with volatile parts replaced and table padding collapsed."""
    out = []
    for line in text.splitlines():
        for pattern, placeholder in VOLATILE:
            line = pattern.sub(placeholder, line)
        line = re.sub(r"[ ─━]+", " ", line).strip()
        if line:
            out.append(line)
    return out


def examples(doc: str) -> list[Example]:
    found = []
    for block in BLOCK.findall(doc):
        commands = [line[2:] for line in block.splitlines() if line.startswith("$ p2c ")]
        found.append(Example(commands, block))
    return found


def run_all(found: list[Example], env: dict[str, str]) -> None:
    """Each block's commands, as an operator types them, in the doc's order."""
    for example in found:
        parts = []
        for command in example.commands:
            out = subprocess.run([sys.executable, "-m", "p2c_cli", *command.split()[1:]], capture_output=True,
                                 text=True, env=env, cwd=ROOT, timeout=300)  # fmt: skip
            parts.append(f"$ {command}\n{out.stdout}{out.stderr}(exit {out.returncode})\n")
        example.real = "".join(parts)


def environment() -> Iterator[dict[str, str]]:
    """A fresh Azurite and sandbox; the environment a command run there sees."""
    from p2c_cli.local import local_environment

    with local_environment(None) as _:
        yield {**os.environ, "COLUMNS": "80", "PYTHONPATH": str(ROOT)}


def rewrite(doc: str, found: list[Example]) -> str:
    for example in found:
        doc = doc.replace(example.shown, example.real, 1)
    return doc


def main() -> int:
    doc = DOC.read_text()
    found = examples(doc)
    for env in environment():
        run_all(found, env)
    if "--write" in sys.argv:
        DOC.write_text(rewrite(doc, found))
        print(f"{DOC.relative_to(ROOT)}: {len(found)} examples written from real output")
        return 0
    stale = [e for e in found if not e.matches()]
    for e in stale:
        print(f"stale: {' / '.join(e.commands)}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
