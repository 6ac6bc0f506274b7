"""KPIs through the real Chalice app on moto: a case is opened, answered and resolved through the handlers,
the cases table's stream (read from moto with dynamodbstreams, as Lambda would) is delivered to
``measure_changes``, and ``GET /reports/kpis`` answers with it."""
from __future__ import annotations

import csv
import io
import json
import uuid

import boto3
import pytest

from chalicelib.bootstrap import deps
from local.lambda_events import LambdaContext
from tests.api import frozen_clock
from tests.fakes import use_platforms
from tests.test_app import RecordingX, mention, open_case, send, team  # noqa: F401  (team is a fixture)

REGION = "us-east-1"
JSON = {"Content-Type": "application/json"}
T0 = "2026-11-23T03:00:00.000000Z"
DAY = {"from": "2026-11-23", "to": "2026-11-23"}


@pytest.fixture
def clock(app_module):
    return frozen_clock(T0)


@pytest.fixture
def lead(app_module, team):  # noqa: F811
    """A supervisor of every team the fixture's agents are in."""
    return app_module.agents.add("sue", ["support", "vip", "leads"], role="supervisor", available=False)


class Stream:
    """The cases table's stream on moto, handed to ``measure_changes`` in Lambda's event shape."""

    def __init__(self, app_module):
        table = boto3.client("dynamodb", region_name=REGION).describe_table(TableName="socialcare-test-cases")["Table"]
        self.arn = table["LatestStreamArn"]
        self.streams = boto3.client("dynamodbstreams", region_name=REGION)
        self.app_module = app_module
        self.seen = set()

    def records(self):
        found = []
        for shard in self.streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]:
            iterator = self.streams.get_shard_iterator(StreamArn=self.arn, ShardId=shard["ShardId"],
                                                       ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            while iterator:
                page = self.streams.get_records(ShardIterator=iterator)
                found += page["Records"]
                iterator = page.get("NextShardIterator") if page["Records"] else None
        return [self._as_lambda_gives_it(record) for record in found]

    def _as_lambda_gives_it(self, record):
        change = dict(record["dynamodb"])
        change["ApproximateCreationDateTime"] = int(change["ApproximateCreationDateTime"].timestamp())
        return {**record, "dynamodb": change, "eventSourceARN": self.arn}

    def deliver(self, records=None):
        """New records (or the ones given) as one batch; the handler's answer."""
        if records is None:
            records = [r for r in self.records() if r["dynamodb"]["SequenceNumber"] not in self.seen]
        self.seen |= {r["dynamodb"]["SequenceNumber"] for r in records}
        return self.app_module.measure_changes({"Records": records}, LambdaContext("measure_changes", REGION))


def kpis(client, headers, **params):
    query = "&".join(f"{name}={value}" for name, value in {**DAY, "group_by": "agent", **params}.items())
    return client.http.get(f"/reports/kpis?{query}", headers=headers)


def work_a_case(client, app_module, team, clock):  # noqa: F811
    """Opened at T0 for aiko; she opens it a minute later, answers at 3 minutes, resolves at 10."""
    case_id = open_case(app_module, mention("700", "My bag never arrived in Osaka", created_at="2026-11-23T03:00:00Z"))[0]["case_id"]
    aiko = team["aiko"]
    clock["now"] = "2026-11-23T03:01:00.000000Z"
    assert client.http.get(f"/cases/{case_id}", headers=aiko).status_code == 200
    clock["now"] = "2026-11-23T03:03:00.000000Z"
    use_platforms(deps(), x=RecordingX())
    answer = client.http.post(f"/cases/{case_id}/replies", headers={**aiko, **JSON},
                              body=json.dumps({"text": "Sorry, we are tracing it now."}))
    assert answer.status_code == 202, answer.body
    send(app_module)
    clock["now"] = "2026-11-23T03:10:00.000000Z"
    assert client.http.patch(f"/cases/{case_id}", headers={**aiko, **JSON},
                             body=json.dumps({"status": "resolved"})).status_code == 200
    return case_id


def test_a_case_worked_through_the_api_shows_in_the_report_once_its_changes_are_streamed(
        client, app_module, team, clock, lead):  # noqa: F811
    work_a_case(client, app_module, team, clock)
    stream = Stream(app_module)
    assert kpis(client, team["aiko"]).json_body["rows"] == []  # nothing counted before the stream is read

    assert stream.deliver() == {"batchItemFailures": []}
    [mine] = kpis(client, team["aiko"]).json_body["rows"]
    assert mine["key"] == "aiko" and (mine["cases_opened"], mine["cases_resolved"], mine["backlog"]) == (1, 1, 0)
    assert mine["first_response_seconds"]["mean"] == 180.0 and mine["resolution_seconds"]["mean"] == 600.0
    assert mine["handle_seconds"]["mean"] == 120.0  # viewed at 03:01, replied at 03:03; idle after that is cut
    assert mine["fcr_pending"] == 1 and mine["fcr_rate"] is None

    # Lambda delivers a batch again (at least once): nothing counts twice.
    assert stream.deliver(stream.records()) == {"batchItemFailures": []}
    assert kpis(client, team["aiko"]).json_body["rows"] == [mine]

    everyone = kpis(client, lead, group_by="team").json_body
    assert everyone["time_zone"] == "UTC" and [r["key"] for r in everyone["rows"]] == ["support"]
    assert everyone["rows"][0]["cases_resolved"] == 1


def test_the_report_as_a_csv_file(client, app_module, team, clock, lead):  # noqa: F811
    work_a_case(client, app_module, team, clock)
    Stream(app_module).deliver()
    answer = kpis(client, lead, group_by="day", format="csv")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/csv")
    assert answer.headers["Content-Disposition"] == 'attachment; filename="kpis-day-2026-11-23-2026-11-23.csv"'
    [row] = list(csv.DictReader(io.StringIO(answer.body.decode())))
    assert (row["key"], row["cases_opened"], row["cases_resolved"]) == ("2026-11-23", "1", "1")


def test_a_failed_change_is_reported_by_its_sequence_number_and_counted_when_delivered_again(
        client, app_module, team, clock, monkeypatch):  # noqa: F811
    from chalicelib.entrypoints.reports_api import StreamRetry, measure_batch

    work_a_case(client, app_module, team, clock)
    stream = Stream(app_module)
    records = stream.records()
    store = deps().kpis
    apply = store.apply_deltas
    calls = []

    def second_change_fails(token, deltas, **kwargs):
        calls.append(token)
        if len(calls) == 2:
            raise ConnectionError("throttled")
        return apply(token, deltas, **kwargs)

    monkeypatch.setattr(store, "apply_deltas", second_change_fails)
    answer = measure_batch(records, deps(), report_item_failures=True)
    [failure] = answer["batchItemFailures"]
    failed_at = [r["dynamodb"]["SequenceNumber"] for r in records].index(failure["itemIdentifier"])
    assert failed_at > 0  # a META change after the first; the ones before it stay done
    # Where the mapping does not read item failures, the batch fails as a whole instead.
    calls.clear()
    with pytest.raises(StreamRetry):
        measure_batch(records, deps(), report_item_failures=False)

    monkeypatch.setattr(store, "apply_deltas", apply)
    assert stream.deliver(records[failed_at:]) == {"batchItemFailures": []}
    [mine] = kpis(client, team["aiko"]).json_body["rows"]
    assert (mine["cases_opened"], mine["cases_resolved"], mine["first_response_seconds"]["count"]) == (1, 1, 1)


@pytest.mark.parametrize("params, words", [
    ({"from": None}, "'from' is required"),
    ({"to": "2026-02-30"}, "real day"),
    ({"group_by": "week"}, "group_by"),
    ({"format": "pdf"}, "format"),
    ({"from": "2026-11-24", "to": "2026-11-23"}, "before"),
    ({"from": "2024-01-01", "to": "2024-01-02"}, "days ago"),
])
def test_bad_parameters_are_a_400_that_says_what_to_fix(client, team, clock, lead, params, words):  # noqa: F811
    query = {**DAY, "group_by": "team", **params}
    answer = client.http.get("/reports/kpis?" + "&".join(f"{k}={v}" for k, v in query.items() if v is not None),
                             headers=lead)
    assert answer.status_code == 400 and words in answer.json_body["error"], answer.body


def test_an_agent_asking_for_team_rows_gets_a_403_and_their_own_row_otherwise(client, team, clock):  # noqa: F811
    answer = kpis(client, team["aiko"], group_by="team")
    assert answer.status_code == 403 and "group_by=agent" in answer.json_body["error"]
    assert kpis(client, team["aiko"]).status_code == 200
    assert client.http.get("/reports/kpis?" + "&".join(f"{k}={v}" for k, v in DAY.items())).status_code == 401


def test_an_unreadable_record_is_reported_not_skipped(app_module, team):  # noqa: F811
    from chalicelib.entrypoints.reports_api import measure_batch

    broken = {"eventID": uuid.uuid4().hex, "eventName": "MODIFY", "eventSource": "aws:dynamodb",
              "awsRegion": REGION, "dynamodb": {"SequenceNumber": "100", "StreamViewType": "NEW_AND_OLD_IMAGES",
                                                "Keys": {"pk": {"S": "CASE#x"}, "sk": {"S": "META"}},
                                                "NewImage": {"pk": {"S": "CASE#x"}, "sk": {"S": "META"}}}}
    assert measure_batch([broken], deps(), report_item_failures=True) == {"batchItemFailures": [{"itemIdentifier": "100"}]}
