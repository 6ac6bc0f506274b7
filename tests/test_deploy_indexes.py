"""Changing the cases table's indexes on a deployed stack: CloudFormation adds or deletes at most one global
secondary index per table in one update, and a projection cannot change in place (a new index name replaces
the old one). The deploy adds the new indexes one at a time, keeps the old ones until the functions that read
the new ones are deployed, then removes the old ones one at a time."""
from __future__ import annotations

import json
import sys

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "infra"))
import deploy  # noqa: E402

BODY = (ROOT / "infra" / "template.yaml").read_text()


def deployed_before():
    """The cases table as the previous release deployed it: inbox-by-time and inbox-by-priority, projection ALL."""
    keys = {"inbox-by-time": "inbox_time_sk", "inbox-by-priority": "inbox_priority_sk"}
    indexes = {name: {"IndexName": name, "Projection": {"ProjectionType": "ALL"},
                      "KeySchema": [{"AttributeName": "inbox_pk", "KeyType": "HASH"},
                                    {"AttributeName": sort, "KeyType": "RANGE"}]} for name, sort in keys.items()}
    for name, (hash_key, sort) in {"inbox-by-due": ("inbox_pk", "inbox_due_sk"), "waiting": ("waiting_pk", "waiting_sk"),
                                   "sla-due": ("sla_due_pk", "sla_next_sk")}.items():
        indexes[name] = {"IndexName": name, "Projection": {"ProjectionType": "KEYS_ONLY"},
                         "KeySchema": [{"AttributeName": hash_key, "KeyType": "HASH"},
                                       {"AttributeName": sort, "KeyType": "RANGE"}]}
    attributes = {name: "S" for name in ("pk", "sk", "inbox_pk", "inbox_time_sk", "inbox_priority_sk", "inbox_due_sk",
                                          "waiting_pk", "waiting_sk", "sla_due_pk", "sla_next_sk")}
    return {"CasesTable": {"indexes": indexes, "attributes": attributes}}


def cases_indexes(template_text):
    table = json.loads(template_text)["Resources"]["CasesTable"]["Properties"]
    defined = {a["AttributeName"] for a in table["AttributeDefinitions"]}
    for index in table["GlobalSecondaryIndexes"]:
        assert {k["AttributeName"] for k in index["KeySchema"]} <= defined  # every key attribute is defined
    return {index["IndexName"]: index["Projection"]["ProjectionType"] for index in table["GlobalSecondaryIndexes"]}


def test_replacing_the_inbox_projections_is_staged_one_index_per_update():
    before = deployed_before()
    existing = {logical_id: set(d["indexes"]) for logical_id, d in before.items()}
    retired = deploy.retired_indexes(BODY, before)
    assert [i["IndexName"] for i in retired["CasesTable"]] == ["inbox-by-time", "inbox-by-priority"]

    sequence = [{name: "KEYS_ONLY" if name not in ("inbox-by-time", "inbox-by-priority") else "ALL"
                 for name in before["CasesTable"]["indexes"]}]
    sequence += [cases_indexes(text) for _name, text in deploy.index_steps(BODY, existing, retired)]
    bridge = deploy.bridge_body(BODY, retired)
    sequence.append(cases_indexes(bridge))  # provision ends here; chalice deploys the functions that read the new
    sequence += [cases_indexes(text) for _name, text in deploy.retire_steps(BODY, retired)]

    for earlier, later in zip(sequence, sequence[1:]):
        changed = set(earlier) ^ set(later)
        assert len(changed) == 1, f"one index added or removed per update, not {sorted(changed)}"
    # While the functions are deployed, old and new indexes both exist: neither release reads a missing one.
    assert {"inbox-by-time", "inbox-by-priority", "inbox-time", "inbox-priority"} <= set(cases_indexes(bridge))
    # The end is exactly the template: small projections only.
    final = cases_indexes(deploy.retire_steps(BODY, retired)[-1][1])
    assert final == {"inbox-time": "INCLUDE", "inbox-priority": "INCLUDE", "inbox-assignee": "INCLUDE",
                     "inbox-by-due": "INCLUDE", "waiting": "KEYS_ONLY", "sla-due": "KEYS_ONLY"}
    assert len(sequence) == 6  # three indexes added, two removed, one at a time


def test_nothing_is_staged_when_the_stack_has_the_templates_indexes():
    current = deployed_before()
    table = current["CasesTable"]["indexes"]
    for old, new in (("inbox-by-time", "inbox-time"), ("inbox-by-priority", "inbox-priority")):
        table[new] = {**table.pop(old), "IndexName": new}
    table["inbox-assignee"] = {**table["inbox-time"], "IndexName": "inbox-assignee"}
    assert deploy.retired_indexes(BODY, current) == {}
    assert deploy.bridge_body(BODY, {}) is None and deploy.retire_steps(BODY, {}) == []
    assert deploy.index_steps(BODY, {"CasesTable": set(table)}, {}) == []
