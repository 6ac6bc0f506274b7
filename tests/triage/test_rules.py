"""Rule sets are supervisor data: validated whole, with messages a supervisor can act on."""
from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path

import pytest

from chalicelib.triage import RuleError, RuleSet, load_default_rules

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "chalicelib" / "triage" / "default_rules.json"


def good_rule(**changes):
    rule = {"id": "r1", "description": "d", "when": {"sentiment": "negative"}, "then": {"escalate": True}}
    rule.update(changes)
    return rule


def error_for(document) -> RuleError:
    with pytest.raises(RuleError) as caught:
        RuleSet.from_dict(document)
    return caught.value


def test_default_rules_load_are_cached_and_round_trip():
    rules = load_default_rules()
    assert rules is load_default_rules()
    document = rules.to_dict()
    assert RuleSet.from_dict(document).to_dict() == document
    assert document == RuleSet.from_dict(json.loads(DEFAULT_FILE.read_text(encoding="utf-8"))).to_dict()
    assert document["influencer_threshold"] == 10000
    assert set(document["source_tags"]) >= {"tier1_customer", "employee", "competitor"}
    assert document["keywords"]["complaint"]["ja"] and document["keywords"]["complaint"]["en"]


def test_to_dict_is_canonical_and_does_not_share_state():
    rules = RuleSet.from_dict({"rules": [good_rule(when={"lang": "ja", "tags": "vip"})]})
    document = rules.to_dict()
    assert set(document) == {"name", "description", "influencer_threshold", "brand_handles", "source_tags",
                             "keywords", "lexicon", "rules"}
    assert document["rules"][0]["when"] == {"lang": ["ja"], "tags": ["vip"]}
    assert document["rules"][0]["enabled"] is True
    document["rules"].clear()
    assert len(rules.to_dict()["rules"]) == 1


def test_unknown_category_names_the_rule_and_field():
    err = error_for({"rules": [good_rule(id="route-bags", then={"set_category": "complain"})]})
    assert err.rule_id == "route-bags"
    assert err.field == "rules[0].then.set_category"
    message = str(err)
    assert "route-bags" in message and "set_category" in message and "'complain'" in message
    assert "complaint" in message  # the valid choices are listed


def test_bad_regex_is_rejected_with_the_regex_error():
    err = error_for({"rules": [good_rule(id="refunds", when={"text_matches": "refund(s"})]})
    assert err.rule_id == "refunds"
    assert "when.text_matches" in str(err)
    assert "invalid regular expression" in str(err)


def test_catastrophic_regex_is_rejected():
    err = error_for({"rules": [good_rule(when={"text_matches": "(a+)+$"})]})
    assert err.field == "rules[0].when.text_matches"
    assert "repeats a repeated group" in str(err)
    # More in test_rule_safety.py: what else is refused, and why accepted patterns stay fast.


@pytest.mark.parametrize("rule, field, words", [
    (good_rule(when={"sentimentt": "negative"}), "rules[0].when.sentimentt", "unknown condition"),
    (good_rule(then={"notify": True}), "rules[0].then.notify", "unknown action"),
    (good_rule(then={}), "rules[0].then", "at least one action"),
    (good_rule(then={"case": "yes"}), "rules[0].then.case", "true or false"),
    (good_rule(then={"set_priority": "critical"}), "rules[0].then.set_priority", "unknown priority"),
    (good_rule(when={"platform": "myspace"}), "rules[0].when.platform", "unknown value 'myspace'"),
    (good_rule(when={"followers_at_least": -5}), "rules[0].when.followers_at_least", "whole number"),
    (good_rule(when={"text_contains": []}), "rules[0].when.text_contains", "must not be empty"),
    (good_rule(when={"text_matches": "refund.*order"}), "rules[0].when.text_matches", "too long on a long post"),
    (good_rule(when={"text_matches": r"(a*)\1b"}), "rules[0].when.text_matches", "back-references"),
    (good_rule(when={"text_matches": "(yes|no)+"}), "rules[0].when.text_matches", "'|' choice"),
    (good_rule(then={"route_team": ""}), "rules[0].then.route_team", "non-empty string"),
    (good_rule(then={"add_tags": ["Has Space"]}), "rules[0].then.add_tags", "lower-case"),
    (good_rule(id=""), "rules[0].id", "needs an id"),
    (good_rule(colour="red"), "rules[0].colour", "unknown field"),
])
def test_each_bad_field_is_reported_by_path(rule, field, words):
    err = error_for({"rules": [rule]})
    assert err.field == field
    assert words in str(err)


def test_document_level_problems():
    assert "influencer_threshold" in str(error_for({"influencer_threshold": 0}))
    assert "unknown field" in str(error_for({"influencer_treshold": 5000}))
    assert "unknown category 'complaints'" in str(error_for({"keywords": {"complaints": {"en": ["refund"]}}}))
    assert "language" in str(error_for({"keywords": {"complaint": {"english": ["refund"]}}}))
    assert "weight must be a number" in str(error_for({"lexicon": {"en": {"meh": 9}}}))
    assert "cannot be listed" in str(error_for({"source_tags": {"vip": {"handles": ["a"]}}}))
    assert "handles" in str(error_for({"source_tags": {"competitor": {"handle": ["a"]}}}))
    assert "JSON object" in str(error_for(["not", "an", "object"]))


def test_every_problem_is_reported_at_once_and_duplicates_are_caught():
    err = error_for({"influencer_threshold": "lots", "rules": [
        good_rule(id="a", then={"set_category": "nope"}),
        good_rule(id="a"),
        good_rule(id="b", when={"text_matches": "("}),
    ]})
    fields = [p["field"] for p in err.problems]
    assert fields == ["influencer_threshold", "rules[0].then.set_category", "rules[1].id",
                      "rules[2].when.text_matches"]
    assert "duplicate id 'a'" in str(err)
    assert "and 3 more problems" in str(err)


def test_dynamodb_decimals_are_accepted():
    document = load_default_rules().to_dict()
    document["influencer_threshold"] = Decimal("5000")
    document["lexicon"] = {"en": {"meh": Decimal("-1.5")}}
    document["rules"].append(good_rule(id="big", when={"followers_at_least": Decimal("100000")}))
    document["source_tags"]["tier1_customer"]["ids"] = [Decimal("12345")]
    rules = RuleSet.from_dict(document)
    assert rules.influencer_threshold == 5000
    out = rules.to_dict()
    assert out["lexicon"]["en"]["meh"] == -1.5
    assert out["source_tags"]["tier1_customer"]["ids"] == ["12345"]
    json.dumps(out)  # plain JSON types only


def test_invalid_document_is_never_half_applied():
    document = load_default_rules().to_dict()
    before = copy.deepcopy(document)
    document["rules"].append(good_rule(id="bad", then={"set_category": "nope"}))
    error_for(document)
    assert load_default_rules().to_dict() == before


def test_disabled_rules_are_kept_but_not_applied():
    from chalicelib.triage import classify

    rules = RuleSet.from_dict({"rules": [good_rule(id="off", enabled=False, when={}, then={"route_team": "x"})]})
    assert rules.to_dict()["rules"][0]["enabled"] is False
    assert classify({"text": "hello"}, rules=rules).team is None
