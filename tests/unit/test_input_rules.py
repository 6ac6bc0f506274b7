"""Input limits, without AWS: the JSON parser, the id/text/query rules, the validators, fail-closed sign-in."""
from __future__ import annotations

import dataclasses
import json
import time
from types import SimpleNamespace

import pytest

from chalicelib.domain import limits
from chalicelib.domain.agent import Agent, validate_agent, validate_agent_id
from chalicelib.domain.errors import BadRequest
from chalicelib.domain.source import X_MAX_QUERY_LENGTH, validate_source, x_search_query


def refused(raw, match=None):
    with pytest.raises(BadRequest, match=match) as info:
        limits.parse_json(raw)
    return str(info.value)


# ---- parse_json --------------------------------------------------------------------

def test_ordinary_json_parses():
    assert limits.parse_json(b'{"a": [1, 2.5, "\\u3042", "\\ud83d\\ude00", null, true]}') == \
        {"a": [1, 2.5, "あ", "😀", None, True]}
    assert limits.parse_json('{"name": "ソラ"}') == {"name": "ソラ"}
    assert limits.parse_json(b'{"n": ' + b"9" * 38 + b"}") == {"n": int("9" * 38)}
    nested = "[" * limits.MAX_JSON_DEPTH + "]" * limits.MAX_JSON_DEPTH
    assert limits.parse_json(nested.encode()) is not None


HOSTILE = [
    (b"", "empty"),
    (None, "empty"),
    (b" " * (limits.MAX_BODY_BYTES + 1), "256 KiB"),
    (b"[" * 100_000, "32 levels"),
    (b'{"a":' * 50_000, "32 levels"),
    (("[" * 33 + "]" * 33).encode(), "32 levels"),
    (("[" * 900 + "]" * 900).encode(), "32 levels"),
    (b'"\\ud800"', "surrogate"),
    (b'{"name": "ok", "x": ["abc\\udfff"]}', "surrogate"),
    (b'{"\\ud800": 1}', "field name"),
    (b"1e400", "too large"),
    (b"-1e400", "too large"),
    (b"1e200", "too large"),
    (b"1e-200", "too close to zero"),
    (b"1" + b"0" * 400, "401 digits"),
    (b"-" + b"9" * 39, "39 digits"),
    (b"NaN", "NaN"),
    (b"Infinity", "Infinity"),
    (b"[-Infinity]", "Infinity"),
    (b'{"a": 1, "a": 2}', "more than once"),
    (b"\xff\xfe{}", "UTF-8"),
    (b'{"a": "\xc3("}', "UTF-8"),
    ('{"a": "\ud800"}', "UTF-8"),  # text handed over already decoded, with a raw surrogate
    (b"\xef\xbb\xbf{}", "not valid JSON"),  # a BOM
    (b"{'a': 1}", "not valid JSON"),
    (("[" + "0," * limits.MAX_JSON_VALUES + "0]").encode(), "20,000 values"),
]


@pytest.mark.parametrize("raw, match", HOSTILE, ids=[f"{n}-{(r or b'')[:12]!r}" for n, (r, _) in enumerate(HOSTILE)])
def test_hostile_json_is_a_bad_request_saying_what_to_fix(raw, match):
    message = refused(raw, match)
    assert len(message) > 20


def test_parsing_a_maximal_hostile_body_is_fast():
    started = time.perf_counter()
    for raw in (b"[" * limits.MAX_BODY_BYTES, b"[" + b"0," * 120_000 + b"0]", b'"' + b"\\ud800" * 40_000 + b'"'):
        with pytest.raises(BadRequest):
            limits.parse_json(raw)
    assert time.perf_counter() - started < 2


# ---- text, ids, path and query -----------------------------------------------------

def test_text_problem():
    assert limits.text_problem("山田\u3000花子 😀", max_length=20) is None  # ideographic space, emoji
    assert limits.text_problem("line\nbreak", max_length=20, multiline=True) is None
    assert "U+000A" in limits.text_problem("line\nbreak", max_length=20)
    assert "U+0000" in limits.text_problem("a\x00", max_length=20, multiline=True)
    assert "U+2028" in limits.text_problem("a\u2028b", max_length=20, multiline=True)
    assert "surrogate" in limits.text_problem("a\ud800", max_length=20)
    assert "at most 3" in limits.text_problem("abcd", max_length=3)
    assert limits.text_problem(5, max_length=3) == "must be a string"


