"""The API handler behind a Lambda function URL answers as it answers through API Gateway REST.

Each request goes to ``app.app(event, context)`` twice, on moto: as the function URL's event (payload
format 2.0, shaped as AWS documents it) and as API Gateway REST's event for the same request (payload
1.0, under the stage ``/api``, routed by Chalice's own ``chalice local`` matcher, not ours). The two
answers must be the same, bar what a function URL's answer has no room for.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from urllib.parse import parse_qsl

import pytest
from chalice import Response
from chalice.local import LambdaEventConverter, RouteMatcher

from chalicelib.adapters import metering
from chalicelib.domain import metering as rules
from chalicelib.entrypoints import function_url
from tests.api import JSON, frozen_clock
from tests.listen.test_push import APP_SECRET, whatsapp_delivery
from tests.test_app import mention, open_case, team  # noqa: F401  (team is a fixture)

URL_ID = "abcdefghijklmnopqrstuvwxyz012345"
HOST = f"{URL_ID}.lambda-url.us-east-1.on.aws"
CLIENT_IP = "203.0.113.9"


class LambdaContext:
    function_name = "socialcare-test"
    memory_limit_in_mb = 1024
    aws_request_id = "8f5e2b8e-6a57-4c3c-9d49-0f2f6f8d1c11"

    def get_remaining_time_in_millis(self):
        return 30_000


def url_event(method, path, *, query="", headers=None, body=None, is_base64=False, cookies=None):
    """The event a function URL hands the function (payload format 2.0): lower-case header names, the
    path and query string as sent, no Cookie header (``cookies`` instead), no ``body`` without one."""
    headers = {"host": HOST, "x-forwarded-proto": "https", "x-forwarded-port": "443", "x-forwarded-for": CLIENT_IP,
               "user-agent": "pytest", "x-amzn-trace-id": "Root=1-692e6b28-0123456789abcdef01234567",
               **{name.lower(): value for name, value in (headers or {}).items()}}
    event = {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query, "headers": headers,
        "requestContext": {
            "accountId": "anonymous", "apiId": URL_ID, "domainName": HOST, "domainPrefix": URL_ID,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": CLIENT_IP,
                     "userAgent": "pytest"},
            "requestId": "c0ffee00-1111-2222-3333-444455556666", "routeKey": "$default", "stage": "$default",
            "time": "02/Dec/2026:04:10:00 +0000", "timeEpoch": 1796098200000,
        },
        "isBase64Encoded": is_base64,
    }
    if query:  # a function URL joins a repeated key's values with commas here; the app must not read this
        joined = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            joined[name] = f"{joined[name]},{value}" if name in joined else value
        event["queryStringParameters"] = joined
    if body is not None:
        event["body"] = body
    if cookies:
        event["cookies"] = cookies
    return event


def rest_event(app_module, method, path, *, query="", headers=None, body=None):
    """API Gateway REST's event for the same request, stage ``api``: routed by ``chalice local``."""
    converter = LambdaEventConverter(RouteMatcher(list(app_module.app.routes)))
    event = converter.create_lambda_event(method, path + ("?" + query if query else ""), headers or {},
                                          body.encode() if isinstance(body, str) else body)
    query_values = event["multiValueQueryStringParameters"]
    event.update({
        "resource": event["requestContext"]["resourcePath"], "path": path, "httpMethod": method,
        "multiValueHeaders": {name: [value] for name, value in event["headers"].items()},
        "queryStringParameters": {k: v[-1] for k, v in query_values.items()} if query_values else None,
        "isBase64Encoded": False,
    })
    event["pathParameters"] = event["pathParameters"] or None
    event["requestContext"].update({"path": "/api" + path, "stage": "api", "requestId": "rest-request"})
    return event


def through_url(app_module, method, path, **request):
    return app_module.app(url_event(method, path, **request), LambdaContext())


def through_rest(app_module, method, path, **request):
    return app_module.app(rest_event(app_module, method, path, **request), LambdaContext())


def same_answer(app_module, method, path, *, base64_body=False, **request):
    """The function URL's answer, after checking it is REST's for the same request."""
    rest = through_rest(app_module, method, path, **request)
    if base64_body:
        request["body"] = base64.b64encode(request["body"].encode()).decode()
    url = through_url(app_module, method, path, is_base64=base64_body, **request)
    assert url["statusCode"] == rest["statusCode"], (url["body"][:300], rest["body"][:300])
    assert url["headers"] == rest["headers"]
    assert body_of(url) == body_of(rest)
    assert "multiValueHeaders" not in url
    return url


