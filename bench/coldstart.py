"""Cold-start cost of `import app`, relative to `import boto3` alone.

Every Lambda of socialcare imports app.py before its first event, so its
import time is paid on every cold start. Each figure is the median over
fresh interpreters (no module cache carried over); the ratio printed is
import(app) / import(boto3). Goal: at or below 1.3. The triage function also
loads the triage engine on its first batch: that import is shown on its own.

    .venv/bin/python bench/coldstart.py [--runs 15]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
ENV = {
    **os.environ,
    "AWS_DEFAULT_REGION": "us-east-1", "SOCIALCARE_STAGE": "bench",
    "POWERTOOLS_METRICS_DISABLED": "true", "PYTHONDONTWRITEBYTECODE": "",
}


def import_seconds(module: str) -> float:
    out = subprocess.run([sys.executable, "-c", PROBE.format(module=module)], cwd=ROOT, env=ENV,
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    # Interleave, so drift in machine load hits both alike.
    modules = {"app": "app", "boto3": "boto3", "app + triage": "app, chalicelib.triage"}
    times = {name: [] for name in modules}
    for module in modules.values():
        import_seconds(module)  # warm the OS file cache and write .pyc files once
    for _ in range(args.runs):
        for name, module in modules.items():
            times[name].append(import_seconds(module))
    median = {name: statistics.median(values) for name, values in times.items()}
    for name in modules:
        print(f"import {name + ':':14s}{median[name] * 1000:7.1f} ms (median of {args.runs})")
    print(f"ratio app/boto3: {median['app'] / median['boto3']:.2f} (goal <= 1.30)")
    print(f"triage engine adds {(median['app + triage'] - median['app']) * 1000:.1f} ms to the triage function")


if __name__ == "__main__":
    main()
