"""Agents and supervisors: who works which team's cases, and how many at once."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

from chalicelib.domain.errors import BadRequest

ROLES = ("agent", "supervisor")
DEFAULT_CAPACITY = 20
MAX_CAPACITY = 500
MAX_TEAMS = 50
MAX_NAME = 200
MAX_TEAM_NAME = 64


@dataclass
class Agent:
    agent_id: str
    name: str = ""
    teams: List[str] = field(default_factory=list)
    capacity: int = DEFAULT_CAPACITY
    available: bool = True
    role: str = "agent"
    open_cases: int = 0
    last_assigned_at: str = ""

    @property
    def is_supervisor(self) -> bool:
        return self.role == "supervisor"

    @property
    def has_room(self) -> bool:
        return self.available and self.open_cases < self.capacity

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Agent":
        return cls(
            agent_id=str(data["agent_id"]), name=str(data.get("name") or data["agent_id"]),
            teams=list(data.get("teams") or []), capacity=int(data.get("capacity", DEFAULT_CAPACITY)),
            available=bool(data.get("available", True)), role=str(data.get("role") or "agent"),
            open_cases=int(data.get("open_cases") or 0), last_assigned_at=str(data.get("last_assigned_at") or ""),
        )

    def public_view(self) -> Dict[str, Any]:
        return self.to_dict()


def valid_team_name(team: Any) -> bool:
    return (isinstance(team, str) and 0 < len(team) <= MAX_TEAM_NAME and "#" not in team
            and team.strip() == team and team.isprintable())


def validate_agent(agent_id: str, body: Any, existing: Optional[Agent]) -> Agent:
    """A supervisor's change to an agent: teams, capacity, availability, role, name."""
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object, e.g. {\"teams\": [\"support\"], \"capacity\": 20}")
    agent = existing or Agent(agent_id=agent_id, name=agent_id)
    teams = body.get("teams", agent.teams)
    if (not isinstance(teams, list) or not teams or len(teams) > MAX_TEAMS
            or not all(valid_team_name(t) for t in teams)):
        raise BadRequest(f"field 'teams' must be a list of 1 to {MAX_TEAMS} team names "
                         f"(1 to {MAX_TEAM_NAME} printable characters, no '#')")
    capacity = body.get("capacity", agent.capacity)
    if not isinstance(capacity, int) or isinstance(capacity, bool) or not 1 <= capacity <= MAX_CAPACITY:
        raise BadRequest(f"field 'capacity' must be a whole number of open cases from 1 to {MAX_CAPACITY}")
    available = body.get("available", agent.available)
    if not isinstance(available, bool):
        raise BadRequest("field 'available' must be true or false")
    role = body.get("role", agent.role)
    if role not in ROLES:
        raise BadRequest("field 'role' must be 'agent' or 'supervisor'")
    name = body.get("name", agent.name or agent_id)
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise BadRequest(f"field 'name' must be a non-empty string of at most {MAX_NAME} characters")
    return Agent(agent_id=agent_id, name=name, teams=sorted(set(teams)), capacity=capacity, available=available,
                 role=role, open_cases=agent.open_cases, last_assigned_at=agent.last_assigned_at)
