"""The scheduled X token refresh (services/credentials.py) on in-memory fakes with an injected clock."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List

import pytest

from chalicelib.domain.errors import AuthFailed, TransientFailure
from chalicelib.services import credentials
from tests.fakes import Clock, fake_deps

CLIENT = "client-123"


@dataclass(frozen=True)
class Grant:
    access_token: str
    refresh_token: str
    expires_in: int = 7200


class Store:
    """The secret: a JSON object, read fresh and merged on update, like PlatformSecrets."""

    def __init__(self, values: Dict[str, Any], fail_writes: int = 0):
        self.values = dict(values)
        self.fail_writes = fail_writes
        self.writes: List[Dict[str, Any]] = []

    def read(self) -> Dict[str, Any]:
        return dict(self.values)

    def update(self, changes: Dict[str, Any]) -> None:
        if self.fail_writes:
            self.fail_writes -= 1
            raise ConnectionError("Secrets Manager unreachable")
        self.writes.append(dict(changes))
        self.values.update(changes)


class Refresher:
    """X's token endpoint: rotates the refresh token, refuses a spent one."""

    def __init__(self, valid: str, error: Exception | None = None, on_refresh: Any = None):
        self.valid = valid
        self.error = error
        self.on_refresh = on_refresh
        self.calls: List[Dict[str, str]] = []
        self.issued = 0

    def refresh(self, refresh_token: str, *, client_id: str, client_secret: str = "") -> Grant:
        self.calls.append({"refresh_token": refresh_token, "client_id": client_id, "client_secret": client_secret})
        if self.on_refresh:
            self.on_refresh()
        if self.error:
            raise self.error
        if refresh_token != self.valid:
            raise AuthFailed("invalid_grant: Value passed for the token was invalid.")
        self.issued += 1
        self.valid = f"rt{self.issued}"
        return Grant(access_token=f"at{self.issued}", refresh_token=self.valid)


class Log:
    def __init__(self) -> None:
        self.lines: List[tuple] = []

    def __getattr__(self, level: str):
        return lambda message, extra=None: self.lines.append((level, message, extra or {}))


def deps_with_sources(clock: Clock):
    deps = fake_deps(clock)
    for source in ({"source_id": "x:mentions:1", "kind": "x_mentions", "platform": "x"},
                   {"source_id": "x:dm:1", "kind": "x_dm", "platform": "x"},
                   {"source_id": "facebook:feed:9", "kind": "facebook_feed", "platform": "facebook"}):
        deps.settings.put_source({**source, "state": "ok"})
    return deps


def stored(clock: Clock, expires_in_seconds: float, **extra: Any) -> Dict[str, Any]:
    return {"x_bearer_token": "app", "meta_access_token": "meta", "x_user_token": "at0", "x_refresh_token": "rt0",
            "x_client_id": CLIENT, "x_user_token_expires_at": str(int(clock.epoch() + expires_in_seconds)), **extra}


def test_a_token_expiring_within_45_minutes_is_refreshed_and_the_rotated_pair_stored():
    clock = Clock()
    deps, store, refresher = deps_with_sources(clock), Store(stored(clock, 44 * 60)), Refresher("rt0")

    result = credentials.refresh_x_token(deps, store, refresher)

    assert result == {"outcome": "refreshed", "expires_at": int(clock.epoch()) + 7200}
    assert refresher.calls == [{"refresh_token": "rt0", "client_id": CLIENT, "client_secret": ""}]
    assert store.values["x_user_token"] == "at1" and store.values["x_refresh_token"] == "rt1"
    assert store.values["x_user_token_expires_at"] == str(int(clock.epoch()) + 7200)
    assert store.values["meta_access_token"] == "meta" and store.values["x_bearer_token"] == "app"
    # The next run, 30 minutes later, uses the rotated refresh token (the first one is spent).
    clock.advance(minutes=30)
    assert credentials.refresh_x_token(deps, store, refresher)["outcome"] == "fresh"
    clock.advance(minutes=60)  # 30 minutes left
    assert credentials.refresh_x_token(deps, store, refresher)["outcome"] == "refreshed"
    assert refresher.calls[-1]["refresh_token"] == "rt1" and store.values["x_refresh_token"] == "rt2"


def test_a_token_with_more_than_45_minutes_left_is_left_alone():
    clock = Clock()
    store, refresher = Store(stored(clock, 46 * 60)), Refresher("rt0")
    assert credentials.refresh_x_token(deps_with_sources(clock), store, refresher)["outcome"] == "fresh"
    assert refresher.calls == [] and store.writes == []


