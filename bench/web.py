"""The web inbox's first load: bytes sent and time until the first inbox row shows.

Starts the local stack (moto's server, fake platforms, `chalice local`), fetches and triages the fake
platforms' posts so the inbox has cases, then opens the page in headless Chromium (Playwright) with a
fresh profile each run (no cache) and reads the Navigation and Resource Timing entries.

    .venv/bin/python bench/web.py [--runs 5]

`chalice local` is a single-threaded development server, so the times are an upper bound of what API
Gateway and Lambda serve; the bytes are exact (uncompressed: API Gateway compresses only when told).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if not chromium:
        print("Chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    from local.stack import LocalDeployment

    stack = LocalDeployment(stage="webbench").start()
    try:
        stack.run_schedule()
        for _ in range(4):
            if not any(stack.pump().values()):
                break
        first_row, page_ready, sizes = [], [], {}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=ARGS)
            for _ in range(args.runs):
                context = browser.new_context()
                page = context.new_page()
                started = time.perf_counter()
                page.goto(f"{stack.api_url}/#token={stack.agent_token}")
                page.wait_for_selector("tr.case")
                first_row.append((time.perf_counter() - started) * 1000)
                timing = page.evaluate("""() => {
                    const nav = performance.getEntriesByType('navigation')[0];
                    const files = performance.getEntriesByType('resource').map(r => [r.name, r.decodedBodySize]);
                    return {dom: nav.domContentLoadedEventEnd, html: nav.decodedBodySize, files};
                }""")
                page_ready.append(timing["dom"])
                sizes = {"/": timing["html"], **{name.split("?")[0].rsplit("/", 1)[-1]: size
                                                 for name, size in timing["files"] if "/assets/" in name}}
                context.close()
            browser.close()
    finally:
        stack.stop()
    print(f"first load, {args.runs} runs, fresh profile each:")
    print(f"  page and assets: {sum(sizes.values()):,} bytes ({', '.join(f'{k} {v:,}' for k, v in sizes.items())})")
    print(f"  DOMContentLoaded: median {statistics.median(page_ready):.0f} ms")
    print(f"  first inbox row shown (sign-in, /me, /openapi.json, /cases): median {statistics.median(first_row):.0f} ms")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    raise SystemExit(main())
