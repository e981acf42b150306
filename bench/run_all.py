"""Run every benchmark script in bench/ (bench_*.py) in turn and print their JSON results.

Each script prints one JSON object on its last stdout line. Results go to stdout as one JSON
document keyed by script name; record them in docs/benchmarks.md with the machine they ran on.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path


def main() -> int:
    here = Path(__file__).parent
    results: dict[str, object] = {
        "machine": {"cpu": platform.processor() or platform.machine(), "python": sys.version.split()[0]}
    }
    status = 0
    for script in sorted(here.glob("bench_*.py")):
        print(f"[bench] {script.name}", file=sys.stderr)
        proc = subprocess.run([sys.executable, str(script), "--json"], capture_output=True, text=True)
        if proc.returncode != 0:
            results[script.stem] = {"error": proc.stderr[-2000:]}
            status = 1
            continue
        lines = [line for line in proc.stdout.strip().splitlines() if line.strip()]
        try:
            results[script.stem] = json.loads(lines[-1]) if lines else {"error": "no output"}
        except json.JSONDecodeError:
            results[script.stem] = {"raw": proc.stdout[-2000:]}
    print(json.dumps(results, indent=2))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
