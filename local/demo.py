"""`make demo`: socialcare on this machine, end to end, until Ctrl-C.

Mentions appear on the fake X stream a few at a time; the schedule fetches
them, triage and assignment turn some into cases, and you answer them over
the agent API with the printed token.

Service levels are set short so they show within a couple of minutes: the
support team's calendar is closed right now (customers get the away message
with its next opening), the VIP desk is open around the clock, and every
case must be answered within 2 minutes (a warning at 1). Unanswered cases
raise warnings, then breaches, in GET /notifications.
"""
from __future__ import annotations

import argparse
import signal
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Set

from local import demo_costs
from local.demo_agent import ApiClient, DemoAgent, kpi_summary
from local.stack import LocalDeployment

# Short on purpose: the demo shows a warning and a breach within a couple of minutes.
DEMO_SLA_POLICY = {
    "business_hours": False, "warning_ratio": 0.5,
    "default": {p: {"first_response": 2, "next_response": 2, "resolution": 30}
                for p in ("urgent", "high", "normal", "low")},
    "actions": {"warning": ["notify"], "breach": ["notify", "raise_priority"]},
}


def closed_now_calendar(now: datetime) -> Dict[str, Any]:
    """A Tokyo calendar whose one daily hour lies ahead of now, so the team is closed at the start."""
    tokyo_hour = (now.astimezone(timezone(timedelta(hours=9))).hour + 6) % 23
    shift = [[f"{tokyo_hour:02d}:00", f"{tokyo_hour + 1:02d}:00"]]
    return {"time_zone": "Asia/Tokyo", "weekly": {day: shift for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}}


def seed_service_levels() -> None:
    """The demo's calendars, SLA policy and away message, as a supervisor would PUT them."""
    from chalicelib.bootstrap import deps
    from chalicelib.domain.away import validate_away
    from chalicelib.domain.hours import validate_calendar
    from chalicelib.domain.sla import validate_policy

    store, now = deps().settings, deps().now()
    store.put_sla_policy(validate_policy(DEMO_SLA_POLICY), author="demo", at=now)
    store.put_team_calendar("support", validate_calendar(closed_now_calendar(datetime.now(timezone.utc))),
                            author="demo", at=now)
    store.put_away_settings("support", validate_away({"enabled": True, "period_hours": 24}), author="demo", at=now)
    from chalicelib.domain.csat import validate_survey_settings

    # Surveys a minute after resolution (60 by default), so the fake platforms' answers show in the KPIs.
    store.put_survey_settings(validate_survey_settings({"enabled": True, "delay_minutes": 1}), author="demo", at=now)
    from local.demo_templates import seed_templates

    seed_templates()  # canned replies and brand-voice rules (issue 12)
    print("service levels: support is closed now (away message on), vip open around the clock; "
          "first response due in 2 minutes, warning at 1; CSAT asked a minute after resolution", flush=True)


def describe_notifications(seen: Set[str]) -> None:
    """New notifications in the demo supervisor's feed (what GET /notifications shows)."""
    from chalicelib.bootstrap import deps

    page = deps().notifications.notifications_page("demo", limit=50)
    for note in reversed(page.notifications):
        if note.notification_id not in seen:
            seen.add(note.notification_id)
            print(f"  notification ({note.reason}) case {note.case_id}: {note.detail}", flush=True)


def describe(results) -> None:
    for item in results["triaged"]:
        triage = item.get("triage") or {}
        if item.get("outcome") == "dead_lettered":
            print(f"  ! dead-lettered: {item.get('reason')}", flush=True)
        elif item.get("outcome") in ("triaged", "no_case"):
            verdict = "case" if item["outcome"] == "triaged" else f"no case ({triage.get('case_reason', '')})"
            print(f"  triaged {item['mention_id']}: {triage.get('category')}, {triage.get('sentiment')}, "
                  f"{triage.get('priority')}, tags={triage.get('tags')} -> {verdict}", flush=True)
    for item in results["assigned"]:
        if item.get("outcome") == "opened":
            print(f"  case {item['case_id']} opened: team {item['team']}, assigned to "
                  f"{item.get('assignee') or '(queue: everyone at capacity)'}, priority {item['priority']}", flush=True)
        elif item.get("outcome") == "joined":
            print(f"  follow-up {item['mention_id']} joined case {item['case_id']}", flush=True)
    for item in results["sent"]:
        if item.get("outcome") == "sent" and item.get("automatic"):
            print(f"  away message {item['reply_id']} sent, platform post id {item['platform_post_id']}", flush=True)
        elif item.get("outcome") == "sent":
            print(f"  reply {item['reply_id']} sent, platform post id {item['platform_post_id']}", flush=True)
        elif item.get("outcome") == "failed":
            print(f"  reply {item['reply_id']} failed: {item.get('error')}", flush=True)


def port_holder(port: int) -> str:
    """Who listens on ``port``, as far as this machine can tell (ss or lsof), for the error message."""
    import shutil
    import subprocess

    for command in (["ss", "-ltnpH", f"sport = :{port}"], ["lsof", "-nP", f"-iTCP:{port}", "-sTCP:LISTEN"]):
        if shutil.which(command[0]):
            try:
                out = subprocess.run(command, capture_output=True, text=True, timeout=5).stdout.strip()
            except (OSError, subprocess.SubprocessError):
                continue
            if out:
                return out.splitlines()[-1][:200]
    return "another program (ss and lsof could not say which)"