def body_of(answer):
    try:
        return json.loads(answer["body"])
    except ValueError:
        return answer["body"]


@pytest.fixture
def case_id(app_module, team):  # noqa: F811
    frozen_clock("2026-11-23T09:30:00Z")
    results = open_case(app_module, mention("100", "3 hours on hold and still no bag. Worst airline ever"))
    return results[0]["case_id"]


@pytest.fixture
def fresh_meter():
    """A meter of its own that never flushes during the test (the pending usage is what it metered)."""
    previous = metering.meter()
    meter = metering.reset(rules.UsageMeter(rule=rules.FlushRule(every_seconds=1e9)))
    meter.last_flush = time.time()
    yield meter
    metering.reset(previous)


# ---- the same answers ----------------------------------------------------------------------------

def test_health_answers_through_the_function_url(app_module):
    answer = same_answer(app_module, "GET", "/health")
    assert answer["statusCode"] == 200 and body_of(answer) == {"status": "ok", "stage": "test"}
    assert answer["isBase64Encoded"] is False


def test_a_signed_in_agents_inbox_is_the_same_through_both_fronts(app_module, team, case_id):  # noqa: F811
    answer = same_answer(app_module, "GET", "/cases", headers=team["ken"], query="order=priority")
    assert [case["case_id"] for case in body_of(answer)["cases"]] == [case_id]
    unsigned = same_answer(app_module, "GET", "/cases")
    assert unsigned["statusCode"] == 401 and unsigned["headers"]["WWW-Authenticate"].startswith("Bearer")


def test_path_parameters_are_handed_over_as_rest_hands_them_over(app_module, team, case_id):  # noqa: F811
    boss = team["boss"]
    # ':' stands as it is in an id (the web inbox sends mention and customer keys so): the route gets it.
    export = same_answer(app_module, "GET", "/admin/customers/x:42/export", headers=boss)
    assert export["statusCode"] == 200 and body_of(export)["customer_keys"] == ["x:42"]
    assert [c["case_id"] for c in body_of(export)["cases"]] == [case_id]
    # Percent-encoded, it reaches the route still encoded, on both fronts: not the same customer.
    encoded = same_answer(app_module, "GET", "/admin/customers/x%3A42/export", headers=boss)
    assert encoded["statusCode"] == 400 and "must be a customer key" in body_of(encoded)["error"]
    template = same_answer(app_module, "PUT", "/admin/templates/Lost%20Bag", headers={**boss, **JSON},
                           body=json.dumps({"team": "support", "name": "Lost bag", "bodies": {"en": "Hi"}}))
    assert template["statusCode"] == 400 and "template id" in body_of(template)["error"]
    # A trailing slash is the route without it, as on API Gateway.
    listed = same_answer(app_module, "GET", "/cases/", headers=team["ken"])
    assert listed["statusCode"] == 200 and [c["case_id"] for c in body_of(listed)["cases"]] == [case_id]


def test_query_strings_are_decoded_as_rest_decodes_them(app_module, team, case_id):  # noqa: F811
    ken = team["ken"]
    repeated = same_answer(app_module, "GET", "/cases", headers=ken, query="order=priority&order=oldest")
    assert repeated["statusCode"] == 400 and "order" in body_of(repeated)["error"]
    # Percent-decoded before the app reads it ("supp%6Frt" is "support"), on both fronts.
    encoded = same_answer(app_module, "GET", "/cases", headers=ken, query="team=supp%6Frt")
    assert encoded["statusCode"] == 200 and [c["case_id"] for c in body_of(encoded)["cases"]] == [case_id]
    spaced = same_answer(app_module, "GET", "/cases", headers=ken, query="team=sup+port")
    assert spaced["statusCode"] in (400, 403), spaced["body"]
    listed = same_answer(app_module, "GET", "/cases", headers=ken, query="order=priority&limit=5")
    assert listed["statusCode"] == 200 and len(body_of(listed)["cases"]) == 1