@pytest.mark.parametrize("value", ["", "a b", "a\tb", "a\x00", "a\x7f", "a\u200bb", "a\u3000b", "\ud800",
                                   "x" * 129, None, 5, ["a"]])
def test_bad_ids(value):
    assert limits.id_problem(value)


@pytest.mark.parametrize("value", ["aiko", "agent.alice", "kana@example.com", "c_0123abcdef", "山田", "x" * 128])
def test_good_ids(value):
    assert limits.id_problem(value) is None


def test_path_and_query_checks():
    limits.check_path_params({"case_id": "c_1"})
    limits.check_path_params(None)
    with pytest.raises(BadRequest, match="case id in the path is 10,000 characters; at most 128"):
        limits.check_path_params({"case_id": "c" * 10_000})
    limits.check_query_params({"status": "o" * limits.MAX_QUERY_VALUE_LENGTH, "cursor": "A" * 4096})
    for params, match in [
        ({"team": "A" * (limits.MAX_QUERY_VALUE_LENGTH + 1)}, "at most 2,048"),
        ({"cursor": "A" * 4097}, "at most 4,096"),
        ({"status": "open\r\n"}, "U\\+000D"),
        ({"k" * 65: "1"}, "name"),
        ({f"p{n}": "1" for n in range(limits.MAX_QUERY_PARAMS + 1)}, "at most 20"),
        (MultiDict({"status": ["open", "closed"]}), "given 2 times"),
    ]:
        with pytest.raises(BadRequest, match=match):
            limits.check_query_params(params)


class MultiDict(dict):
    """Chalice's query_params: the last value by key, every value by getlist."""

    def __getitem__(self, key):
        return super().__getitem__(key)[-1]

    def getlist(self, key):
        return list(super().__getitem__(key))


# ---- json_body and api_errors ----------------------------------------------------

def test_json_body_refuses_hostile_bodies_before_any_route_sees_them():
    from chalicelib.entrypoints.http import json_body

    assert json_body(SimpleNamespace(raw_body=b'{"status": "open"}')) == {"status": "open"}
    for raw in (b"", b"[" * 100_000, b'{"text": "\\ud800"}', b"\xff", b"1e400"):
        with pytest.raises(BadRequest):
            json_body(SimpleNamespace(raw_body=raw))

    class Undecodable:
        @property
        def raw_body(self):
            return "\ud800".encode("utf-8")  # as Chalice encodes a str body

    with pytest.raises(BadRequest, match="UTF-8"):
        json_body(Undecodable())