def busy_ports(ports: Dict[str, int]) -> List[str]:
    """The requested ports already taken, each with what holds it; port 0 means any free port."""
    import socket

    problems = []
    for name, port in ports.items():
        if not port:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                problems.append(f"port {port} ({name}) is in use: {port_holder(port)}")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--api-port", type=int, default=8000)
    parser.add_argument("--aws-port", type=int, default=5000)
    parser.add_argument("--x-port", type=int, default=8081)
    parser.add_argument("--graph-port", type=int, default=8082)
    parser.add_argument("--fetch-every", type=float, default=10.0, help="seconds between scheduled fetches (AWS: 1 minute)")
    parser.add_argument("--release", type=int, default=4, help="new posts appearing on the fake X per fetch")
    parser.add_argument("--agent-every", type=float, default=20.0,
                        help="seconds between the demo agent's turns (answer two cases, resolve what was sent)")
    parser.add_argument("--kpi-every", type=float, default=120.0, help="seconds between KPI summaries")
    parser.add_argument("--cost-every", type=float, default=180.0,
                        help="seconds between cost summaries (GET /reports/costs, checked against bench/cost.py)")
    args = parser.parse_args(argv)
    problems = busy_ports({"agent API": args.api_port, "embedded AWS": args.aws_port, "fake X": args.x_port,
                           "fake Graph": args.graph_port})
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr, flush=True)
        print("Is another `make demo` still running? Stop it, or choose other ports, e.g. "
              "`.venv/bin/python -m local.demo --api-port 0 --aws-port 0 --x-port 0 --graph-port 0` (0: any free port).",
              file=sys.stderr, flush=True)
        return 2

    stopping = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stopping.update(now=True))
    deployment = LocalDeployment(moto_port=args.aws_port, x_port=args.x_port, graph_port=args.graph_port,
                                 api_port=args.api_port, seed_release=args.release,
                                 progress=lambda line: print(line, flush=True))
    print("starting socialcare locally ...", flush=True)
    try:
        deployment.start()
        seed_service_levels()
        seen_notifications: Set[str] = set()
        api = deployment.api_url
        # The token rides in the fragment: the browser keeps it, the server never sees it in a URL.
        print(f"\nWeb inbox (signed in as the demo supervisor): {deployment.api_url}/#token={deployment.agent_token}", flush=True)
        print(f"\nAGENT_TOKEN={deployment.agent_token}\n", flush=True)
        print("Try, in another terminal (export AGENT_TOKEN=... first):", flush=True)
        print(f'  curl -s -H "Authorization: Bearer $AGENT_TOKEN" "{api}/cases?order=priority"', flush=True)
        print(f'  curl -s -H "Authorization: Bearer $AGENT_TOKEN" {api}/cases/<case_id>', flush=True)
        print(f'  curl -s -X POST -H "Authorization: Bearer $AGENT_TOKEN" -H "Content-Type: application/json" '
              f'-d \'{{"text": "Sorry about this, we are on it."}}\' {api}/cases/<case_id>/replies', flush=True)
        print(f'  curl -s -X PATCH -H "Authorization: Bearer $AGENT_TOKEN" -H "Content-Type: application/json" '
              f'-d \'{{"status": "resolved"}}\' {api}/cases/<case_id>', flush=True)
        print(f'  curl -s -H "Authorization: Bearer $AGENT_TOKEN" "{api}/cases?order=due&sla=breached"', flush=True)
        print(f'  curl -s -H "Authorization: Bearer $AGENT_TOKEN" {api}/notifications', flush=True)
        print(f'  curl -s -H "Authorization: Bearer $AGENT_TOKEN" "{api}/reports/kpis?from=YYYY-MM-DD&to=YYYY-MM-DD&group_by=agent"',
              flush=True)
        print(f'  curl -s -H "Authorization: Bearer $AGENT_TOKEN" "{api}/reports/costs?group_by=service"', flush=True)
        print("Ctrl-C stops everything.\n", flush=True)
        client = ApiClient(api, deployment.agent_token)
        agent = DemoAgent(client)
        next_fetch = 0.0
        next_agent = time.monotonic() + args.agent_every
        next_kpi = time.monotonic() + args.kpi_every
        next_cost, bench_per_mention = time.monotonic() + args.cost_every, demo_costs.bench_per_mention()
        while not stopping["now"]:
            if time.monotonic() >= next_fetch:
                for source in deployment.run_schedule():
                    if source.get("fetched") or source.get("outcome") != "ok":
                        print(f"fetch {source['source_id']}: {source.get('fetched', 0)} new "
                              f"({source['outcome']}{': ' + source['error'] if source.get('error') else ''})", flush=True)
                deployment.release_posts(args.release)
                next_fetch = time.monotonic() + args.fetch_every
                tick = deployment.run_sla_tick()
                if tick.get("crossings"):
                    print(f"sla tick: {tick['crossings']} warning(s)/breach(es) fired", flush=True)
            if time.monotonic() >= next_agent:
                for line in agent.turn():
                    print(f"  {line}", flush=True)
                next_agent = time.monotonic() + args.agent_every
            describe(deployment.pump())
            describe_notifications(seen_notifications)
            if time.monotonic() >= next_kpi:
                for line in kpi_summary(client):
                    print(line, flush=True)
                next_kpi = time.monotonic() + args.kpi_every
            if time.monotonic() >= next_cost:
                for line in demo_costs.fetch(client, bench_per_mention):
                    print(line, flush=True)
                next_cost = time.monotonic() + args.cost_every
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        print("\nstopping ...", flush=True)
        deployment.stop()
        print("stopped; nothing left running.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