def test_a_token_of_unknown_expiry_is_refreshed_at_once():
    clock = Clock()
    values = stored(clock, 0)
    del values["x_user_token_expires_at"]
    store = Store(values)
    assert credentials.refresh_x_token(deps_with_sources(clock), store, Refresher("rt0"))["outcome"] == "refreshed"
    assert store.values["x_user_token_expires_at"] == str(int(clock.epoch()) + 7200)


def test_a_confidential_client_sends_its_secret():
    clock = Clock()
    refresher = Refresher("rt0")
    credentials.refresh_x_token(deps_with_sources(clock), Store(stored(clock, 60, x_client_secret="s3cret")), refresher)
    assert refresher.calls[0]["client_secret"] == "s3cret"


def test_without_a_refresh_token_nothing_is_called():
    clock = Clock()
    store, refresher = Store({"x_bearer_token": "app", "x_user_token": "static"}), Refresher("rt0")
    result = credentials.refresh_x_token(deps_with_sources(clock), store, refresher)
    assert result["outcome"] == "not_configured" and refresher.calls == [] and store.writes == []


def test_a_refused_refresh_marks_the_x_sources_needs_attention_and_is_logged():
    clock = Clock()
    deps, store, log = deps_with_sources(clock), Store(stored(clock, 60, x_refresh_token="spent")), Log()

    result = credentials.refresh_x_token(deps, store, Refresher("rt0"), log=log)

    assert result["outcome"] == "refused" and result["sources"] == ["x:dm:1", "x:mentions:1"]
    for source_id in ("x:mentions:1", "x:dm:1"):
        status = deps.settings.get_source(source_id)
        assert status["state"] == "needs_attention"
        assert "invalid_grant" in status["last_error"] and "infra/admin.py connect-x" in status["last_error"]
    assert deps.settings.get_source("facebook:feed:9")["state"] == "ok"
    assert store.writes == []  # nothing stored over the (spent) values: a person reconnects
    assert [line[0] for line in log.lines] == ["error"]


def test_a_refusal_after_another_run_rotated_the_token_is_not_an_alarm():
    clock = Clock()
    deps, store = deps_with_sources(clock), Store(stored(clock, 60))

    def other_run_rotates_first() -> None:
        store.values.update(x_refresh_token="rt-by-other-run", x_user_token="at-by-other-run")

    refresher = Refresher("not-rt0", on_refresh=other_run_rotates_first)
    assert credentials.refresh_x_token(deps, store, refresher)["outcome"] == "refreshed_elsewhere"
    assert deps.settings.get_source("x:dm:1")["state"] == "ok"
    assert store.values["x_refresh_token"] == "rt-by-other-run"


def test_a_passing_failure_changes_nothing_and_the_next_run_refreshes():
    clock = Clock()
    deps, store, log = deps_with_sources(clock), Store(stored(clock, 20 * 60)), Log()
    refresher = Refresher("rt0", error=TransientFailure("X token endpoint answered 503"))

    result = credentials.refresh_x_token(deps, store, refresher, log=log)

    assert result["outcome"] == "retry" and "503" in result["error"]
    assert store.writes == [] and deps.settings.get_source("x:dm:1")["state"] == "ok"
    assert [line[0] for line in log.lines] == ["warning"]
    refresher.error = None
    clock.advance(minutes=30)  # 20 minutes later the old token still worked; now it is refreshed
    assert credentials.refresh_x_token(deps, store, refresher)["outcome"] == "refreshed"
    assert store.values["x_refresh_token"] == "rt1"


def test_the_rotated_pair_is_written_again_until_it_is_stored():
    clock = Clock()
    store = Store(stored(clock, 60), fail_writes=2)
    refresher = Refresher("rt0")
    assert credentials.refresh_x_token(deps_with_sources(clock), store, refresher)["outcome"] == "refreshed"
    assert len(refresher.calls) == 1  # refreshed once; only the write was repeated
    assert store.values["x_refresh_token"] == "rt1"


def test_when_the_rotated_pair_cannot_be_stored_the_run_fails_loudly_without_refreshing_again():
    clock = Clock()
    store, log = Store(stored(clock, 60), fail_writes=10), Log()
    refresher = Refresher("rt0")
    with pytest.raises(ConnectionError):
        credentials.refresh_x_token(deps_with_sources(clock), store, refresher, log=log)
    assert len(refresher.calls) == 1
    assert log.lines[-1][0] == "critical" and "connect-x" in log.lines[-1][1]
    assert all("rt1" not in repr(line) and "at1" not in repr(line) for line in log.lines)  # no token in logs
