"""Cold-start cost of `import app`, relative to `import boto3` alone.

Every Lambda of socialcare imports app.py before its first event, so its
import time is paid on every cold start. Each figure is the median over
fresh interpreters (no module cache carried over); the ratio printed is
import(app) / import(boto3). Goal: at or below 1.3.

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


def median_import(module: str, runs: int) -> float:
    import_seconds(module)  # warm the OS file cache and write .pyc files once
    return statistics.median(import_seconds(module) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    # Interleave, so drift in machine load hits both alike.
    app_times, boto_times = [], []
    import_seconds("app"), import_seconds("boto3")
    for _ in range(args.runs):
        app_times.append(import_seconds("app"))
        boto_times.append(import_seconds("boto3"))
    app_s, boto_s = statistics.median(app_times), statistics.median(boto_times)
    print(f"import app:   {app_s * 1000:7.1f} ms (median of {args.runs})")
    print(f"import boto3: {boto_s * 1000:7.1f} ms (median of {args.runs})")
    print(f"ratio app/boto3: {app_s / boto_s:.2f} (goal <= 1.30)")


if __name__ == "__main__":
    main()
