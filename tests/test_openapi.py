"""The API contract (issue 12): ``GET /openapi.json`` is valid OpenAPI, names every route of the app and
nothing else, the app's real answers fit it, and a property-based run (schemathesis) against the app
with a real token finds no 5xx and no answer that breaks the document.

The property-based run goes through Chalice's local gateway (what ``chalice local`` and ``make demo``
serve) behind a thin WSGI adapter, on moto in-process: the same handlers, auth and stores as the local
stack, without starting servers, so it fits in ``make test``.
"""
from __future__ import annotations

import json
import os
import urllib.parse
from typing import Any, Dict, Iterable, List, Optional, Tuple

import pytest

from tests.test_app import mention, open_case, team  # noqa: F401  (team is a fixture)

JSON = {"Content-Type": "application/json"}


def spec() -> Dict[str, Any]:
    from chalicelib.entrypoints.openapi_spec import document

    return document()


def app_operations(app: Any) -> set:
    return {(method.upper(), path) for path, methods in app.routes.items() for method in methods}


def documented_operations(document: Dict[str, Any]) -> set:
    return {(method.upper(), path) for path, methods in document["paths"].items() for method in methods}


# ---- the document ---------------------------------------------------------------------------

def test_the_document_is_valid_openapi_3_1():
    from openapi_spec_validator import validate

    document = spec()
    validate(document)
    assert document["openapi"].startswith("3.1")


def test_the_limits_the_document_states_are_read_from_the_code():
    from chalicelib.entrypoints import openapi_spec

    openapi_spec._document.cache_clear()
    openapi_spec.FALLBACKS.clear()
    openapi_spec.document()
    assert openapi_spec.FALLBACKS == [], "constants renamed or moved: update openapi_spec.py"


def test_every_route_of_the_app_is_documented_and_every_documented_operation_exists():
    import importlib

    app = importlib.import_module("app").app
    routes, documented = app_operations(app), documented_operations(spec())
    assert sorted(routes - documented) == [], "routes missing from chalicelib/entrypoints/openapi_spec.py"
    assert sorted(documented - routes) == [], "documented operations the app does not have"


def test_every_path_parameter_query_and_body_field_has_a_limit():
    """Strings have a maxLength, arrays a maxItems, integers a maximum: what the code enforces, stated."""
    problems: List[str] = []

    def check(schema: Dict[str, Any], where: str) -> None:
        kinds = schema.get("type")
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if "enum" in schema or "$ref" in schema:
            return
        if "string" in kinds and "maxLength" not in schema:
            problems.append(f"{where}: string without maxLength")
        if "integer" in kinds and "maximum" not in schema:
            problems.append(f"{where}: integer without maximum")
        if "array" in kinds:
            if "maxItems" not in schema and "maxLength" not in schema.get("items", {}).get("items", {}):
                problems.append(f"{where}: array without maxItems")
            check(schema.get("items", {}), where + "[]")
        for name, child in (schema.get("properties") or {}).items():
            check(child, f"{where}.{name}")
        if isinstance(schema.get("additionalProperties"), dict):
            check(schema["additionalProperties"], where + ".*")

    for path, methods in spec()["paths"].items():
        for method, op in methods.items():
            for parameter in op.get("parameters", []):
                check(parameter["schema"], f"{method.upper()} {path} {parameter['in']} {parameter['name']}")
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body:
                check(body, f"{method.upper()} {path} body")
    assert problems == [], problems


def test_every_signed_in_operation_documents_its_errors_with_the_one_error_shape():
    document = spec()
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            signed_in = op.get("security") != []
            codes = set(op["responses"])
            if signed_in:
                assert {"400", "401", "403"} <= codes, (method, path)
            for code, answer in op["responses"].items():
                if code.startswith(("4", "5")) and code != "415":
                    assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert document["components"]["securitySchemes"]["cognito"]["scheme"] == "bearer"