def test_json_bodies_plain_and_base64_are_read_alike(app_module, team, case_id):  # noqa: F811
    ken = {**team["ken"], **JSON}
    note = through_url(app_module, "POST", f"/cases/{case_id}/notes", headers=ken,
                       body=json.dumps({"text": "Called the desk at Haneda; bag located"}))
    assert note["statusCode"] in (200, 201), note["body"]
    shown = body_of(through_rest(app_module, "GET", f"/cases/{case_id}", headers=ken))
    assert "Called the desk at Haneda; bag located" in json.dumps(shown, ensure_ascii=False)
    wrong = json.dumps({"status": "archived"})
    for base64_body in (False, True):
        refused = same_answer(app_module, "PATCH", f"/cases/{case_id}", headers=ken, body=wrong,
                              base64_body=base64_body)
        assert refused["statusCode"] == 400 and "status" in body_of(refused)["error"]
    # A body past the API's limit: the same refusal on both fronts.
    huge = json.dumps({"text": "x" * (300 * 1024)})
    too_big = same_answer(app_module, "POST", f"/cases/{case_id}/notes", headers=ken, body=huge)
    assert too_big["statusCode"] == 413 and "bytes" in body_of(too_big)["error"]


def test_meta_webhook_signature_is_checked_over_the_bytes_meta_sent(app_module):
    # Raw UTF-8 and odd spacing: any re-encoding or re-serialising on the way would break the signature.
    raw = json.dumps(whatsapp_delivery(), ensure_ascii=False, indent=1).encode("utf-8")
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
    accepted = same_answer(app_module, "POST", "/webhooks/meta", headers=headers, body=raw.decode("utf-8"))
    assert accepted["statusCode"] == 200 and body_of(accepted)["enqueued"] == 1
    as_base64 = through_url(app_module, "POST", "/webhooks/meta", headers=headers,
                            body=base64.b64encode(raw).decode(), is_base64=True)
    assert as_base64["statusCode"] == 200 and body_of(as_base64)["enqueued"] == 1
    forged = {**headers, "X-Hub-Signature-256": "sha256=" + "0" * 64}
    refused = same_answer(app_module, "POST", "/webhooks/meta", headers=forged, body=raw.decode("utf-8"))
    assert refused["statusCode"] == 401 and "X-Hub-Signature-256" in body_of(refused)["error"]
    handshake = same_answer(app_module, "GET", "/webhooks/meta",
                            query="hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444")
    assert handshake["statusCode"] == 200 and handshake["body"] == "1158201444"


def test_the_web_inbox_is_served_at_the_function_urls_root(app_module):
    page = same_answer(app_module, "GET", "/")
    assert page["statusCode"] == 200 and page["headers"]["Content-Type"].startswith("text/html")
    assert "frame-ancestors 'none'" in page["headers"]["Content-Security-Policy"]
    assert 'src="assets/app.js' in page["body"]  # relative: the same page works under /api/ and at /
    script = same_answer(app_module, "GET", "/assets/app.js")
    assert script["statusCode"] == 200 and script["headers"]["Content-Type"].startswith("application/javascript")


def test_the_api_document_points_at_where_it_was_fetched(app_module):
    url = through_url(app_module, "GET", "/openapi.json")
    rest = through_rest(app_module, "GET", "/openapi.json")
    assert body_of(url)["servers"] == [{"url": "/"}] and body_of(rest)["servers"] == [{"url": "/api"}]
    assert body_of(url)["paths"] == body_of(rest)["paths"]


# ---- what only the function URL answers ----------------------------------------------------------

def test_a_path_no_route_matches_is_a_json_404(app_module):
    for path in ("/nope", "/cases/abc/nope", "/cases//claim", "/CASES"):
        answer = through_url(app_module, "GET", path)
        assert answer["statusCode"] == 404, path
        assert answer["headers"]["Content-Type"] == "application/json"
        error = body_of(answer)
        assert error["message"] == "Not Found" and "/openapi.json" in error["error"] and path in error["error"]


def test_a_route_asked_with_a_method_it_lacks_is_a_405_naming_the_ones_it_has(app_module):
    answer = same_answer(app_module, "DELETE", "/cases")
    assert answer["statusCode"] == 405 and answer["headers"]["Allow"] == "GET"


def test_absurd_addresses_are_refused_before_routing(app_module):
    long_path = through_url(app_module, "GET", "/cases/" + "c" * 3000)
    assert long_path["statusCode"] == 414 and "at most 2,048" in body_of(long_path)["error"]
    long_query = through_url(app_module, "GET", "/health", query="q=" + "x" * 9000)
    assert long_query["statusCode"] == 414 and "at most 8,192" in body_of(long_query)["error"]
    assert through_url(app_module, "GET", "/health", query="q=" + "x" * 8000)["statusCode"] == 200


