"""Check infra/: checkov (no failed checks, no parsing errors, our custom policy loaded)
and a Bicep parser pass over every file. Run by `make test` with the .venv-infra venv,
which keeps checkov's pinned dependencies away from the app's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"


def parse_all() -> int:
    from pycep import BicepParser

    bad = 0
    for path in sorted(INFRA.rglob("*.bicep")):
        try:
            BicepParser().parse(text=path.read_text())
        except Exception as exc:  # any parse failure fails the check, with the file named
            print(f"parse error: {path.relative_to(ROOT)}: {str(exc).splitlines()[0]}")
            bad += 1
    print(f"bicep parser: {len(list(INFRA.rglob('*.bicep'))) - bad} files parsed, {bad} failed")
    return bad


def checkov() -> int:
    out = subprocess.run(
        [sys.executable, "-m", "checkov.main", "-d", str(INFRA), "--framework", "bicep", "--skip-download",
         "--external-checks-dir", str(INFRA / "checkov"), "--quiet", "--compact", "-o", "json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    try:
        reports = json.loads(out.stdout)
    except json.JSONDecodeError:
        print("checkov printed no JSON report:", out.stderr[-2000:])
        return 1
    reports = reports if isinstance(reports, list) else [reports]
    problems = 0
    for report in reports:
        summary = report.get("summary", {})
        print(f"checkov {report.get('check_type')}: {json.dumps(summary)}")
        for failed in report.get("results", {}).get("failed_checks", []):
            print(f"  FAILED {failed['check_id']} {failed['resource']} ({failed['file_path']}): {failed['check_name']}")
        problems += int(summary.get("failed", 0)) + int(summary.get("parsing_errors", 0))
        if not summary.get("resource_count"):
            print("  checkov found no resources: is infra/ empty?")
            problems += 1
    return problems


if __name__ == "__main__":
    sys.exit(1 if parse_all() + checkov() else 0)
