"""The settings store with the shared settings kept per container for a minute (issue 17, a smaller bill).

Every case change read the SLA policy, every team's calendars, the survey and the QA settings again,
strongly consistent: about 10 read units a case. ``CachedSettingsStore`` keeps each of them for
``SETTINGS_TTL_SECONDS`` in the container (as the triage rules are kept, services/rules.py) and reads them,
when it does, eventually consistent (half the price). A supervisor's change takes effect at once in the
container that saved it (its write forgets the cached value) and within a minute everywhere else.

The list of teams and each team's away settings are kept the same way, read strongly (the list is read
again, uncached, when an agent is saved: that write extends it). Everything else (agents, presence, rules versions, ...) is read
as ``DynamoSettingsStore`` reads it.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar

from chalicelib.adapters.dynamo import ddb, marshal, unmarshal
from chalicelib.adapters.stores import DynamoSettingsStore, _strip
from chalicelib.domain.agent import Agent
from chalicelib.domain.away import AwaySettings
from chalicelib.domain.csat import SurveySettings
from chalicelib.domain.hours import Calendar
from chalicelib.domain.qa import Rubric, SamplingPolicy
from chalicelib.domain.sla import SlaPolicy

SETTINGS_TTL_SECONDS = 60
# The items only the cached getters read: read eventually consistent.
_SHARED = {("SLA", "POLICY"), ("CSAT", "SETTINGS"), ("QA", "RUBRIC"), ("QA", "SAMPLING")}

T = TypeVar("T")


class CachedSettingsStore(DynamoSettingsStore):
    def __init__(self, table: str, *, ttl_seconds: float = SETTINGS_TTL_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__(table)
        self._ttl = ttl_seconds
        self._clock = clock
        self._kept: Dict[str, Tuple[float, Any]] = {}

    def _cached(self, name: str, load: Callable[[], T]) -> T:
        now = self._clock()
        hit = self._kept.get(name)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        value = load()
        self._kept[name] = (now, value)
        return value

    def forget_cached(self) -> None:
        self._kept.clear()

    def _get(self, pk: str, sk: str) -> Optional[Dict[str, Any]]:
        if (pk, sk) not in _SHARED:
            return super()._get(pk, sk)
        item = ddb().get_item(TableName=self.table, Key=marshal({"pk": pk, "sk": sk})).get("Item")
        return _strip(unmarshal(item)) if item else None

    # ---- cached reads (calendars: a Query, eventually consistent already) ----------------------------
    def get_sla_policy(self) -> Optional[SlaPolicy]:
        return self._cached("sla", super().get_sla_policy)

    def team_calendars(self) -> Dict[str, Calendar]:
        return dict(self._cached("calendars", super().team_calendars))

    def get_survey_settings(self) -> Optional[SurveySettings]:
        return self._cached("survey", super().get_survey_settings)

    def get_qa_rubric(self) -> Optional[Rubric]:
        return self._cached("qa_rubric", super().get_qa_rubric)

    def get_qa_sampling(self) -> Optional[SamplingPolicy]:
        return self._cached("qa_sampling", super().get_qa_sampling)

    def teams(self) -> List[str]:
        return list(self._cached("teams", super().teams))

    def get_away_settings(self, team: str) -> Optional[AwaySettings]:
        return self._cached(f"away:{team}", lambda: super(CachedSettingsStore, self).get_away_settings(team))

    # ---- writes forget what this container kept -------------------------------------------------------
    def put_sla_policy(self, policy: SlaPolicy, *, author: str, at: str) -> None:
        super().put_sla_policy(policy, author=author, at=at)
        self._kept.pop("sla", None)

    def put_team_calendar(self, team: str, calendar: Calendar, *, author: str, at: str) -> None:
        super().put_team_calendar(team, calendar, author=author, at=at)
        self._kept.pop("calendars", None)

    def delete_team_calendar(self, team: str) -> bool:
        try:
            return super().delete_team_calendar(team)
        finally:
            self._kept.pop("calendars", None)

    def put_survey_settings(self, survey: SurveySettings, *, author: str, at: str) -> None:
        super().put_survey_settings(survey, author=author, at=at)
        self._kept.pop("survey", None)

    def put_qa_rubric(self, rubric: Rubric, *, author: str, at: str) -> None:
        super().put_qa_rubric(rubric, author=author, at=at)
        self._kept.pop("qa_rubric", None)

    def put_qa_sampling(self, policy: SamplingPolicy, *, author: str, at: str) -> None:
        super().put_qa_sampling(policy, author=author, at=at)
        self._kept.pop("qa_sampling", None)

    def put_agent(self, agent: Agent) -> None:
        # It adds the agent's teams to the list of teams it reads: never over a list kept from before.
        self._kept.pop("teams", None)
        try:
            super().put_agent(agent)
        finally:
            self._kept.pop("teams", None)

    def put_away_settings(self, team: str, away: AwaySettings, *, author: str, at: str) -> None:
        super().put_away_settings(team, away, author=author, at=at)
        self._kept.pop(f"away:{team}", None)