@pytest.mark.parametrize("fault", [RecursionError("maximum recursion depth exceeded"),
                                   OverflowError("int too large to convert to float"),
                                   UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")])
def test_input_faults_that_escape_validation_are_a_400_not_a_500(fault):
    from chalicelib.entrypoints.http import api_errors

    @api_errors
    def route():
        raise fault

    answer = route()
    assert answer.status_code == 400 and "cannot process" in answer.body["error"]


def test_other_faults_stay_server_errors():
    from chalicelib.entrypoints.http import api_errors

    @api_errors
    def route():
        raise KeyError("bug")

    with pytest.raises(KeyError):
        route()


# ---- sources -----------------------------------------------------------------------

SEARCH = {"kind": "x_search", "account_id": "1500000000000000001", "handle": "@SoraAir", "terms": ["Sora Air"]}


def test_a_valid_search_source():
    source = validate_source({**SEARCH, "terms": [" Sora Air ", "ソラ航空"], "extra": "ignored"})
    assert source["handle"] == "SoraAir" and source["terms"] == ["Sora Air", "ソラ航空"]
    assert source["source_id"] == "x:search:1500000000000000001" and "extra" not in source
    assert validate_source({"kind": "facebook_feed", "account_id": "104857600213455",
                            "handle": "Sora Air Japan 公式"})["handle"] == "Sora Air Japan 公式"


@pytest.mark.parametrize("change, match", [
    ({"account_id": "1" * 65}, "account_id"),
    ({"account_id": "1:2"}, "account_id"),
    ({"account_id": "1#2"}, "account_id"),
    ({"account_id": " "}, "account_id"),
    ({"account_id": 15}, "account_id"),
    ({"kind": ["x_search"]}, "kind"),
    ({"kind": {"x": 1}}, "kind"),
    ({"enabled": 1}, "enabled"),
    ({"handle": "h" * 16}, "handle"),
    ({"handle": "Sora Air"}, "handle"),
    ({"handle": ""}, "handle"),
    ({"handle": 5}, "handle"),
    ({"terms": []}, "terms"),
    ({"terms": "Sora Air"}, "terms"),
    ({"terms": [f"t{n}" for n in range(26)]}, "26 entries"),
    ({"terms": ["t" * 101]}, "at most 100"),
    ({"terms": ['" "']}, "empty"),
    ({"terms": ["ok", None]}, "entry 2"),
    ({"terms": ["a\nb"]}, "U\\+000A"),
    ({"terms": ["a\ud800"]}, "surrogate"),
])
def test_sources_outside_their_limits_are_refused(change, match):
    with pytest.raises(BadRequest, match=match):
        validate_source({**SEARCH, **change})


def test_meta_handles_have_a_maximum():
    body = {"kind": "instagram_comments", "account_id": "17841405822304911"}
    assert validate_source({**body, "handle": "p" * 50})["handle"] == "p" * 50
    for handle in ("p" * 51, "a\x00b", "a\u2029b"):
        with pytest.raises(BadRequest, match="handle"):
            validate_source({**body, "handle": handle})


def test_a_search_source_whose_query_cannot_fit_x_is_refused_with_its_length():
    terms = [f"{n:02d} " + "ソラ航空の予約変更" * 9 for n in range(8)]
    with pytest.raises(BadRequest) as info:
        validate_source({**SEARCH, "terms": terms})
    full = x_search_query(terms, "SoraAir", max_length=None)
    assert len(full) > X_MAX_QUERY_LENGTH
    assert f"is {len(full)} characters and X allows 512" in str(info.value)
    fits = validate_source({**SEARCH, "terms": terms[:5]})
    assert len(x_search_query(fits["terms"], fits["handle"], max_length=None)) <= X_MAX_QUERY_LENGTH


@pytest.mark.parametrize("terms, handle, exclude_retweets", [
    (["ソラ航空", "Sora Air"], "SoraAir", True),
    (['say "hi"', "Sora Air", "Sora Air"], "SoraAir", False),
    ([f"ソラ航空 キャンペーン {n:03d} 予約 変更 払い戻し" for n in range(60)], "@SoraAir", True),
    (["a"], "", True),
    (["a", "b"], "@", False),
    (["  x  ", '"', "y"], " @Brand ", True),
])
def test_the_domain_query_is_the_adapters_query(terms, handle, exclude_retweets):
    from chalicelib.adapters.platforms.x import build_search_query

    assert x_search_query(terms, handle, exclude_retweets) == build_search_query(terms, handle, exclude_retweets)
    assert len(x_search_query(terms, handle, exclude_retweets)) <= X_MAX_QUERY_LENGTH


def test_the_domain_query_refuses_what_the_adapter_refuses():
    for terms in (["", "  "], ["x" * 600]):
        with pytest.raises(ValueError):
            x_search_query(terms, "SoraAir")
    assert x_search_query(["x" * 600], "SoraAir", max_length=None).startswith('"xxx')


# ---- agents ------------------------------------------------------------------------

AGENT = {"teams": ["support"], "capacity": 5}


@pytest.mark.parametrize("change", [
    {"capacity": True}, {"capacity": 20.0}, {"capacity": 10**30}, {"capacity": -1}, {"capacity": "5"},
    {"name": 12}, {"name": ""}, {"name": "  "}, {"name": "Ken\x07"}, {"name": "Ken\nSato"}, {"name": "k" * 201},
    {"name": "\ud800"}, {"role": ["supervisor"]}, {"role": {"supervisor": True}}, {"role": "admin"},
    {"teams": "support"}, {"teams": []}, {"teams": [f"t{n}" for n in range(51)]}, {"teams": ["a#b"]},
    {"teams": ["t" * 65]}, {"teams": [1]}, {"available": "yes"}, {"available": 1},
])
def test_agents_outside_their_limits_are_refused(change):
    with pytest.raises(BadRequest):
        validate_agent("newbie", {**AGENT, **change}, None)


def test_a_valid_agent():
    agent = validate_agent("newbie", {**AGENT, "name": "山田\u3000花子", "role": "supervisor"}, None)
    assert agent == Agent(agent_id="newbie", name="山田\u3000花子", teams=["support"], capacity=5,
                          role="supervisor")


@pytest.mark.parametrize("agent_id", ["", "a b", "a#b", "a\x00b", "x" * 129, "\ud800", None])
def test_agent_ids_are_sign_in_names(agent_id):
    with pytest.raises(BadRequest, match="agent id"):
        validate_agent_id(agent_id)
    with pytest.raises(BadRequest):
        validate_agent(agent_id, AGENT, None)


# ---- fail-closed sign-in -----------------------------------------------------------

def config(**changes):
    from chalicelib.config import settings

    base = dataclasses.replace(settings(), region="us-east-1", user_pool_id="us-east-1_AbC123",
                               user_pool_client_id="4n0th3rcl13nt1d")
    return dataclasses.replace(base, **changes)


def test_sign_in_settings_are_checked():
    assert config().sign_in_problem() is None
    for changes, name in [
        ({"user_pool_client_id": ""}, "USER_POOL_CLIENT_ID"),
        ({"user_pool_client_id": "REPLACE_WITH_STACK_OUTPUT_UserPoolClientId"}, "USER_POOL_CLIENT_ID"),
        ({"user_pool_client_id": "has space"}, "USER_POOL_CLIENT_ID"),
        ({"user_pool_id": ""}, "USER_POOL_ID"),
        ({"user_pool_id": "REPLACE_WITH_STACK_OUTPUT_UserPoolId"}, "USER_POOL_ID"),
        ({"user_pool_id": "eu-west-1_AbC123"}, "USER_POOL_ID"),
        ({"user_pool_id": "us-east-1_"}, "USER_POOL_ID"),
    ]:
        assert name in config(**changes).sign_in_problem()


def test_an_empty_client_id_never_disables_the_audience_check():
    from chalicelib.entrypoints.auth import SignInMisconfigured, TokenVerifier

    for client_id in ("", "   ", None):
        with pytest.raises(SignInMisconfigured, match="client_id"):
            TokenVerifier(jwks_url="http://jwks.test/keys", issuer="https://issuer.test", client_id=client_id)
    verifier = TokenVerifier(jwks_url="http://jwks.test/keys", issuer="https://issuer.test", client_id="app")
    verifier.client_id = ""  # cleared after construction: still refuses, never skips the check
    with pytest.raises(SignInMisconfigured):
        verifier._check_client({"aud": "any-other-app", "token_use": "id"}, "id")


def test_without_a_client_id_setting_every_signed_in_request_is_a_503(monkeypatch):
    from chalicelib.config import settings
    from chalicelib.entrypoints import http as http_api

    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("USER_POOL_ID", "us-east-1_AbC123")
    monkeypatch.setenv("USER_POOL_CLIENT_ID", "")
    settings.cache_clear()
    http_api._verifier.clear()
    try:
        @http_api.api_errors
        def route():
            http_api.current_agent(SimpleNamespace(headers={"Authorization": "Bearer a.b.c"}, uri_params=None,
                                                   query_params=None))

        answer = route()
        assert answer.status_code == 503
        assert "USER_POOL_CLIENT_ID" in answer.body["error"] and "not configured" in answer.body["error"]
        assert "v" not in http_api._verifier
    finally:
        settings.cache_clear()
        http_api._verifier.clear()


def test_the_json_error_bodies_stay_json():
    message = refused(b'{"\\ud800": 1}')
    json.dumps({"error": message}).encode("utf-8")  # the refusal itself can be sent