def test_every_list_pages_the_same_way():
    """``limit`` and ``cursor`` in, ``next_cursor`` out: one convention, wherever a list pages."""
    for path, methods in spec()["paths"].items():
        for method, op in methods.items():
            names = {p["name"] for p in op.get("parameters", [])}
            if "cursor" not in names:
                continue
            schema = op["responses"][next(c for c in op["responses"] if c.startswith("2"))]
            schema = schema["content"]["application/json"]["schema"]
            if "$ref" in schema:
                schema = spec()["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
            assert "next_cursor" in schema.get("required", []), (method, path)


# ---- served, and real answers fit it -------------------------------------------------------

def test_the_document_is_served_without_a_token(client):
    answer = client.http.get("/openapi.json")
    assert answer.status_code == 200, answer.body
    assert answer.headers["Content-Type"].startswith("application/json")
    served = answer.json_body
    assert served["paths"] == spec()["paths"] and served["servers"] == [{"url": "/"}]


def test_the_servers_entry_is_the_stage_the_document_was_fetched_from(app_module):
    """Behind API Gateway the path carries the stage (``/api/openapi.json``): tools then call ``/api/...``."""
    from local.lambda_events import LambdaContext

    event = {"requestContext": {"httpMethod": "GET", "resourcePath": "/openapi.json", "path": "/api/openapi.json",
                                "stage": "api", "identity": {"sourceIp": "127.0.0.1"}},
             "headers": {}, "pathParameters": None, "multiValueQueryStringParameters": None, "body": None,
             "stageVariables": None, "path": "/openapi.json", "httpMethod": "GET", "resource": "/openapi.json"}
    answer = app_module.app(event, LambdaContext("api_handler", "us-east-1"))
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["servers"] == [{"url": "/api"}]


def _template(document: Dict[str, Any], method: str, path: str) -> str:
    """The documented path template a concrete path falls under."""
    parts = path.split("?")[0].split("/")
    for template, methods in document["paths"].items():
        pieces = template.split("/")
        if method.lower() in methods and len(pieces) == len(parts) and all(
                p == q or p.startswith("{") for p, q in zip(pieces, parts)):
            concrete = [p for p in pieces if not p.startswith("{")]
            if all(p in parts for p in concrete):
                return template
    raise AssertionError(f"{method} {path} is not documented")


def conformance_problem(document: Dict[str, Any], method: str, path: str, status: int,
                        content_type: str, body: Any) -> Optional[str]:
    """Why an answer does not fit the document (None when it does)."""
    from jsonschema import Draft202012Validator

    op = document["paths"][_template(document, method, path)][method.lower()]
    answer = op["responses"].get(str(status))
    if answer is None:
        return f"{method} {path}: status {status} is not documented ({sorted(op['responses'])})"
    media = content_type.split(";")[0].strip()
    if media not in answer.get("content", {}):
        return f"{method} {path} {status}: content type {media} is not documented"
    if media != "application/json":
        return None
    schema = {"allOf": [answer["content"][media]["schema"]], "components": document["components"]}
    errors = sorted(Draft202012Validator(schema).iter_errors(body), key=str)
    return f"{method} {path} {status}: {errors[0].message} at {list(errors[0].absolute_path)}" if errors else None


def test_real_answers_fit_the_document(client, app_module, team):  # noqa: F811
    document = spec()
    boss, aiko = team["boss"], team["aiko"]
    case_id = open_case(app_module, mention("700", "3 hours on hold and still no bag. Worst airline ever"))[0]["case_id"]
    calls: List[Tuple[str, str, Dict[str, str], Any]] = [
        ("GET", "/health", {}, None),
        ("GET", "/cases", boss, None),
        ("GET", "/cases?status=open&order=priority&limit=1", aiko, None),
        ("GET", "/cases?status=nope", boss, None),
        ("GET", "/cases?cursor=not-a-cursor", boss, None),
        ("GET", "/cases", {}, None),
        ("GET", "/cases", {"Authorization": "Bearer not.a.token"}, None),
        ("GET", f"/cases/{case_id}", boss, None),
        ("GET", "/cases/c_missing", boss, None),
        ("GET", f"/cases/{case_id}", team["mika"], None),
        ("POST", f"/cases/{case_id}/replies", aiko, {"text": "Sorry about this, we are on it."}),
        ("POST", f"/cases/{case_id}/replies", aiko, {"text": ""}),
        ("PATCH", f"/cases/{case_id}", aiko, {"status": "pending"}),
        ("PATCH", f"/cases/{case_id}", aiko, {"status": "lost"}),
        ("POST", f"/cases/{case_id}/replies/r_missing/retry", aiko, None),
        ("GET", "/me", aiko, None),
        ("PUT", "/me/presence", aiko, {"presence": "away"}),
        ("GET", "/notifications?unread=true", aiko, None),
        ("POST", "/notifications/read", aiko, {"ids": ["n_1"]}),
        ("GET", "/teams/support/waiting", boss, None),
        ("GET", "/teams/support/waiting", aiko, None),
        ("GET", "/teams/support/agents", boss, None),
        ("GET", "/sources", aiko, None),
        ("GET", "/admin/triage-rules/versions", boss, None),
        ("PUT", "/admin/agents/newbie", boss, {"teams": ["support"], "capacity": 5}),
        ("GET", "/admin/csat", boss, None),
        ("GET", "/admin/qa/sampling", boss, None),
        ("GET", "/qa/queue?week=2026-W48", boss, None),
        ("GET", "/qa/reviews?week=2026-W48", boss, None),
        ("GET", "/admin/sla", boss, None),
        ("GET", "/admin/teams/support/hours", boss, None),
        ("GET", "/admin/teams/support/away", boss, None),
        ("GET", "/reports/kpis?from=2026-11-01&to=2026-11-30&group_by=agent", boss, None),
        ("GET", "/reports/costs?from=2026-11-01&to=2026-11-30", boss, None),
        ("GET", "/reports/costs?format=csv", boss, None),
        ("GET", "/admin/customers/x:42/export", boss, None),
        ("GET", "/webhooks/meta?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1", {}, None),
        ("POST", "/webhooks/meta", {}, {"object": "page", "entry": []}),
        ("GET", "/openapi.json", {}, None),
        # the workspace (issue 12), triage review (issue 14), the web inbox
        ("POST", f"/cases/{case_id}/notes", aiko, {"text": "Checking with baggage services @ken"}),
        ("POST", f"/cases/{case_id}/notes", aiko, {"text": ""}),
        ("PATCH", f"/cases/{case_id}", aiko, {"priority": "urgent", "add_tags": ["baggage"]}),
        ("POST", f"/cases/{case_id}/unassign", boss, {"note": "back to the queue"}),
        ("POST", f"/cases/{case_id}/claim", team["ken"], None),
        ("POST", f"/cases/{case_id}/claim", aiko, None),
        ("POST", f"/cases/{case_id}/assign", boss, {"agent_id": "aiko", "note": "yours"}),
        ("POST", f"/cases/{case_id}/assign", boss, {}),
        ("GET", f"/cases/{case_id}/reply-options", aiko, None),
        ("GET", f"/cases/{case_id}/media/md_0000000000000000", aiko, None),
        ("POST", f"/cases/{case_id}/replies/check", aiko, {"text": "Sorry, we are on it. Call me at 090-1234-5678"}),
        ("GET", "/customers?handle=kana_t", aiko, None),
        ("GET", "/customers", aiko, None),
        ("GET", "/customers/cu_0000000000000000", aiko, None),
        ("GET", "/admin/customer-fields", boss, None),
        ("PUT", "/admin/customer-fields", boss, {"fields": [{"name": "membership_number", "label": "Membership"}]}),
        ("PUT", "/admin/templates/bag-delay", boss, {"team": "support", "name": "Bag delay",
                                                    "bodies": {"en": "Sorry {customer.name|there}, we are on it."}}),
        ("GET", "/admin/templates/bag-delay", aiko, None),
        ("GET", "/templates", aiko, None),
        ("GET", "/admin/templates", boss, None),
        ("DELETE", "/admin/templates/bag-delay", boss, None),
        ("DELETE", "/admin/templates/bag-delay", boss, None),
        ("GET", "/admin/brand-voice", boss, None),
        ("GET", "/mentions?case=false", aiko, None),
        ("GET", "/mentions", aiko, None),
        ("POST", "/mentions/x:1/confirm", aiko, None),
        ("GET", "/reports/triage-digest?day=2026-11-23", boss, None),
        ("GET", "/admin/triage-corrections", boss, None),
        ("GET", "/admin/triage-models", boss, None),
        ("GET", "/", {}, None),
        ("GET", "/assets/app.css", {}, None),
        ("GET", "/assets/nope.txt", {}, None),
    ]
    detail = client.http.get(f"/cases/{case_id}", headers=boss).json_body
    customer_id = (detail.get("customer") or {}).get("customer_id")
    if customer_id:
        calls += [("GET", f"/customers/{customer_id}", aiko, None),
                  ("PATCH", f"/customers/{customer_id}", aiko, {"tags": ["tier-1"], "notes": "Prefers DMs"}),
                  ("POST", f"/customers/{customer_id}/merge", aiko, {"customer_id": "cu_0000000000000000"}),
                  ("POST", f"/customers/{customer_id}/unmerge", aiko, {"customer_key": "x:42"})]
    problems = []
    for method, path, headers, payload in calls:
        answer = client.http.request(method, path, headers={**headers, **JSON},
                                     body=None if payload is None else json.dumps(payload))
        content_type = answer.headers.get("Content-Type", "application/json")
        decoded = json.loads(answer.body) if content_type.startswith("application/json") else answer.body
        problem = conformance_problem(document, method, path, answer.status_code, content_type, decoded)
        if problem:
            problems.append(problem)
        assert answer.status_code < 500, (method, path, answer.body)
        if answer.status_code >= 400:
            # A sentence a person can act on: words, not a code, a type name or a traceback.
            message = decoded["error"]
            if len(message.split()) < 3 or "Traceback" in message or "Exception" in message:
                problems.append(f"{method} {path} {answer.status_code}: unhelpful error {message!r}")
    assert problems == []


# ---- the property-based run -----------------------------------------------------------------

class ChaliceWSGI:
    """A WSGI app over Chalice's local gateway (``chalice local``'s API Gateway stand-in)."""

    def __init__(self, app: Any) -> None:
        from chalice.config import Config
        from chalice.local import LocalGateway

        self.gateway = LocalGateway(app, Config())

    def __call__(self, environ: Dict[str, Any], start_response: Any) -> Iterable[bytes]:
        from chalice.local import LocalGatewayException

        target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        if not target:
            target = urllib.parse.quote(environ.get("PATH_INFO", "/").encode("latin-1"), safe="/:@!$&'()*+,;=-._~")
            if environ.get("QUERY_STRING"):
                target += "?" + environ["QUERY_STRING"]
        headers = {name[5:].replace("_", "-").lower(): value for name, value in environ.items()
                   if name.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        payload = environ["wsgi.input"].read(length) if length else None
        try:
            answer = self.gateway.handle_request(environ["REQUEST_METHOD"], target, headers, payload)
            status, out_headers, body = answer["statusCode"], dict(answer.get("headers") or {}), answer.get("body")
            for name, values in (answer.get("multiValueHeaders") or {}).items():
                out_headers[name] = ", ".join(values)
            if answer.get("isBase64Encoded") and body:
                import base64

                body = base64.b64decode(body)
        except LocalGatewayException as err:
            status, out_headers, body = err.CODE, dict(err.headers), err.body
        raw = body if isinstance(body, bytes) else (body or "").encode("utf-8")
        if raw and not any(name.lower() == "content-type" for name in out_headers):
            out_headers["Content-Type"] = "application/json"  # as `chalice local` and API Gateway answer
        start_response(f"{status} STATUS", [(k, str(v)) for k, v in out_headers.items()])
        return [raw]


# Examples per operation (each request costs ~0.1 s on moto in-process). SCHEMATHESIS_EXAMPLES=200 for a long run.
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "5"))
NEGATIVE = os.environ.get("SCHEMATHESIS_NEGATIVE", "1") == "1"
# Schemathesis's coverage cases number about 3,500 for the whole API: every 40th in `make test` (0: none).
COVERAGE_STRIDE = int(os.environ.get("SCHEMATHESIS_COVERAGE_STRIDE", "40"))