def test_a_literal_segment_wins_over_a_variable_whatever_their_order():
    routes = ["/a/{id}/x", "/a/{id}", "/a/~literal", "/a/~literal/x", "/b/{id}/{other}", "/b/{id}/check"]
    assert function_url.match_route("/a/~literal", routes) == ("/a/~literal", {})
    assert function_url.match_route("/a/7", routes) == ("/a/{id}", {"id": "7"})
    assert function_url.match_route("/a/~literal/x", routes) == ("/a/~literal/x", {})
    assert function_url.match_route("/b/7/check", routes) == ("/b/{id}/check", {"id": "7"})
    assert function_url.match_route("/b/7/other", routes) == ("/b/{id}/{other}", {"id": "7", "other": "other"})


def test_the_rest_event_carries_cookies_query_values_and_the_front():
    event = url_event("POST", "/cases/x:1%2F2", query="a=1&a=2&b=&c=d+e%2Bf", cookies=["s=1", "t=2"],
                      headers={"Accept": "application/json"}, body="{}")
    rest = function_url.to_rest_event(event, ["/cases/{case_id}"])
    assert rest["pathParameters"] == {"case_id": "x:1%2F2"}
    assert rest["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": [""], "c": ["d e+f"]}
    assert rest["queryStringParameters"] == {"a": "2", "b": "", "c": "d e+f"}
    assert rest["headers"]["cookie"] == "s=1; t=2" and rest["multiValueHeaders"]["accept"] == ["application/json"]
    assert rest["requestContext"]["front"] == "function_url" and rest["requestContext"]["resourcePath"] == "/cases/{case_id}"
    assert rest["requestContext"]["identity"]["sourceIp"] == CLIENT_IP and rest["body"] == "{}"
    bare = function_url.to_rest_event(url_event("GET", "/cases/1"), ["/cases/{case_id}"])
    assert bare["body"] is None and bare["queryStringParameters"] is None
    assert bare["multiValueQueryStringParameters"] is None


def test_cookies_and_repeated_headers_fit_a_function_urls_answer():
    answer = Response(body={"ok": True}, status_code=201,
                      headers={"Set-Cookie": ["a=1; Secure; Expires=Wed, 09 Jun 2027 10:18:14 GMT", "b=2"],
                               "Vary": ["Accept", "Origin"], "Cache-Control": "no-store"}).to_dict()
    shaped = function_url.to_function_url_response(answer)
    assert shaped["statusCode"] == 201 and json.loads(shaped["body"]) == {"ok": True}
    assert shaped["cookies"] == ["a=1; Secure; Expires=Wed, 09 Jun 2027 10:18:14 GMT", "b=2"]
    assert shaped["headers"] == {"Vary": "Accept, Origin", "Cache-Control": "no-store"}
    assert "multiValueHeaders" not in shaped


def test_rest_events_and_other_events_are_not_taken_for_function_url_events(app_module):
    assert function_url.is_function_url_event(url_event("GET", "/health"))
    assert not function_url.is_function_url_event(rest_event(app_module, "GET", "/health"))
    assert not function_url.is_function_url_event({"version": "2.0", "Records": []})
    assert not function_url.is_function_url_event({"version": "2.0", "rawPath": "/", "requestContext": {}})


# ---- metering ------------------------------------------------------------------------------------

def test_a_function_url_request_costs_no_api_gateway_request(app_module, fresh_meter):
    through_url(app_module, "GET", "/health")
    api = fresh_meter.pending()[("api", rules.SHARED)]
    assert api[rules.LAMBDA_REQUESTS] == 1 and rules.APIGATEWAY_REQUESTS not in api
    through_rest(app_module, "GET", "/health")
    api = fresh_meter.pending()[("api", rules.SHARED)]
    assert api[rules.LAMBDA_REQUESTS] == 2 and api[rules.APIGATEWAY_REQUESTS] == 1
    # Meta's deliveries keep their own function name through the function URL.
    through_url(app_module, "GET", "/webhooks/meta", query="hub.mode=subscribe&hub.verify_token=no")
    webhooks = fresh_meter.pending()[("webhooks", rules.SHARED)]
    assert webhooks[rules.LAMBDA_REQUESTS] == 1 and rules.APIGATEWAY_REQUESTS not in webhooks
