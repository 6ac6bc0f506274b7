"""The DynamoDB stores against moto, on tables made from infra/template.yaml."""
from chalicelib.adapters.queues import Queue
from chalicelib.adapters.stores import MentionStore, SettingsStore


def test_cursor_writes_are_optimistic(aws):
    store = SettingsStore("socialcare-test-settings")
    assert store.get_cursor("x:1") == {"version": 0}
    assert store.save_cursor("x:1", {"since": "10"}, expected_version=0)
    assert not store.save_cursor("x:1", {"since": "11"}, expected_version=0)  # a stale run loses
    assert store.save_cursor("x:1", {"since": "12"}, expected_version=1)
    assert store.get_cursor("x:1")["since"] == "12"


def test_agent_counter_refuses_past_capacity_and_membership_follows_teams(aws):
    store = SettingsStore("socialcare-test-settings")
    store.put_agent({"agent_id": "aiko", "teams": ["support", "vip"], "capacity": 1})
    assert store.adjust_open_cases("aiko", +1, at="t1")
    assert not store.adjust_open_cases("aiko", +1, at="t2")
    assert store.get_agent("aiko")["open_cases"] == 1
    store.put_agent({**store.get_agent("aiko"), "teams": ["support"]})
    assert store.team_agents("vip") == []
    assert [a["agent_id"] for a in store.team_agents("support")] == ["aiko"]
    assert store.teams() == ["support", "vip"]


def test_first_claim_of_a_mention_wins(aws):
    store = MentionStore("socialcare-test-mentions")
    mention = {"id": "x:1", "text": "hello"}
    assert store.claim(mention, now_epoch=1000) is None
    store.update("x:1", {"state": "routed"})
    assert store.claim(mention, now_epoch=1001)["state"] == "routed"


def test_queue_batches_beyond_ten_messages(aws):
    import boto3

    sent = Queue("socialcare-test-mentions").send_batch({"n": i} for i in range(23))
    assert sent == 23
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.get_queue_url(QueueName="socialcare-test-mentions")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "23"
