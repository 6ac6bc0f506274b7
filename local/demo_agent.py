"""The demo's stand-in agent and the KPI summary it prints, both through the public API only.

The demo supervisor answers the cases due first and resolves them once the
reply is sent, a few at a time, so the KPI report has first responses,
resolutions and (when the fake platforms answer the survey) CSAT to show.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

ANSWER = {"en": "Thank you for telling us. We have looked into it and fixed it; sorry for the trouble.",
          "ja": "ご連絡ありがとうございます。確認のうえ対応いたしました。ご迷惑をおかけし申し訳ございません。"}


class ApiClient:
    def __init__(self, base_url: str, token: str) -> None:
        self.base_url, self.token = base_url.rstrip("/"), token

    def call(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                text = answer.read().decode()
        except urllib.error.HTTPError as err:
            return {"error": err.code, "message": err.read().decode(errors="replace")[:300]}
        try:
            return json.loads(text)
        except ValueError:
            return text


class DemoAgent:
    """Answers up to ``per_turn`` open cases a turn and resolves those whose reply went out."""

    def __init__(self, api: ApiClient, per_turn: int = 2) -> None:
        self.api, self.per_turn = api, per_turn
        self.answered: Dict[str, str] = {}  # case id -> reply id
        self.resolved: List[str] = []

    def turn(self) -> List[str]:
        said: List[str] = []
        for case_id, reply_id in list(self.answered.items()):
            detail = self.api.call("GET", f"/cases/{case_id}")
            replies = {r.get("reply_id"): r for r in (detail.get("replies") or [])} if isinstance(detail, dict) else {}
            if replies.get(reply_id, {}).get("delivery_status") == "sent":
                answer = self.api.call("PATCH", f"/cases/{case_id}", {"status": "resolved"})
                if isinstance(answer, dict) and answer.get("status") == "resolved":
                    said.append(f"demo agent resolved case {case_id}")
                    self.resolved.append(case_id)
                del self.answered[case_id]
        listing = self.api.call("GET", f"/cases?order=due&limit={self.per_turn + len(self.answered)}")
        for case in (listing.get("cases") or []) if isinstance(listing, dict) else []:
            if len(said) >= self.per_turn or case["case_id"] in self.answered:
                continue
            text = ANSWER["ja" if case.get("lang") == "ja" else "en"]
            reply = self.api.call("POST", f"/cases/{case['case_id']}/replies",
                                  {"text": text, "idempotency_key": f"demo-{case['case_id']}"})
            if isinstance(reply, dict) and reply.get("reply_id"):
                self.answered[case["case_id"]] = reply["reply_id"]
                said.append(f"demo agent answered case {case['case_id']}")
        return said


def kpi_summary(api: ApiClient) -> List[str]:
    """Today's KPIs by team from GET /reports/kpis, as a few lines."""
    today = datetime.now(timezone.utc).date().isoformat()
    report = api.call("GET", f"/reports/kpis?from={today}&to={today}&group_by=team")
    if not isinstance(report, dict) or "rows" not in report:
        return [f"KPI report unavailable: {report}"]
    lines = [f"KPIs today ({today}, by team):"]
    for row in report["rows"]:
        first = (row.get("first_response_seconds") or {}).get("median")
        csat = row.get("csat") or {}
        lines.append(
            f"  {row['key']:<10} opened {row.get('cases_opened', 0):>3}  resolved {row.get('cases_resolved', 0):>3}  "
            f"backlog {row.get('backlog', 0):>3}  first response median "
            f"{'-' if first is None else f'{first:.0f}s'}  SLA met "
            f"{'-' if row.get('sla_met_rate') is None else format(row['sla_met_rate'], '.0%')}  "
            f"CSAT {csat.get('responses', 0)} answer(s)"
            + (f", average {csat['average']:.1f}" if csat.get("average") is not None else ""))
    return lines
