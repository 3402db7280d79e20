"""Check infra/: checkov (no failed checks, no parsing errors, our custom policy loaded)
and a Bicep parser pass over every file, once per network variant (vnetEnabled false and
true). Run by `make test` with the .venv-infra venv, which keeps checkov's pinned
dependencies away from the app's."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
# `vnetEnabled ? a : b` with a and b a literal or a dotted name: checkov does not evaluate
# parameters, so each variant is a copy of infra/ with these choices made.
_CHOICE = re.compile(r"\bvnetEnabled \? ('[^']*'|[\w.]+) : ('[^']*'|[\w.]+)")
_CONDITION = re.compile(r"\bif \(vnetEnabled\)")
_PARAM = re.compile(r"^param vnetEnabled bool( = \w+)?$", re.M)


def variant(text: str, vnet: bool) -> str:
    """A Bicep file's text with vnetEnabled decided."""
    text = _CHOICE.sub(lambda m: m.group(1) if vnet else m.group(2), text)
    text = _CONDITION.sub(f"if ({str(vnet).lower()})", text)
    return _PARAM.sub(f"param vnetEnabled bool = {str(vnet).lower()}", text)


def write_variant(target: Path, vnet: bool) -> Path:
    shutil.copytree(INFRA, target, ignore=shutil.ignore_patterns("__pycache__"))
    for path in target.rglob("*.bicep"):
        path.write_text(variant(path.read_text(), vnet))
    return target


def parse_all(infra: Path) -> int:
    from pycep import BicepParser

    bad = 0
    files = sorted(infra.rglob("*.bicep"))
    for path in files:
        try:
            BicepParser().parse(text=path.read_text())
        except Exception as exc:  # any parse failure fails the check, with the file named
            print(f"  parse error: {path.relative_to(infra)}: {str(exc).splitlines()[0]}")
            bad += 1
    print(f"  bicep parser: {len(files) - bad} files parsed, {bad} failed")
    return bad


def checkov(infra: Path) -> int:
    out = subprocess.run(
        [sys.executable, "-m", "checkov.main", "-d", str(infra), "--framework", "bicep", "--skip-download",
         "--external-checks-dir", str(infra / "checkov"), "--quiet", "--compact", "-o", "json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    try:
        reports = json.loads(out.stdout)
    except json.JSONDecodeError:
        print("  checkov printed no JSON report:", out.stderr[-2000:])
        return 1
    reports = reports if isinstance(reports, list) else [reports]
    problems = 0
    for report in reports:
        summary = report.get("summary", {})
        print(f"  checkov {report.get('check_type')}: {json.dumps(summary)}")
        for failed in report.get("results", {}).get("failed_checks", []):
            where = f"{failed['resource']} ({failed['file_path']})"
            print(f"    FAILED {failed['check_id']} {where}: {failed['check_name']}")
        problems += int(summary.get("failed", 0)) + int(summary.get("parsing_errors", 0))
        if not summary.get("resource_count"):
            print("    checkov found no resources: is infra/ empty?")
            problems += 1
    return problems


def main() -> int:
    problems = 0
    with tempfile.TemporaryDirectory(prefix="p2c-infra-") as tmp:
        for vnet in (False, True):
            print(f"vnetEnabled={str(vnet).lower()}:")
            infra = write_variant(Path(tmp) / f"vnet-{str(vnet).lower()}", vnet)
            problems += parse_all(infra) + checkov(infra)
    return problems


if __name__ == "__main__":
    sys.exit(1 if main() else 0)