@pytest.fixture
def deployed(aws, monkeypatch):
    """The stack's outputs in the functions' environment, as ``make deploy`` writes them (infra/deploy.py
    OUTPUT_ENV: the bucket names); the agent pool is the app_module fixture's own. Must come before it."""
    import boto3

    from infra.deploy import OUTPUT_ENV

    stack = boto3.client("cloudformation", region_name="us-east-1").describe_stacks(StackName="socialcare-test")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Stacks"][0].get("Outputs", [])}
    for key, name in OUTPUT_ENV.items():
        if key in outputs and not name.startswith("USER_POOL"):
            monkeypatch.setenv(name, outputs[key])
    if outputs.get("ModelBucketName"):  # the template turns versioning on; moto's CloudFormation does not
        boto3.client("s3", region_name="us-east-1").put_bucket_versioning(
            Bucket=outputs["ModelBucketName"], VersioningConfiguration={"Status": "Enabled"})
    return outputs


def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_document(deployed, app_module, team):  # noqa: F811
    import hypothesis
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    case_id = open_case(app_module, mention("701", "My bag did not arrive in Osaka, please help"))[0]["case_id"]
    wsgi = ChaliceWSGI(app_module.app)
    schema = schemathesis.openapi.from_wsgi("/openapi.json", wsgi)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    # The demo's token is a supervisor's: every route is open to it.
    headers = team["boss"]
    failures: List[str] = []
    seen: set = set()
    statuses: Dict[str, set] = {}

    sent = {"fuzz": 0, "coverage": 0}

    def send(case: Any, phase: str = "fuzz") -> None:
        sent[phase] += 1
        try:
            answer = case.call_and_validate(headers=headers, checks=checks)
            statuses.setdefault(case.operation.label, set()).add(answer.status_code)
        except (Exception, BaseExceptionGroup) as err:  # noqa: BLE001 - how schemathesis reports failed checks
            what = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            if (case.operation.label, what) not in seen:
                seen.add((case.operation.label, what))
                failures.append(f"{case.method} {case.formatted_path} query={case.query} "
                                f"body={case.body!r:.300}:\n{str(err)[:1500]}")

    for result in schema.get_all_operations():
        operation = result.ok()
        # Fuzzing: values drawn from the schema (and, negative, from outside it).
        strategy = operation.as_strategy(GenerationMode.POSITIVE)
        if NEGATIVE:
            strategy = st.one_of(strategy, operation.as_strategy(GenerationMode.NEGATIVE))
        if "case_id" in operation.path:
            # Half the cases name a real case: the routes get past the 404 to their own checks.
            strategy = st.tuples(strategy, st.booleans()).map(lambda pair: _on_case(pair[0], case_id, pair[1]))

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True, phases=[
            hypothesis.Phase.explicit, hypothesis.Phase.generate],
            suppress_health_check=list(HealthCheck))
        @given(strategy)
        def run(case):
            send(case)

        run()
        # Coverage: schemathesis's boundary cases (each limit, each enum, each required field, one over and
        # one under); every COVERAGE_STRIDE-th of them here, all with SCHEMATHESIS_COVERAGE_STRIDE=1.
        if COVERAGE_STRIDE:
            modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if NEGATIVE else [])
            cases = schema.iter_coverage_cases(operation, generation_modes=modes,
                                               generation_config=schema.config.generation_for(operation=operation))
            for index, case in enumerate(cases):
                if index % COVERAGE_STRIDE == 0:
                    send(_on_case(case, case_id, index % (2 * COVERAGE_STRIDE) == 0), "coverage")
    print(sent, {label: sorted(codes) for label, codes in sorted(statuses.items())})
    assert sent["fuzz"] >= len(statuses) and (sent["coverage"] > 0 or not COVERAGE_STRIDE), sent
    assert failures == [], "\n\n".join(failures[:20])
    # Not a run of 401s: the token works, and most operations answered a success at least once.
    succeeded = [label for label, codes in statuses.items() if any(200 <= code < 300 for code in codes)]
    assert len(succeeded) >= len(statuses) // 2, statuses


def _on_case(case: Any, case_id: str, real: bool) -> Any:
    if real and "case_id" in (case.path_parameters or {}):
        case.path_parameters = {**(case.path_parameters or {}), "case_id": case_id}
    return case
