"""The mentions table's no-case review index (issue 14) on a deployed stack: the deploy adds it in an update of
its own table's indexes, one index per table per update, alongside whatever the cases table is changing."""
from __future__ import annotations

import json

from tests.test_deploy_indexes import BODY, deploy, deployed_before


def indexes(template_text):
    resources = json.loads(template_text)["Resources"]
    found = {}
    for logical_id in ("CasesTable", "MentionsTable"):
        table = resources[logical_id]["Properties"]
        defined = {a["AttributeName"] for a in table["AttributeDefinitions"]}
        for index in table.get("GlobalSecondaryIndexes", []):
            assert {k["AttributeName"] for k in index["KeySchema"]} <= defined
        found[logical_id] = {index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])}
    return found


def test_the_review_index_is_added_one_index_per_table_per_update():
    before = deployed_before()
    existing = {"MentionsTable": set(), **{logical_id: set(d["indexes"]) for logical_id, d in before.items()}}
    retired = deploy.retired_indexes(BODY, before)
    import yaml

    final = {logical_id: {i["IndexName"] for i in resource["Properties"].get("GlobalSecondaryIndexes", [])}
             for logical_id, resource in yaml.load(BODY, Loader=deploy._template_loader())["Resources"].items()
             if logical_id in ("CasesTable", "MentionsTable")}
    steps = [indexes(text) for _name, text in deploy.index_steps(BODY, existing, retired)]
    sequence = [existing] + steps
    for earlier, later in zip(sequence, sequence[1:]):
        for table in ("CasesTable", "MentionsTable"):
            assert len(set(earlier[table]) ^ set(later[table])) <= 1, (table, earlier[table], later[table])
    mentions_after = steps[-1]["MentionsTable"] if steps else set()
    # The review index is in by the last staged step, or the template's own update adds it (one new index).
    assert mentions_after == {"no-case-by-day"} or (not steps and final["MentionsTable"] == {"no-case-by-day"})
    assert final["MentionsTable"] == {"no-case-by-day"}
