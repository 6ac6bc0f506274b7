"""Routing: which team owns a case and which agent in it takes it. Pure.

Team rules are checked in order; the first match wins. A triage rule that
says ``route_team`` (supervisor data) overrides the defaults.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional

from chalicelib.domain.agent import Agent

DEFAULT_TEAM = "support"
# (condition, team): verified accounts go to the VIP desk, product feedback to
# the product team, sales leads to sales; everything else to support.
DEFAULT_TEAM_RULES: List[Dict[str, Any]] = [
    {"when": {"tag": "vip"}, "team": "vip"},
    {"when": {"category": "product_feedback"}, "team": "product"},
    {"when": {"category": "sales_lead"}, "team": "sales"},
]


def choose_team(triage: Dict[str, Any], rules: Iterable[Dict[str, Any]] = DEFAULT_TEAM_RULES,
                known_teams: Optional[Iterable[str]] = None) -> str:
    """The team for a triaged mention; falls back to support for a team nobody staffs."""
    staffed = set(known_teams) if known_teams is not None else None

    def usable(team: Optional[str]) -> bool:
        return bool(team) and (staffed is None or team in staffed)

    if usable(triage.get("team")):
        return triage["team"]
    tags = set(triage.get("tags") or [])
    for rule in rules:
        when = rule["when"]
        if "tag" in when and when["tag"] not in tags:
            continue
        if "category" in when and when["category"] != triage.get("category"):
            continue
        if usable(rule["team"]):
            return rule["team"]
    return DEFAULT_TEAM


def choose_agent(agents: Iterable[Agent]) -> Optional[Agent]:
    """The available agent with the fewest open cases, below capacity.

    Ties go to the agent who has waited longest since their last assignment,
    so equal load still spreads evenly. None when everyone is full or away:
    the case then waits unassigned in the team queue.
    """
    candidates = [a for a in agents if a.has_room]
    if not candidates:
        return None
    return min(candidates, key=lambda a: (a.open_cases, a.last_assigned_at, a.agent_id))
