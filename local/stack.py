"""The embedded default: socialcare running on this machine, shaped as deployed.

moto's server plays AWS on localhost, ``infra/template.yaml`` creates the
tables and queues on it through CloudFormation, fake X and Graph servers
play the platforms, ``chalice local`` serves the agent API, and this runner
plays Lambda: it fires the schedule, delivers SQS batches and the cases
table's stream records to the very handlers of ``app.py`` with Lambda's
event shapes.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from local.fake_graph import SORA_IG_USER_ID, SORA_PAGE_ID, SORA_PHONE_NUMBER_ID
from local.lambda_events import LambdaContext, dynamodb_event, scheduled_event, sqs_event

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
BRAND_X_USER_ID = "1500000000000000001"
BRAND_X_HANDLE = "SoraAir"
X_BEARER = "local-x-bearer-token"
X_USER_TOKEN = "local-x-user-token"
META_TOKEN = "local-meta-page-token"
META_APP_SECRET = "local-meta-app-secret"
META_VERIFY_TOKEN = "local-meta-verify-token"
DEMO_PASSWORD = "Local-demo-passw0rd!"

# The demo team: the agent whose token is printed is a supervisor in support.
DEMO_AGENTS = [
    {"agent_id": "demo", "name": "Demo Agent", "teams": ["support", "vip", "product", "sales"], "role": "supervisor", "capacity": 30},
    {"agent_id": "aiko", "name": "Aiko Tanaka", "teams": ["support"], "capacity": 20},
    {"agent_id": "ken", "name": "Ken Mori", "teams": ["support"], "capacity": 20},
    {"agent_id": "mika", "name": "Mika Sato", "teams": ["vip"], "capacity": 10},
    {"agent_id": "priya", "name": "Priya Nair", "teams": ["product"], "capacity": 20},
    {"agent_id": "lee", "name": "Lee Park", "teams": ["sales"], "capacity": 20},
]

DEMO_SOURCES = [
    {"kind": "x_mentions", "account_id": BRAND_X_USER_ID, "handle": BRAND_X_HANDLE},
    {"kind": "x_search", "account_id": BRAND_X_USER_ID, "handle": BRAND_X_HANDLE, "terms": ["SoraAir", "ソラ航空"]},
    {"kind": "x_dm", "account_id": BRAND_X_USER_ID, "handle": BRAND_X_HANDLE},
    {"kind": "facebook_feed", "account_id": SORA_PAGE_ID},
    {"kind": "instagram_comments", "account_id": SORA_IG_USER_ID, "handle": "soraair"},
    {"kind": "instagram_mentions", "account_id": SORA_IG_USER_ID, "handle": "soraair"},
    {"kind": "messenger", "account_id": SORA_PAGE_ID},
    {"kind": "instagram_dm", "account_id": SORA_IG_USER_ID, "page_id": SORA_PAGE_ID},
    {"kind": "whatsapp", "account_id": SORA_PHONE_NUMBER_ID},
]


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout:.0f}s") from None
            time.sleep(0.2)


def deliver_queue(sqs: Any, queue_name: str, handler: Callable, handler_name: str, *, max_batches: int = 50,
                  progress: Callable[[str], None] = lambda line: None) -> List[Dict[str, Any]]:
    """Deliver what is on a queue to its handler in Lambda-sized batches, as Lambda does.

    A batch that raises is not deleted. With ReportBatchItemFailures, only the
    records the answer names stay; the rest are deleted. What stays comes back
    at once here (after the visibility timeout in AWS), except a record the
    handler asked to see later; after maxReceiveCount the redrive policy moves
    it to the dead-letter queue.
    """
    url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    results: List[Dict[str, Any]] = []
    for _ in range(max_batches):
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                     AttributeNames=["All"], MessageAttributeNames=["All"])
        messages = answer.get("Messages", [])
        if not messages:
            break
        event = sqs_event(messages, queue_name, REGION)
        try:
            response = handler(event, LambdaContext(f"socialcare-{handler_name}", REGION))
        except Exception as err:  # the batch goes back to the queue, as in Lambda
            progress(f"  ! {handler_name} batch failed, SQS will redeliver: {err}")
            _show_again(sqs, url, messages)
            continue
        failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
        outcomes = list(getattr(response, "results", None) or [])
        for message, outcome in zip(messages, outcomes or [{}] * len(messages)):
            if message["MessageId"] not in failed:
                results.append(outcome)
            elif outcome.get("outcome") == "retry":
                progress(f"  ! {handler_name}: a record failed and will be redelivered: {outcome.get('reason')}")
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)])
        later = {m["MessageId"] for m, o in zip(messages, outcomes) if o.get("outcome") == "retry_later"
                 and o.get("delay_seconds")}
        _show_again(sqs, url, [m for m in messages if m["MessageId"] in failed and m["MessageId"] not in later])
    return results


def deliver_stream(streams: Any, stream_arn: str, handler: Callable, function_name: str, iterators: Dict[str, str], *,
                   batch_size: int = 100, max_batches: int = 50,
                   progress: Callable[[str], None] = lambda line: None) -> List[Any]:
    """Deliver a DynamoDB stream's new records to its handler in batches, as Lambda's event source mapping does.

    Each shard is read from where the last call left off (``iterators``: shard id -> the saved
    NextShardIterator; TRIM_HORIZON for a shard not read yet), in batches of up to ``batch_size``. A batch
    that raises, or the records from the earliest one its answer names in ``batchItemFailures``, are read
    again at the next call (Lambda retries a shard from there too: nothing after it is skipped, nothing
    before it repeated). Returns the handler's answers.
    """
    shards: List[Dict[str, Any]] = []
    start: Dict[str, Any] = {}
    while True:
        description = streams.describe_stream(StreamArn=stream_arn, **start)["StreamDescription"]
        shards += description.get("Shards", [])
        if not description.get("LastEvaluatedShardId"):
            break
        start = {"ExclusiveStartShardId": description["LastEvaluatedShardId"]}
    answers: List[Any] = []
    batches = 0
    for shard in shards:
        shard_id = shard["ShardId"]
        iterator = iterators.get(shard_id) or streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator and batches < max_batches:
            page = streams.get_records(ShardIterator=iterator, Limit=batch_size)
            records = page.get("Records", [])
            if not records:
                iterator = page.get("NextShardIterator") or iterator
                break
            batches += 1
            try:
                answer = handler(dynamodb_event(records, stream_arn, REGION), LambdaContext(function_name, REGION))
                failed = [f["itemIdentifier"] for f in (answer or {}).get("batchItemFailures", [])]
            except Exception as err:  # the whole batch comes again, as Lambda retries it
                progress(f"  ! {function_name} batch failed, the stream will deliver it again: {err}")
                answer, failed = None, [records[0]["dynamodb"]["SequenceNumber"]]
            if answer is not None:
                answers.append(answer)
            if failed:
                iterators[shard_id] = streams.get_shard_iterator(
                    StreamArn=stream_arn, ShardId=shard_id, ShardIteratorType="AT_SEQUENCE_NUMBER",
                    SequenceNumber=min(failed, key=int))["ShardIterator"]
                iterator = ""
                break
            iterator = page.get("NextShardIterator") or ""
        if iterator:
            iterators[shard_id] = iterator
    return answers


def _show_again(sqs: Any, url: str, messages: List[Dict[str, Any]]) -> None:
    if messages:
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for i, m in enumerate(messages)])


@dataclass
class LocalDeployment:
    stage: str = "local"
    moto_port: int = 0
    x_port: int = 0
    graph_port: int = 0
    api_port: int = 0
    start_api: bool = True
    seed_release: Optional[int] = None  # seed posts visible at start (None: all)
    progress: Callable[[str], None] = lambda line: None
    env: Dict[str, str] = field(default_factory=dict)
    agent_token: str = ""
    _moto: Any = None
    _fake_x: Any = None
    _fake_graph: Any = None
    _api: Optional[subprocess.Popen] = None
    _app: Any = None
    _last_fetch: float = 0.0
    _shard_iterators: Dict[str, str] = field(default_factory=dict)  # where the stream's reader is, per shard

    # ---- lifecycle -------------------------------------------------------------
    def start(self) -> "LocalDeployment":
        self.moto_port = self.moto_port or free_port()
        self.api_port = self.api_port or free_port()
        self._start_moto()
        self._start_fakes()
        self._configure_environment()
        self._provision()
        self._app = self._load_app()
        self._seed_settings()
        if self.start_api:
            self._start_api()
            # Meta pushes to the webhook route; the fake signs like Meta does.
            self._fake_graph.set_webhook(self.api_url + "/webhooks/meta", META_APP_SECRET)
        if self.seed_release is None:
            self.release_posts(10_000)
        elif self.seed_release:
            self.release_posts(self.seed_release)
        return self

    def release_posts(self, n: int) -> None:
        """Let n more seed posts appear on each fake platform (Meta ones are also pushed)."""
        self._fake_x.release(n)
        self._fake_graph.release(n)

    def stop(self) -> None:
        if self._api and self._api.poll() is None:
            self._api.send_signal(signal.SIGINT)
            try:
                self._api.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._api.kill()
                self._api.wait()
        for fake in (self._fake_x, self._fake_graph):
            if fake:
                fake.stop()
        if self._moto:
            self._moto.stop()

    def __enter__(self) -> "LocalDeployment":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def aws_url(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def fake_x(self):
        return self._fake_x

    @property
    def fake_graph(self):
        return self._fake_graph

    # ---- steps ------------------------------------------------------------------
    def _start_moto(self) -> None:
        import logging
        import warnings

        from moto.server import ThreadedMotoServer

        # moto logs every request and each resource type its CloudFormation skips
        # (Cognito, Secrets Manager: created by API below); keep the demo readable.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        logging.getLogger("moto").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", message="Tried to parse")
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=self.moto_port, verbose=False)
        self._moto.start()
        wait_for_http(self.aws_url + "/moto-api/")
        self.progress(f"embedded AWS (moto) on {self.aws_url}")

    def _start_fakes(self) -> None:
        from local.fake_x import FakeX

        self._fake_x = FakeX(port=self.x_port, bearer_token=X_BEARER, brand_user_id=BRAND_X_USER_ID,
                             brand_handle=BRAND_X_HANDLE, user_token=X_USER_TOKEN)
        self._fake_x.load_seed(str(ROOT / "local" / "data" / "x_stream.json"))
        self._fake_x.start()
        self.progress(f"fake X API on {self._fake_x.url}")
        from local.fake_graph import FakeGraph

        self._fake_graph = FakeGraph(port=self.graph_port, access_token=META_TOKEN)
        self._fake_graph.load_seed(str(ROOT / "local" / "data" / "meta_stream.json"))
        self._fake_graph.start()
        self.progress(f"fake Graph API on {self._fake_graph.url}")

    def _configure_environment(self) -> None:
        self.env = {
            "AWS_ENDPOINT_URL": self.aws_url,
            "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_SESSION_TOKEN": "local",
            "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
            "SOCIALCARE_STAGE": self.stage,
            "SQS_REPORT_BATCH_ITEM_FAILURES": "true",  # the local runner honours batchItemFailures
            "X_API_BASE_URL": self._fake_x.url,
            "X_BRAND_USER_ID": BRAND_X_USER_ID,
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
        }
        self.env["GRAPH_API_BASE_URL"] = self._fake_graph.url + "/v21.0"
        os.environ.update(self.env)

    def _client(self, service: str):
        import boto3

        return boto3.client(service, region_name=REGION, endpoint_url=self.aws_url)

    def _provision(self) -> None:
        from local.cognito import create_demo_pool, issue_token

        cloudformation = self._client("cloudformation")
        stack = f"socialcare-{self.stage}"
        cloudformation.create_stack(
            StackName=stack, TemplateBody=(ROOT / "infra" / "template.yaml").read_text(),
            Parameters=[{"ParameterKey": "Stage", "ParameterValue": self.stage}],
        )
        status = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
        if status != "CREATE_COMPLETE":
            raise RuntimeError(f"infra stack {stack}: {status}")
        self.progress(f"infra/template.yaml created on the embedded AWS (stack {stack})")
        # As a deploy does (infra/deploy.py): the stack's notifications topic reaches the functions by name.
        outputs = {o["OutputKey"]: o["OutputValue"]
                   for o in cloudformation.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])}
        self.env["NOTIFICATIONS_TOPIC_ARN"] = outputs["NotificationsTopicArn"]
        os.environ["NOTIFICATIONS_TOPIC_ARN"] = outputs["NotificationsTopicArn"]
        # And the cases table's stream, which measure_changes reads (deliver_stream plays its mapping).
        self.env["CASES_STREAM_ARN"] = outputs["CasesStreamArn"]
        os.environ["CASES_STREAM_ARN"] = outputs["CasesStreamArn"]
        # And the media bucket WhatsApp files are copied to (issue 12); the fake WhatsApp account's templates.
        self.env["MEDIA_BUCKET"] = os.environ["MEDIA_BUCKET"] = outputs["MediaBucketName"]
        self.env.setdefault("WHATSAPP_WABA_ID", os.environ.setdefault("WHATSAPP_WABA_ID", "102290129340398"))
        # moto's CloudFormation skips Cognito and Secrets Manager: create them by API.
        cognito = self._client("cognito-idp")
        pool_id, client_id = create_demo_pool(cognito, f"socialcare-{self.stage}-agents")
        self.env.update(USER_POOL_ID=pool_id, USER_POOL_CLIENT_ID=client_id)
        os.environ.update(USER_POOL_ID=pool_id, USER_POOL_CLIENT_ID=client_id)
        self.agent_token = issue_token(cognito, pool_id, client_id, "demo", DEMO_PASSWORD)
        import json

        self._client("secretsmanager").create_secret(
            Name=f"socialcare-{self.stage}/platforms",
            SecretString=json.dumps({
                "x_bearer_token": X_BEARER, "x_user_token": X_USER_TOKEN, "meta_access_token": META_TOKEN,
                "meta_app_secret": META_APP_SECRET, "meta_verify_token": META_VERIFY_TOKEN,
            }),
        )

    def _load_app(self):
        # Settings and clients are cached per container; this process is a new "container".
        from chalicelib.adapters import aws, queues
        from chalicelib.bootstrap import deps
        from chalicelib.config import settings

        settings.cache_clear()
        aws.reset_clients()
        queues.queue_url.cache_clear()
        queues._delivery_policy.cache_clear()
        deps.cache_clear()
        sys.path.insert(0, str(ROOT))
        return load_app()

    def _seed_settings(self) -> None:
        from chalicelib.bootstrap import deps
        from chalicelib.domain.agent import Agent

        store = deps().settings
        for agent in DEMO_AGENTS:
            store.put_agent(Agent.from_dict(agent))
        from chalicelib.domain.source import validate_source

        for source in DEMO_SOURCES:
            store.put_source(validate_source(source))
        self.progress(f"agents {', '.join(a['agent_id'] for a in DEMO_AGENTS)}; sources: "
                      + ", ".join(s["kind"] for s in DEMO_SOURCES))

    def _start_api(self) -> None:
        env = {**os.environ, **self.env}
        self._api = subprocess.Popen(
            [str(Path(sys.executable).parent / "chalice"), "local", "--stage", self.stage,
             "--host", "127.0.0.1", "--port", str(self.api_port), "--no-autoreload"],
            cwd=str(ROOT), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        try:
            wait_for_http(self.api_url + "/health", timeout=60)
        except RuntimeError:
            self._api.kill()
            raise RuntimeError("chalice local did not start: " + self._api.stderr.read().decode(errors="replace")[-2000:]) from None
        self.progress(f"agent API (chalice local) on {self.api_url}")

    # ---- playing Lambda ---------------------------------------------------------
    def run_schedule(self) -> List[Dict[str, Any]]:
        event = scheduled_event(f"socialcare-{self.stage}-fetch_mentions", REGION)
        results = self._app.fetch_mentions(event, LambdaContext("socialcare-fetch_mentions", REGION))
        self._last_fetch = time.monotonic()
        return results

    def run_sla_tick(self) -> Dict[str, Any]:
        """What the once-a-minute ``sla_tick`` schedule does: warnings, breaches, shift ends, queues."""
        event = scheduled_event(f"socialcare-{self.stage}-sla_tick", REGION)
        return self._app.sla_tick(event, LambdaContext("socialcare-sla_tick", REGION))

    def deliver(self, queue_name: str, handler_name: str, *, max_batches: int = 50) -> List[Dict[str, Any]]:
        return deliver_queue(self._client("sqs"), queue_name, getattr(self._app, handler_name), handler_name,
                             max_batches=max_batches, progress=self.progress)

    def deliver_stream(self, *, batch_size: int = 100, max_batches: int = 50) -> List[Any]:
        """Hand the cases table's new stream records to ``measure_changes``, as its event source mapping does
        (``deliver_stream`` below); nothing when the app has no such function."""
        handler = getattr(self._app, "measure_changes", None)
        stream_arn = self.env.get("CASES_STREAM_ARN", "")
        if handler is None or not stream_arn:
            return []
        return deliver_stream(self._client("dynamodbstreams"), stream_arn, handler, f"socialcare-{self.stage}-measure_changes",
                              self._shard_iterators, batch_size=batch_size, max_batches=max_batches,
                              progress=self.progress)

    def pump(self) -> Dict[str, List[Any]]:
        """One turn of the pipeline: triage, assign, send what is queued, then measure what changed."""
        config = self._app.config
        return {
            "triaged": self.deliver(config.mentions_queue, "triage_mentions"),
            "assigned": self.deliver(config.triaged_queue, "assign_cases"),
            "sent": self.deliver(config.outbound_queue, "send_replies"),
            "measured": self.deliver_stream(),
        }

    def dead_letters(self, which: str) -> List[Dict[str, Any]]:
        sqs = self._client("sqs")
        url = sqs.get_queue_url(QueueName=f"socialcare-{self.stage}-{which}-dlq")["QueueUrl"]
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                     VisibilityTimeout=0)
        return answer.get("Messages", [])


def load_app():
    """app.py as a new container loads it: settings re-read, blueprints registered afresh.

    Chalice consumes a blueprint's route options when it registers them, so a
    blueprint registered once cannot be registered on a second app: its module
    is reloaded with the app.
    """
    for name in [n for n in sys.modules if n.startswith("chalicelib.entrypoints.") and n.endswith("_api")]:
        importlib.reload(sys.modules[name])
    if "app" in sys.modules:
        return importlib.reload(sys.modules["app"])
    return importlib.import_module("app")

