"""Agents and supervisors: who works which team's cases, and how many at once."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

from chalicelib.domain.errors import BadRequest
from chalicelib.domain.limits import MAX_ID_LENGTH, id_problem, text_problem

# finance sees the cost and KPI reports and nothing else (no case, no customer, no setting).
ROLES = ("agent", "supervisor", "finance")
# online: takes cases; away: keeps their cases, takes no new ones; offline: signed off (a shift ended).
PRESENCES = ("online", "away", "offline")
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
    # Set by the agent (PUT /me/presence) and by the team calendar when a shift ends. Agents stored
    # before presence existed are online, as they took cases then.
    presence: str = "online"
    presence_changed_at: str = ""

    @property
    def is_supervisor(self) -> bool:
        return self.role == "supervisor"

    @property
    def has_room(self) -> bool:
        """May get one more case now: enabled by a supervisor, online, below capacity."""
        return self.available and self.presence == "online" and self.open_cases < self.capacity

    @property
    def free_slots(self) -> int:
        return max(0, self.capacity - self.open_cases) if self.available and self.presence == "online" else 0

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Agent":
        return cls(
            agent_id=str(data["agent_id"]), name=str(data.get("name") or data["agent_id"]),
            teams=list(data.get("teams") or []), capacity=int(data.get("capacity", DEFAULT_CAPACITY)),
            available=bool(data.get("available", True)), role=str(data.get("role") or "agent"),
            open_cases=int(data.get("open_cases") or 0), last_assigned_at=str(data.get("last_assigned_at") or ""),
            presence=str(data.get("presence") or "online"),
            presence_changed_at=str(data.get("presence_changed_at") or ""),
        )

    def public_view(self) -> Dict[str, Any]:
        return self.to_dict()


def valid_team_name(team: Any) -> bool:
    return (isinstance(team, str) and 0 < len(team) <= MAX_TEAM_NAME and "#" not in team
            and team.strip() == team and team.isprintable())


def validate_agent_id(agent_id: Any) -> str:
    """An agent id is the Cognito username: 1 to 128 letters, digits, punctuation or symbols, no '#'."""
    problem = id_problem(agent_id, max_length=MAX_ID_LENGTH)
    if problem is None and "#" in agent_id:
        problem = "contains '#'"
    if problem:
        raise BadRequest(f"agent id {problem}; use the agent's sign-in name (1 to {MAX_ID_LENGTH} characters "
                         f"without spaces, control characters or '#')")
    return str(agent_id)


def validate_agent(agent_id: str, body: Any, existing: Optional[Agent]) -> Agent:
    """A supervisor's change to an agent: teams, capacity, availability, role, name."""
    validate_agent_id(agent_id)
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object, e.g. {\"teams\": [\"support\"], \"capacity\": 20}")
    agent = existing or Agent(agent_id=agent_id, name=agent_id)
    teams = body.get("teams", agent.teams)
    if (not isinstance(teams, list) or not teams or len(teams) > MAX_TEAMS
            or not all(valid_team_name(t) for t in teams)):
        raise BadRequest(f"field 'teams' must be a list of 1 to {MAX_TEAMS} team names "
                         f"(1 to {MAX_TEAM_NAME} printable characters, no '#')")
    capacity = body.get("capacity", agent.capacity)
    if type(capacity) is not int or not 1 <= capacity <= MAX_CAPACITY:  # not a bool, not 20.0
        raise BadRequest(f"field 'capacity' must be a whole number of open cases from 1 to {MAX_CAPACITY}")
    available = body.get("available", agent.available)
    if not isinstance(available, bool):
        raise BadRequest("field 'available' must be true or false")
    role = body.get("role", agent.role)
    if not isinstance(role, str) or role not in ROLES:
        raise BadRequest("field 'role' must be 'agent', 'supervisor' or 'finance'")
    name = body.get("name", agent.name or agent_id)
    problem = text_problem(name, max_length=MAX_NAME)
    if problem is None and not name.strip():
        problem = "is empty"
    if problem:
        raise BadRequest(f"field 'name' {problem}; give a display name of 1 to {MAX_NAME} characters "
                         f"on one line")
    return Agent(agent_id=agent_id, name=name, teams=sorted(set(teams)), capacity=capacity, available=available,
                 role=role, open_cases=agent.open_cases, last_assigned_at=agent.last_assigned_at,
                 presence=agent.presence, presence_changed_at=agent.presence_changed_at)


def validate_presence(body: Any) -> str:
    """An agent's own presence change: {"presence": "online" | "away" | "offline"}."""
    if not isinstance(body, dict) or set(body) != {"presence"} or body["presence"] not in PRESENCES:
        raise BadRequest('body must be {"presence": "online"}, "away" or "offline" (online takes new cases, '
                         "away keeps yours without new ones, offline signs off)")
    return str(body["presence"])
