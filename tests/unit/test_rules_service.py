"""Supervisors' rules as the triage stage reads them."""
from chalicelib.services.rules import current_rules, save_validated
from tests.fakes import fake_deps


def test_a_stored_version_that_no_longer_validates_falls_back_to_the_built_in_rules():
    deps = fake_deps()
    deps.settings.add_rules_version({"rules": [{"id": "old", "when": {"text_matches": "(a+)+$"},
                                                "then": {"set_priority": "urgent"}}]}, author="boss", at="t0")
    rules = current_rules(deps)
    assert rules.to_dict()["rules"] == current_rules(fake_deps()).to_dict()["rules"]


def test_a_saved_version_is_read_back_within_a_minute():
    from chalicelib.triage import load_default_rules

    deps = fake_deps()
    document = load_default_rules().to_dict()
    document["rules"] = [{"id": "wifi", "when": {"text_contains": ["wifi"]}, "then": {"route_team": "product"}}]
    saved = save_validated(deps.settings, document, author="boss", now="t1")
    assert saved["version"] == 1
    assert [r["id"] for r in current_rules(deps).to_dict()["rules"]] == ["wifi"]
