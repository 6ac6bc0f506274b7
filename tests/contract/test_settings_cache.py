"""The shared settings kept a minute per container (adapters/settings_cache.py, issue 17): a change saved
in this container shows at once, one saved elsewhere within the minute, and each is read once a minute."""
from __future__ import annotations

import pytest

from chalicelib.domain.agent import Agent
from chalicelib.domain.away import AwaySettings
from chalicelib.domain.hours import validate_calendar
from chalicelib.domain.sla import validate_policy

NOW = "2026-11-23T12:00:00.000000Z"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def stores(aws):
    from chalicelib.adapters.settings_cache import CachedSettingsStore
    from chalicelib.adapters.stores import DynamoSettingsStore

    clock = Clock()
    return CachedSettingsStore("socialcare-test-settings", clock=clock), DynamoSettingsStore("socialcare-test-settings"), clock


def policy(first_response: int):
    return validate_policy({"default": {"urgent": {"first_response": first_response}}})


def counting_reads(monkeypatch):
    from chalicelib.adapters import dynamo

    real = dynamo.ddb
    calls = []

    class Counting:
        def __getattr__(self, name):
            if name in ("get_item", "query"):
                calls.append(name)
            return getattr(real(), name)

    import chalicelib.adapters.settings_cache as cache_module
    import chalicelib.adapters.stores as stores_module

    for module in (dynamo, stores_module, cache_module):
        monkeypatch.setattr(module, "ddb", lambda: Counting())
    return calls


def test_a_change_saved_elsewhere_shows_within_a_minute_and_a_change_saved_here_at_once(stores):
    cached, elsewhere, clock = stores
    assert cached.get_sla_policy() is None and cached.team_calendars() == {}
    elsewhere.put_sla_policy(policy(30), author="boss", at=NOW)
    tokyo = validate_calendar({"time_zone": "Asia/Tokyo", "weekly": {"mon": [["09:00", "18:00"]]}})
    elsewhere.put_team_calendar("support", tokyo, author="boss", at=NOW)
    elsewhere.put_away_settings("support", AwaySettings(enabled=True), author="boss", at=NOW)
    assert cached.get_sla_policy() is None and cached.team_calendars() == {}  # kept
    clock.now += 61
    assert cached.get_sla_policy() == policy(30)
    assert list(cached.team_calendars()) == ["support"]
    assert cached.get_away_settings("support") == AwaySettings(enabled=True)

    cached.put_sla_policy(policy(15), author="boss", at=NOW)
    cached.put_away_settings("support", AwaySettings(enabled=False), author="boss", at=NOW)
    assert cached.get_sla_policy() == policy(15)
    assert cached.get_away_settings("support") == AwaySettings(enabled=False)
    assert cached.delete_team_calendar("support") is True
    assert cached.team_calendars() == {}


def test_each_setting_is_read_once_a_minute_and_saving_an_agent_never_loses_a_team(stores, monkeypatch):
    cached, elsewhere, clock = stores
    elsewhere.put_agent(Agent(agent_id="aiko", teams=["support"], capacity=5))
    calls = counting_reads(monkeypatch)
    for _ in range(5):
        cached.get_sla_policy(), cached.team_calendars(), cached.teams(), cached.get_survey_settings()
    assert len(calls) == 4
    assert cached.teams() == ["support"]

    elsewhere.put_agent(Agent(agent_id="ken", teams=["billing"], capacity=5))  # another container
    cached.put_agent(Agent(agent_id="mei", teams=["vip"], capacity=5))
    assert cached.teams() == ["billing", "support", "vip"]
