"""The API contract as data: an OpenAPI 3.1 document of every HTTP route (``GET /openapi.json``).

Loaded only by the route that serves it (never at a function's cold start), built once per container.
Enums and limits are read from the modules that enforce them, so the document cannot drift from the
code on those; ``tests/test_openapi.py`` validates the document, checks that every route of
``app.py`` is in it and every documented operation exists, checks real answers against the
response schemas, and runs schemathesis against the app.

Conventions the document states once:
- every error is JSON ``{"error": "<what to fix>"}`` (``Error``), from ``entrypoints/http.api_errors``;
  the framework's own refusals are ``FrameworkError`` ``{"Code", "Message"}``: 415 for a body that is not
  ``application/json``, 405 for a method a path does not have; a path that is no route at all gets a JSON
  404 ``{"error", "message"}`` through the function URL (and 414 for a path or query string too long:
  ``entrypoints/function_url.py``), API Gateway's 403 ``{"message": "Missing Authentication Token"}``
  through the REST API;
- every signed-in route takes ``Authorization: Bearer <Cognito ID or access token>`` (``cognito``);
- every list pages the same way: ``limit`` and ``cursor`` in, ``next_cursor`` out (null on the last page);
- path ids are 1 to 128 letters, digits, punctuation or symbols; a query has at most 20 parameters,
  each given once, each value at most 2,048 characters (a cursor 4,096); a body at most 256 KiB of
  UTF-8 JSON, 32 levels deep, 20,000 values. Past a limit: 400 naming it.
"""
from __future__ import annotations

import copy
import functools
from typing import Any, Dict, List, Optional, Sequence, Tuple

JSON = "application/json"
Schema = Dict[str, Any]

OPEN: Schema = {"type": "object"}                           # a JSON object whose fields are documented in prose
NULLABLE_STRING: Schema = {"type": ["string", "null"]}
DATE: Schema = {"type": "string", "format": "date", "minLength": 10, "maxLength": 10, "description": "YYYY-MM-DD"}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _limits() -> Any:
    from chalicelib.domain import limits

    return limits


# ---- parameters ---------------------------------------------------------------------------

def path_id(name: str, description: str, *, max_length: Optional[int] = None) -> Schema:
    limits = _limits()
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "minLength": 1, "maxLength": max_length or limits.MAX_ID_LENGTH}}


def query(name: str, description: str, schema: Optional[Schema] = None, *, required: bool = False) -> Schema:
    limits = _limits()
    shown = schema or {"type": "string",
                       "maxLength": limits.QUERY_VALUE_LENGTHS.get(name, limits.MAX_QUERY_VALUE_LENGTH)}
    return {"name": name, "in": "query", "required": required, "description": description, "schema": shown}


def enum_query(name: str, values: Sequence[str], description: str, *, default: Optional[str] = None) -> Schema:
    schema: Schema = {"type": "string", "enum": list(values)}
    if default is not None:
        schema["default"] = default
    return query(name, description, schema)


def paging(default: int, maximum: int) -> List[Schema]:
    """The one pagination convention: ``limit`` and ``cursor`` in, ``next_cursor`` out."""
    limits = _limits()
    return [
        query("limit", f"Items per page, 1 to {maximum} (default {default}).",
              {"type": "integer", "minimum": 1, "maximum": maximum, "default": default}),
        query("cursor", "The `next_cursor` of the previous page, unchanged; leave out for the first page. "
                        "A cursor of another listing is a 400.",
              {"type": "string", "minLength": 1, "maxLength": limits.MAX_CURSOR_LENGTH}),
    ]


def day_query(name: str, description: str, *, required: bool = False) -> Schema:
    return query(name, description, {"type": "string", "format": "date", "minLength": 10, "maxLength": 10},
                 required=required)


# ---- responses ------------------------------------------------------------------------------

ERROR_TEXT = {
    400: "The request is malformed or outside a limit; `error` says what to fix.",
    401: "No token, or one that is expired, forged or for another app; sign in again.",
    403: "Signed in, but not allowed: not a registered agent, not in the case's team, or not the right role.",
    404: "No such item (the message names it).",
    413: "The body is over its limit (256 KiB unless the route says less); `error` gives both sizes.",
    409: "The item changed meanwhile, or the change is not possible in its current state; reload and retry.",
    503: "Sign-in keys or a store could not be reached, or sign-in is not configured; try again shortly.",
}


def error(status: int, description: Optional[str] = None) -> Schema:
    answer: Schema = {"description": description or ERROR_TEXT[status],
                      "content": {JSON: {"schema": ref("Error")}}}
    if status == 401:
        answer["headers"] = {"WWW-Authenticate": {"description": "`Bearer realm=\"socialcare\"`",
                                                  "schema": {"type": "string"}}}
    return answer


def ok(schema: Schema, description: str = "OK") -> Schema:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def csv_or_json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {JSON: {"schema": schema},
                                                    "text/csv": {"schema": {"type": "string"}}}}


def body(schema: Schema, description: str = "", *, required: bool = True) -> Schema:
    return {"required": required, "description": description, "content": {JSON: {"schema": schema}}}


def operation(summary: str, tag: str, *, params: Sequence[Schema] = (), request: Optional[Schema] = None,
              responses: Dict[int, Schema], errors: Sequence[int] = (), auth: bool = True,
              description: str = "") -> Schema:
    """One operation; signed-in ones get 400 (path/query limits), 401, 403 and 503 on top of ``errors``."""
    shown: Dict[str, Schema] = {str(code): answer for code, answer in responses.items()}
    codes = set(errors) | ({400, 401, 403, 503} if auth else set())
    for code in sorted(codes):
        shown.setdefault(str(code), error(code))
    if request is not None:
        shown.setdefault("413", error(413))
        shown.setdefault("415", {"description": "The body is not sent as `application/json` (the framework's answer).",
                                 "content": {JSON: {"schema": ref("FrameworkError")}}})
    op: Schema = {"summary": summary, "tags": [tag], "responses": dict(sorted(shown.items()))}
    if description:
        op["description"] = description
    if params:
        op["parameters"] = list(params)
    if request is not None:
        op["requestBody"] = request
    if not auth:
        op["security"] = []
    return op


def obj(properties: Dict[str, Schema], *, required: Sequence[str] = (), closed: bool = False,
        description: str = "") -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    if description:
        schema["description"] = description
    return schema


def text(max_length: int, description: str = "", *, min_length: int = 0) -> Schema:
    schema: Schema = {"type": "string", "maxLength": max_length}
    if min_length:
        schema["minLength"] = min_length
    if description:
        schema["description"] = description
    return schema


def whole(low: int, high: int, description: str = "") -> Schema:
    schema: Schema = {"type": "integer", "minimum": low, "maximum": high}
    if description:
        schema["description"] = description
    return schema


def page_of(field: str, item: Schema, **extra: Schema) -> Schema:
    return obj({field: {"type": "array", "items": item}, "next_cursor": {**NULLABLE_STRING,
               "description": "Pass as `cursor` for the next page; null on the last page."}, **extra},
               required=[field, "next_cursor"])


# ---- the document ---------------------------------------------------------------------------

def _schemas() -> Dict[str, Schema]:
    from chalicelib.domain import agent, case, reply

    return {
        "Error": obj({"error": {"type": "string", "minLength": 1,
                                "description": "What went wrong and what to do about it, for a person."},
                      "findings": {"type": "array", "items": OPEN,
                                   "description": "With a 409 on a reply: the blocking brand-voice findings."}},
                     required=["error"],
                     description="Every error this API answers with itself (entrypoints/http.api_errors); some "
                                 "carry fields a client acts on beside `error`."),
        "FrameworkError": obj({"Code": {"type": "string"}, "Message": {"type": "string"}},
                              required=["Code", "Message"],
                              description="A refusal made by the framework before the route runs (e.g. 415)."),
        "Case": obj({
            "case_id": {"type": "string"}, "team": {"type": "string"}, "platform": {"type": "string"},
            "status": {"type": "string", "enum": list(case.STATUSES)},
            "priority": {"type": "string", "enum": list(case.PRIORITIES)},
            "assignee": NULLABLE_STRING, "customer": OPEN, "customer_key": {"type": "string"},
            "category": NULLABLE_STRING, "sentiment": NULLABLE_STRING, "lang": {"type": "string"},
            "escalated": {"type": "boolean"}, "created_at": {"type": "string"}, "updated_at": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "sla": {"type": ["object", "null"], "description": "Live SLA clocks; null without a policy."},
        }, required=["case_id", "team", "platform", "status", "priority"]),
        "CaseDetail": obj({
            "case": ref("Case"),
            "customer": {**OPEN, "description": "The customer panel: `customer_id` (GET /customers/{customer_id}), "
                                                "identities, tags and other cases."},
            "mentions": {"type": "array", "items": OPEN}, "history": {"type": "array", "items": OPEN},
            "media": {"type": "array", "items": OPEN,
                      "description": "This page's files; GET /cases/{case_id}/media/{media_id} opens one."},
            "replies": {"type": "array", "items": ref("Reply")}, "notes": {"type": "array", "items": OPEN},
            "next_cursor": NULLABLE_STRING,
        }, required=["case", "customer", "mentions", "history", "replies", "next_cursor"],
            description="A case with one page of its history; `next_cursor` pages the history."),
        "Reply": obj({
            "reply_id": {"type": "string"}, "case_id": {"type": "string"}, "text": {"type": "string"},
            "mode": {"type": "string", "enum": list(reply.MODES)}, "agent_id": {"type": "string"},
            "delivery_status": {"type": "string", "enum": list(reply.DELIVERY_STATUSES)},
        }, required=["reply_id", "case_id", "mode", "delivery_status"]),
        "Agent": obj({
            "agent_id": {"type": "string"}, "name": {"type": "string"},
            "teams": {"type": "array", "items": {"type": "string"}}, "capacity": {"type": "integer"},
            "available": {"type": "boolean"}, "role": {"type": "string", "enum": list(agent.ROLES)},
            "open_cases": {"type": "integer"}, "presence": {"type": "string", "enum": list(agent.PRESENCES)},
        }, required=["agent_id", "name", "teams", "capacity", "available", "role"]),
        "Customer": obj({
            "customer_id": {"type": "string"}, "identities": {"type": "array", "items": OPEN},
            "tags": {"type": "array", "items": {"type": "string"}}, "notes": {"type": "string"},
            "fields": OPEN, "cases": {"type": "array", "items": OPEN}, "next_cursor": NULLABLE_STRING,
        }, required=["customer_id", "identities", "cases", "next_cursor"],
            description="A customer across their linked identities; `next_cursor` pages `cases`."),
        "Notification": obj({
            "notification_id": {"type": "string"}, "case_id": {"type": "string"}, "reason": {"type": "string"},
            "detail": {"type": "string"}, "at": {"type": "string"}, "read": {"type": "boolean"},
        }, required=["notification_id", "case_id", "reason", "read"]),
        "Source": obj({"source_id": {"type": "string"}, "kind": {"type": "string"}, "platform": {"type": "string"},
                       "account_id": {"type": "string"}, "enabled": {"type": "boolean"}},
                      required=["source_id", "kind", "account_id"]),
    }


def _paths() -> Dict[str, Dict[str, Schema]]:  # one table of every route
    from chalicelib.domain import agent, case, csat, hours, kpi, qa, sla, source
    from chalicelib.domain import away as away_rules
    from chalicelib.services import costs, inbox, notify, privacy, workload
    from chalicelib.services import qa as qa_service

    limits = _limits()
    case_id = path_id("case_id", "A case id as the API issued it (`c_…`).")
    team = path_id("team", "A team name: 1 to 64 printable characters, no '#'.", max_length=agent.MAX_TEAM_NAME)
    customer_key = path_id("customer_key", f"A customer identity {privacy.KEY_EXAMPLE}.")
    week = query("week", "An ISO week such as 2026-W49.", {"type": "string", "minLength": 1, "maxLength": 10},
                 required=True)
    saved_200_201 = {200: ok(OPEN, "Replaced."), 201: ok(OPEN, "Saved for the first time (the defaults applied until now).")}
    supervisor = "Supervisors only (403 otherwise)."
    team_names = {"type": "array", "minItems": 1, "maxItems": agent.MAX_TEAMS,
                  "items": text(agent.MAX_TEAM_NAME, min_length=1)}
    shifts = {"type": "array", "maxItems": hours.MAX_SHIFTS_PER_DAY,
              "items": {"type": "array", "minItems": 2, "maxItems": 2,
                        "items": {"type": "string", "maxLength": 5, "description": "HH:MM"}}}
    templates = {"type": "object", "properties": {lang: text(away_rules.MAX_TEMPLATE_CHARS) for lang in away_rules.LANGS},
                 "additionalProperties": False}

    return {
        "/health": {"get": operation("Liveness: the stage answers", "meta", auth=False, responses={
            200: ok(obj({"status": {"type": "string", "enum": ["ok"]}, "stage": {"type": "string"}},
                        required=["status", "stage"]))})},
        "/openapi.json": {"get": operation(
            "This document", "meta", auth=False, responses={200: ok(OPEN, "The OpenAPI 3.1 document.")},
            description="Public: it describes the API and holds no data. `servers` is set to where it was fetched.")},

        # ---- cases -------------------------------------------------------------------
        "/cases": {"get": operation(
            "The inbox: cases of the caller's teams (every team for supervisors)", "cases",
            params=[enum_query("status", case.STATUSES, "Cases in this status.", default="open"),
                    enum_query("order", case.INBOX_ORDERS, "newest first; priority or due: most urgent first.",
                               default="newest"),
                    enum_query("sla", case.SLA_FILTERS, "Only cases whose SLA clock is in this state."),
                    query("team", "Only this team (one of the caller's).",
                          {"type": "string", "minLength": 1, "maxLength": agent.MAX_TEAM_NAME}),
                    query("assignee", "`me`, `none` (nobody has it) or an agent id.",
                          {"type": "string", "minLength": 1, "maxLength": limits.MAX_ID_LENGTH}),
                    enum_query("priority", case.PRIORITIES, "Only this priority."),
                    query("category", "Only this category (complaint, question, ...).",
                          {"type": "string", "minLength": 1, "maxLength": 64}),
                    query("platform", "Only this platform (x, facebook, instagram, messenger, whatsapp).",
                          {"type": "string", "minLength": 1, "maxLength": 32}),
                    query("lang", "Only this language (en, ja, ...).", {"type": "string", "minLength": 2, "maxLength": 12}),
                    query("tag", "Only cases with this tag.", {"type": "string", "minLength": 1, "maxLength": 40}),
                    enum_query("escalated", ("true", "false"), "Only escalated (or not escalated) cases."),
                    *paging(25, inbox.MAX_LIMIT)],
            responses={200: ok(page_of("cases", ref("Case")))},
            description="Filters combine with status, order and sla; pages are full until the listing ends. Other "
                        "query parameters are a 400. Finance users get 403; a team the caller is not in is a 403.")},
        "/cases/{case_id}": {
            "get": operation("A case with a page of its history", "cases",
                             params=[case_id, *paging(inbox.HISTORY_DEFAULT_LIMIT, inbox.HISTORY_MAX_LIMIT)],
                             responses={200: ok(ref("CaseDetail"))}, errors=[404]),
            # PATCH, and POST /cases/{case_id}/replies: with the workspace routes below.
        },
        "/cases/{case_id}/replies/{reply_id}/retry": {"post": operation(
            "Send a failed or unknown reply again", "cases", errors=[404, 409],
            params=[case_id, path_id("reply_id", "A reply id (`r_…`).")],
            responses={202: ok(ref("Reply"), "Queued again.")})},

        # ---- me, notifications, queues -----------------------------------------------
        "/me": {"get": operation("The caller's agent profile and load", "people", responses={
            200: ok({**ref("Agent"), "description": "With `free_slots` and `takes_new_cases`."})})},
        "/me/presence": {"put": operation(
            "Set the caller's presence", "people",
            request=body(obj({"presence": {"type": "string", "enum": list(agent.PRESENCES)}},
                             required=["presence"], closed=True)),
            responses={200: ok(OPEN)})},
        "/notifications": {"get": operation(
            "The caller's notifications, newest first", "people",
            params=[enum_query("unread", ("true", "false"), "Only unread ones.", default="false"),
                    *paging(notify.DEFAULT_LIMIT, notify.MAX_LIMIT)],
            responses={200: ok(page_of("notifications", ref("Notification")))})},
        "/notifications/read": {"post": operation(
            "Mark notifications of the caller's feed read", "people",
            request=body(obj({"ids": {"type": "array", "minItems": 1, "maxItems": notify.MAX_MARK_READ,
                                      "items": text(notify.MAX_ID_LENGTH, min_length=1)}},
                             required=["ids"], closed=True)),
            responses={200: ok(OPEN, "Which were read and which the caller's feed does not hold.")})},
        "/teams/{team}/waiting": {"get": operation(
            "A team's unassigned queue, most urgent first", "people", description=supervisor,
            params=[team, *paging(workload.QUEUE_DEFAULT_LIMIT, workload.QUEUE_MAX_LIMIT)],
            responses={200: ok(page_of("cases", ref("Case")))})},

        # ---- admin ---------------------------------------------------------------------
        "/admin/agents/{agent_id}": {"put": operation(
            "Create or change an agent", "admin", description=supervisor,
            params=[path_id("agent_id", "The agent's sign-in name (Cognito username), without '#'.")],
            request=body(obj({
                "name": text(agent.MAX_NAME, min_length=1), "teams": team_names,
                "capacity": whole(1, agent.MAX_CAPACITY), "available": {"type": "boolean"},
                "role": {"type": "string", "enum": list(agent.ROLES)},
            }, description="Fields left out keep their value (a new agent needs `teams`).")),
            responses={200: ok(ref("Agent"))})},
        "/admin/triage-rules": {
            "get": operation("The triage rules in force", "admin", description=supervisor,
                             responses={200: ok(OPEN)}),
            "put": operation("Replace the triage rules (validated whole; nothing saved on a 400)", "admin",
                             description=supervisor, request=body(OPEN, "A rule document as GET shows it."),
                             responses={201: ok(OPEN, "Saved as a new version.")}),
        },
        "/admin/triage-rules/versions": {"get": operation(
            "Saved versions of the triage rules", "admin", description=supervisor,
            responses={200: ok(obj({"versions": {"type": "array", "items": OPEN}}, required=["versions"]))})},
        "/sources": {"get": operation("Where mentions come from, with their status", "admin", responses={
            200: ok(obj({"sources": {"type": "array", "items": ref("Source")}}, required=["sources"]))})},
        "/admin/sources": {"put": operation(
            "Create or change a source", "admin", description=supervisor,
            request=body(obj({
                "kind": {"type": "string", "enum": sorted(source.KINDS)},
                "account_id": text(source.MAX_ACCOUNT_ID, min_length=1),
                "enabled": {"type": "boolean"}, "handle": text(source.MAX_HANDLE),
                "page_id": text(source.MAX_ACCOUNT_ID, "instagram_dm only: the linked Facebook Page."),
                "terms": {"type": "array", "maxItems": source.MAX_TERMS, "items": text(source.MAX_TERM_LENGTH),
                          "description": "x_search only."},
            }, required=["kind", "account_id"])),
            responses={200: ok(ref("Source"), "Changed."), 201: ok(ref("Source"), "Created.")})},
        "/admin/csat": {
            "get": operation("CSAT survey settings", "admin", description=supervisor, responses={200: ok(OPEN)}),
            "put": operation("Replace the CSAT survey settings", "admin", description=supervisor, responses={
                200: ok(OPEN)}, request=body(obj({
                    "enabled": {"type": "boolean"},
                    "delay_minutes": whole(0, csat.MAX_DELAY_MINUTES),
                    "answer_window_hours": whole(1, csat.MAX_ANSWER_WINDOW_HOURS),
                    "whatsapp_template": {"type": ["string", "null"], "minLength": 1,
                                          "maxLength": csat.MAX_TEMPLATE_NAME, "pattern": "^[a-z0-9_]+$",
                                          "description": "The name of an approved WhatsApp template, or null."},
                }, closed=True))),
        },
        "/admin/qa/rubric": {
            "get": operation("The QA rubric", "qa", description=supervisor, responses={200: ok(OPEN)}),
            "put": operation("Replace the QA rubric", "qa", description=supervisor, responses=saved_200_201,
                             request=body(obj({"criteria": {
                                 "type": "array", "minItems": 1, "maxItems": qa.MAX_CRITERIA,
                                 "items": obj({"key": text(64, min_length=1), "label": text(qa.MAX_LABEL),
                                               "weight": whole(1, qa.MAX_WEIGHT), "points": whole(1, qa.MAX_POINTS),
                                               "description": text(qa.MAX_DESCRIPTION)},
                                              required=["key"], closed=True)}},
                                 required=["criteria"], closed=True))),
        },
        "/admin/qa/sampling": {
            "get": operation("The QA sampling settings", "qa", description=supervisor, responses={200: ok(OPEN)}),
            "put": operation("Replace the QA sampling settings", "qa", description=supervisor,
                             responses=saved_200_201, request=body(obj({
                                 "base_rate": {"type": "number", "minimum": 0, "maximum": 1},
                                 "new_agent_rate": {"type": "number", "minimum": 0, "maximum": 1},
                                 "low_csat_rate": {"type": "number", "minimum": 0, "maximum": 1},
                                 "new_agent_days": whole(0, 365), "low_csat_max_score": whole(0, 5),
                                 "min_per_agent": whole(0, 100), "max_per_agent": whole(1, 500),
                             }, closed=True))),
        },
        "/qa/queue": {"get": operation(
            "The week's sample of sent replies to review", "qa", description=supervisor,
            params=[week, query("agent", "Only this agent's replies."),
                    *paging(qa_service.QUEUE_DEFAULT_LIMIT, qa_service.QUEUE_MAX_LIMIT)],
            responses={200: ok(page_of("items", OPEN))})},
        "/qa/reviews": {
            "get": operation("The week's reviews", "qa", description=supervisor,
                             params=[week, query("agent", "Only this agent's reviews."),
                                     *paging(qa_service.REVIEWS_DEFAULT_LIMIT, qa_service.REVIEWS_MAX_LIMIT)],
                             responses={200: ok(page_of("reviews", OPEN))}),
            "post": operation(
                "Review one sent reply against the rubric (once)", "qa", description=supervisor, errors=[404, 409],
                request=body(obj({
                    "case_id": text(limits.MAX_ID_LENGTH, min_length=1),
                    "reply_id": text(limits.MAX_ID_LENGTH, min_length=1),
                    "scores": {"type": "object", "maxProperties": qa.MAX_CRITERIA,
                               "additionalProperties": {"type": ["integer", "null"], "minimum": 0,
                                                        "maximum": qa.MAX_POINTS},
                               "description": "Every criterion of the rubric: points, or null when it does not apply."},
                    "comment": text(qa.MAX_COMMENT),
                    "comments": {"type": "object", "maxProperties": qa.MAX_CRITERIA,
                                 "additionalProperties": text(qa.MAX_COMMENT)},
                }, required=["case_id", "reply_id", "scores"], closed=True)),
                responses={201: ok(OPEN, "The review as stored.")}),
        },
        "/admin/sla": {
            "get": operation("The SLA policy (null until one is saved)", "service levels", description=supervisor,
                             responses={200: ok(obj({"policy": {"type": ["object", "null"]}}, required=["policy"]))}),
            "put": operation(
                "Replace the SLA policy", "service levels", description=supervisor, responses=saved_200_201,
                request=body(obj({
                    "business_hours": {"type": "boolean"},
                    "warning_ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                    "default": {"type": "object", "description": "Targets per priority, in minutes "
                                f"(at most {sla.MAX_TARGET_MINUTES})."},
                    "overrides": {"type": "array", "maxItems": sla.MAX_OVERRIDES, "items": OPEN},
                    "actions": {"type": "object", "description": "Per level (warning, breach): what to do."},
                }, required=["default"], closed=True))),
        },
        "/admin/teams/{team}/hours": {
            "get": operation("A team's business hours (null: always open)", "service levels", params=[team],
                             description=supervisor, responses={200: ok(
                                 obj({"team": {"type": "string"}, "calendar": {"type": ["object", "null"]},
                                      "always_open": {"type": "boolean"}}, required=["team", "calendar"]))}),
            "put": operation(
                "Replace a team's business hours", "service levels", params=[team], description=supervisor,
                responses=saved_200_201, request=body(obj({
                    "time_zone": text(hours.MAX_TIME_ZONE_CHARS, "An IANA zone such as Asia/Tokyo.", min_length=1),
                    "weekly": {"type": "object", "properties": {d: shifts for d in hours.WEEKDAYS},
                               "additionalProperties": False},
                    "holidays": {"type": "array", "maxItems": hours.MAX_HOLIDAYS,
                                 "items": DATE},
                    "exceptions": {"type": "array", "maxItems": hours.MAX_EXCEPTIONS,
                                   "items": obj({"date": DATE, "hours": shifts},
                                                required=["date", "hours"])},
                }, required=["time_zone", "weekly"], closed=True))),
            "delete": operation("Remove a team's business hours (always open again)", "service levels",
                                params=[team], description=supervisor, responses={200: ok(OPEN)}),
        },
        "/admin/teams/{team}/away": {
            "get": operation("A team's away message settings, with a preview", "service levels", params=[team],
                             description=supervisor, responses={200: ok(OPEN)}),
            "put": operation(
                "Replace a team's away message settings", "service levels", params=[team], description=supervisor,
                responses={200: ok(OPEN)}, request=body(obj({
                    "enabled": {"type": "boolean"}, "when": {"type": "string", "enum": list(away_rules.WHEN)},
                    "busy_threshold_minutes": whole(away_rules.MIN_BUSY_THRESHOLD_MINUTES,
                                                    away_rules.MAX_BUSY_THRESHOLD_MINUTES),
                    "period_hours": whole(away_rules.MIN_PERIOD_HOURS, away_rules.MAX_PERIOD_HOURS),
                    "templates": templates, "busy_templates": templates,
                }, closed=True))),
        },

        # ---- reports -------------------------------------------------------------------
        "/reports/kpis": {"get": operation(
            "KPIs per day or dimension (JSON, or CSV with format=csv)", "reports",
            params=[day_query("from", "First day (YYYY-MM-DD).", required=True),
                    day_query("to", f"Last day (YYYY-MM-DD); at most {kpi.MAX_REPORT_DAYS} days.", required=True),
                    enum_query("group_by", kpi.GROUP_BYS, "Rows per ...", default="day"),
                    enum_query("format", kpi.REPORT_FORMATS, "json or csv.", default="json")],
            responses={200: csv_or_json(OPEN, "The report; agents see their own row.")})},
        "/reports/costs": {"get": operation(
            "What the stack cost (finance and supervisors)", "reports",
            params=[day_query("from", "First day (default: the 1st of `to`'s month)."),
                    day_query("to", f"Last day (default: today); at most {costs.MAX_DAYS} days."),
                    enum_query("group_by", costs.GROUPS, "Rows per ...", default="day"),
                    enum_query("format", costs.FORMATS, "json or csv.", default="json")],
            description="Other query parameters are a 400. 503 when the region's prices are unknown.",
            responses={200: csv_or_json(OPEN, "The report.")})},

        # ---- privacy -------------------------------------------------------------------
        "/admin/customers/{customer_key}/export": {"get": operation(
            "Everything held about a customer, in pages", "privacy", description=supervisor, errors=[404],
            params=[customer_key, query("also", f"More identities of the same person, comma-separated "
                                                f"(at most {privacy.MAX_IDENTITIES} in all)."),
                    query("cursor", "The `next_cursor` of the previous page.",
                          {"type": "string", "minLength": 1, "maxLength": limits.MAX_CURSOR_LENGTH})],
            responses={200: ok(obj({"customer_keys": {"type": "array", "items": {"type": "string"}},
                                    "next_cursor": NULLABLE_STRING}, required=["customer_keys", "next_cursor"]))})},
        "/admin/customers/{customer_key}/erase": {"post": operation(
            "Erase everything held about a customer", "privacy", description=supervisor, errors=[404],
            params=[customer_key],
            request=body(obj({"also": {"type": "array", "maxItems": privacy.MAX_IDENTITIES - 1,
                                       "items": text(limits.MAX_ID_LENGTH, min_length=1)}}, closed=True),
                         "Optional: more identities of the same person.", required=False),
            responses={200: ok(OPEN, "Erased."), 202: ok(OPEN, "Partly erased: send the same request again.")})},

        # ---- webhooks ------------------------------------------------------------------
        "/webhooks/meta": {
            "get": operation(
                "Meta's subscription handshake", "webhooks", auth=False,
                params=[query("hub.mode", "subscribe"), query("hub.verify_token", "The stack's verify token."),
                        query("hub.challenge", "Echoed back on success.")],
                responses={200: {"description": "The challenge, as text.",
                                 "content": {"text/plain": {"schema": {"type": "string"}}}},
                           403: error(403, "Wrong verify token or mode.")}),
            "post": operation(
                "Meta's signed deliveries", "webhooks", auth=False, errors=[400, 401, 503],
                params=[{"name": "X-Hub-Signature-256", "in": "header", "required": False,
                         "description": "sha256=<HMAC of the raw body with the app secret>; without it: 401.",
                         "schema": {"type": "string", "maxLength": 100}}],
                request=body(OPEN, "A Meta webhook delivery."),
                responses={200: ok(OPEN, "Counts of what was enqueued and skipped.")}),
        },
    }


@functools.lru_cache(maxsize=1)
def _document() -> Dict[str, Any]:
    paths = _paths()
    for path, methods in _workspace_paths().items():
        paths.setdefault(path, {}).update(methods)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "socialcare agent API",
            "version": "1",
            "description": __doc__.split("\n\n", 1)[1] if __doc__ else "",
        },
        "security": [{"cognito": []}],
        "tags": [{"name": name} for name in sorted({op["tags"][0] for methods in paths.values()
                                                    for op in methods.values()})],
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {"cognito": {
                "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "A Cognito user pool ID or access token of a registered agent (RS256, checked in the "
                               "function: issuer, audience, expiry). `make demo` prints one.",
            }},
            "schemas": _schemas(),
        },
    }


# "module.NAME" of every limit _const did not find (tests/test_openapi.py wants none).
FALLBACKS: List[str] = []


def _const(module: str, name: str, default: Any) -> Any:
    """A limit from a module of a newer area, or ``default`` when it is not there (yet): the document is
    served whatever that module looks like today, and the test shows when the two disagree."""
    import importlib

    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        FALLBACKS.append(f"{module}.{name}")
        return default


def _workspace_paths() -> Dict[str, Dict[str, Schema]]:  # one table of every route
    """Issue 12's workspace (customers, notes and hand-offs, templates, brand voice, media, reply windows)
    and issue 14's triage review, plus the web inbox's page."""
    from chalicelib.domain import agent, case

    limits = _limits()
    case_id = path_id("case_id", "A case id as the API issued it (`c_…`).")
    customer_id = path_id("customer_id", "A customer profile id (`cu_` and 16 hex digits).")
    template_id = path_id("template_id", "A template id: 1 to 64 letters, digits, '-' or '_'.",
                          max_length=_const("chalicelib.domain.templates", "MAX_TEMPLATE_ID", 64))
    mention_id = path_id("mention_id", "A mention id (`<platform>:<platform id>`).")
    supervisor = "Supervisors only (403 otherwise)."
    categories = list(_const("chalicelib.domain.inbox_filter", "CATEGORIES", ()))
    priorities = list(case.PRIORITIES)
    platforms = list(_const("chalicelib.domain.inbox_filter", "PLATFORMS", ("x", "facebook", "instagram",
                                                                          "messenger", "whatsapp")))
    sentiments = ["negative", "neutral", "positive"]
    tag_schema = {"type": "string", "minLength": 1, "maxLength": 40, "pattern": "^[a-z0-9][a-z0-9_:\\-]{0,39}$"}
    max_case_tags = _const("chalicelib.services.case_work", "MAX_TAGS", 20)
    handoff_note = text(_const("chalicelib.services.case_work", "MAX_HANDOFF_NOTE", 1000),
                        "Recorded in the case's history with the hand-off.")
    override = {"type": "boolean", "description": "Hand it over even to someone away, offline or at capacity "
                                                  "(supervisors; or the agent claiming for themselves)."}
    handed = ok(ref("Case"), "The case after the hand-off, with `changed` (false when nothing had to change).")
    customer_tags = {"type": "array", "maxItems": _const("chalicelib.domain.customer", "MAX_TAGS", 20),
                     "items": text(_const("chalicelib.domain.customer", "MAX_TAG_CHARS", 40), min_length=1)}
    langs = ["en", "ja"]
    template_text = text(_const("chalicelib.domain.templates", "MAX_BODY_CHARS", 2000), min_length=1)
    variables = {"type": "object", "maxProperties": 20,
                 "additionalProperties": text(_const("chalicelib.domain.templates", "MAX_VALUE_CHARS", 200)),
                 "description": "Values for the template's variables (`customer.name`, ...), overriding the case's."}
    whatsapp_template = obj({
        "name": {"type": "string", "minLength": 1, "maxLength": 512, "pattern": "^[a-z0-9_]+$"},
        "language": text(16, "en, ja, en_US ...", min_length=2),
        "variables": {"type": "array", "maxItems": _const("chalicelib.domain.windows", "MAX_TEMPLATE_VARIABLES", 20),
                      "items": text(_const("chalicelib.domain.windows", "MAX_TEMPLATE_VARIABLE_CHARS", 1024),
                                    min_length=1)},
    }, required=["name", "language"], closed=True, description="An approved WhatsApp template "
                                                              "(GET /cases/{case_id}/reply-options lists them).")
    attachment = obj({
        "url": text(_const("chalicelib.domain.media", "MAX_URL_CHARS", 2048), "An https:// JPEG or PNG."),
        "media_id": text(_const("chalicelib.domain.media", "MAX_MEDIA_ID_CHARS", 128), "A file of this case."),
        "mime": {"type": "string", "enum": ["image/jpeg", "image/png"]},
    }, closed=True, description="One image: exactly one of `url` or `media_id`.")
    brand_voice_section: Schema = {"type": "object", "description": "enabled, severity (block|warn), and the "
                                                                    "section's own settings."}

    return {
        # ---- cases: the reply path's new fields, notes, hand-offs ----------------------
        "/cases/{case_id}/replies": {"post": operation(
            "Reply to the customer (stored and queued; sent once)", "cases", params=[case_id], errors=[404, 409],
            request=body(obj({
                "text": text(limits.MAX_BODY_BYTES, "The reply; the platform's own length limit applies "
                                                    "(X 280 weighted, Facebook 8000, Instagram 2200, Messenger "
                                                    "2000, WhatsApp 4096; X DMs 10000). Or `template_id`.",
                             min_length=1),
                "mode": {"type": "string", "enum": ["public", "private"], "default": "public"},
                "idempotency_key": text(128, "The same key names the same reply.", min_length=1),
                "template_id": text(_const("chalicelib.domain.templates", "MAX_TEMPLATE_ID", 64),
                                    "Send a template of the case's team, rendered for this case.", min_length=1),
                "lang": {"type": "string", "enum": langs}, "variables": variables,
                "override_reason": text(_const("chalicelib.domain.brand_voice", "MAX_OVERRIDE_REASON", 500),
                                        "Send despite a blocking brand-voice finding; the reason is recorded.",
                                        min_length=1),
                "attachment": attachment,
                "tag": {"type": "string", "enum": ["HUMAN_AGENT"],
                        "description": "Messenger/Instagram DMs between 24 hours and 7 days after the customer."},
                "whatsapp_template": whatsapp_template,
            })),
            responses={202: ok(ref("Reply"), "Stored and queued for sending.")},
            description="409 on a blocking brand-voice finding (the message names it; resend with "
                        "`override_reason`), or when the platform's window is closed (GET "
                        "/cases/{case_id}/reply-options says what is possible). 503 when the reply is stored but "
                        "could not be queued: send the same request again.")},
        "/cases/{case_id}": {"patch": operation(
            "Edit a case: status, priority, category, tags, escalated", "cases", params=[case_id], errors=[404, 409],
            request=body(obj({
                "status": {"type": "string", "enum": list(case.STATUSES)},
                "priority": {"type": "string", "enum": priorities},
                "category": {"type": "string", "enum": categories} if categories else {"type": "string",
                                                                                        "maxLength": 64},
                "tags": {"type": "array", "maxItems": max_case_tags, "items": tag_schema},
                "add_tags": {"type": "array", "maxItems": max_case_tags, "items": tag_schema},
                "remove_tags": {"type": "array", "maxItems": max_case_tags, "items": tag_schema},
                "escalated": {"type": "boolean"},
            }, closed=True, description="One or more fields; `tags` (the whole list) or `add_tags`/`remove_tags`. "
                                        "Edits of category, tags and priority are kept as triage feedback.")),
            responses={200: ok(ref("Case"), "The case as changed, with `changes` (before/after per field).")})},
        "/cases/{case_id}/notes": {"post": operation(
            "Add an internal note (never sent); @agent_id notifies colleagues", "cases", params=[case_id],
            errors=[404],
            request=body(obj({"text": text(_const("chalicelib.services.case_work", "MAX_NOTE", 4000), min_length=1)},
                             required=["text"], closed=True)),
            responses={201: ok(obj({"note": OPEN, "notified": {"type": "array", "items": {"type": "string"}}},
                                   required=["note"]), "The note, and who was notified.")})},
        "/cases/{case_id}/claim": {"post": operation(
            "Take an active case nobody has", "cases", params=[case_id], errors=[404, 409],
            request=body(obj({"note": handoff_note, "override": override}, closed=True), required=False),
            responses={200: handed})},
        "/cases/{case_id}/assign": {"post": operation(
            "Assign or transfer a case to an agent, a team, or both", "cases", params=[case_id], errors=[404, 409],
            request=body(obj({"agent_id": text(limits.MAX_ID_LENGTH, min_length=1),
                              "team": text(agent.MAX_TEAM_NAME, min_length=1),
                              "note": handoff_note, "override": override}, closed=True,
                             description="At least one of `agent_id` and `team`.")),
            responses={200: handed})},
        "/cases/{case_id}/unassign": {"post": operation(
            "Put a case back in its team's queue", "cases", params=[case_id], errors=[404, 409],
            request=body(obj({"note": handoff_note}, closed=True), required=False),
            responses={200: handed})},

        "/teams/{team}/agents": {"get": operation(
            "Who is in a team: presence and load (not paged: at most "
            f"{_const('chalicelib.services.workload', 'MAX_ROSTER', 500)} agents)", "people", description=supervisor,
            params=[path_id("team", "A team name: 1 to 64 printable characters, no '#'.",
                            max_length=agent.MAX_TEAM_NAME)],
            responses={200: ok(obj({"team": {"type": "string"}, "agents": {"type": "array", "items": obj({
                "agent_id": {"type": "string"}, "presence": {"type": "string", "enum": list(agent.PRESENCES)},
                "open_cases": {"type": "integer"}, "free_slots": {"type": "integer"}},
                required=["agent_id", "presence"])}}, required=["team", "agents"]))})},

        # ---- media and reply windows ---------------------------------------------------
        "/cases/{case_id}/media/{media_id}": {"get": operation(
            "A short-lived link to one of the case's files", "cases", errors=[404],
            params=[case_id, path_id("media_id", "A file id as GET /cases/{case_id} lists it (`md_…`).")],
            responses={200: ok(obj({"url": {"type": "string"}, "expires_at": NULLABLE_STRING}, required=["url"]))})},
        "/cases/{case_id}/reply-options": {"get": operation(
            "What may be sent now, per mode, and until when (platform windows, tags, WhatsApp templates)", "cases",
            params=[case_id], errors=[404], responses={200: ok(obj({"case_id": {"type": "string"}},
                                                                   required=["case_id"]))})},

        # ---- templates and brand voice -------------------------------------------------
        "/templates": {"get": operation(
            "Templates the caller may use (their teams')", "templates",
            params=[query("team", "Only this team's (one of the caller's).",
                          {"type": "string", "minLength": 1, "maxLength": agent.MAX_TEAM_NAME}),
                    enum_query("lang", langs, "Only templates written in this language."),
                    *paging(_const("chalicelib.services.templates", "DEFAULT_PAGE", 50),
                            _const("chalicelib.services.templates", "MAX_PAGE", 100))],
            responses={200: ok(page_of("templates", OPEN))},
            description="Other query parameters are a 400.")},
        "/admin/templates": {"get": operation(
            "Every team's templates", "templates", description=supervisor,
            params=[query("team", "Only this team's.", {"type": "string", "minLength": 1,
                                                        "maxLength": agent.MAX_TEAM_NAME}),
                    enum_query("lang", langs, "Only templates written in this language."),
                    *paging(_const("chalicelib.services.templates", "DEFAULT_PAGE", 50),
                            _const("chalicelib.services.templates", "MAX_PAGE", 100))],
            responses={200: ok(page_of("templates", OPEN))})},
        "/admin/templates/{template_id}": {
            "get": operation("A template", "templates", params=[template_id], errors=[404],
                             responses={200: ok(OPEN)}),
            "put": operation(
                "Create or replace a template", "templates", params=[template_id], description=supervisor,
                request=body(obj({
                    "team": text(agent.MAX_TEAM_NAME, min_length=1),
                    "name": text(_const("chalicelib.domain.templates", "MAX_NAME_CHARS", 100), min_length=1),
                    "bodies": {"type": "object", "minProperties": 1,
                               "properties": {lang: template_text for lang in langs}, "additionalProperties": False,
                               "description": "Per language; variables such as {customer.name|there} "
                                              "(with a fallback after '|')."},
                    "tags": {"type": "array", "maxItems": _const("chalicelib.domain.templates", "MAX_TAGS", 20),
                             "items": text(_const("chalicelib.domain.templates", "MAX_TAG_CHARS", 40), min_length=1)},
                }, required=["team", "name", "bodies"], closed=True)),
                responses={200: ok(OPEN, "Replaced."), 201: ok(OPEN, "Created.")}),
            "delete": operation("Delete a template", "templates", params=[template_id], description=supervisor,
                                errors=[404], responses={200: ok(OPEN)}),
        },
        "/admin/brand-voice": {
            "get": operation("The brand-voice rules in force", "templates", description=supervisor,
                             responses={200: ok(OPEN)}),
            "put": operation(
                "Replace the brand-voice rules (sections left out take their defaults)", "templates",
                description=supervisor,
                request=body(obj({
                    "banned": {"type": "array", "maxItems": _const("chalicelib.domain.brand_voice", "MAX_BANNED", 500),
                               "items": OPEN, "description": "Words and phrases, each with a severity and a note."},
                    **{section: brand_voice_section
                       for section in ("apology", "signature", "emoji", "personal_data", "length")},
                }, closed=True)),
                responses={200: ok(OPEN, "Replaced."), 201: ok(OPEN, "Saved for the first time.")}),
        },
        "/cases/{case_id}/replies/check": {"post": operation(
            "Check a reply against the brand-voice rules (nothing is stored or sent)", "templates",
            params=[case_id], errors=[404],
            request=body(obj({
                "text": text(20_000, min_length=1),
                "template_id": text(_const("chalicelib.domain.templates", "MAX_TEMPLATE_ID", 64), min_length=1),
                "lang": {"type": "string", "enum": langs}, "variables": variables,
                "mode": {"type": "string", "enum": ["public", "private"]},
            }, closed=True, description="`text`, or `template_id` to check the template as it would be sent.")),
            responses={200: ok(obj({"findings": {"type": "array", "items": OPEN}, "ok": {"type": "boolean"}},
                                   required=["findings", "ok"]))})},

        # ---- customers ------------------------------------------------------------------
        "/customers": {"get": operation(
            "Find customers by handle, or by platform and platform id", "customers",
            params=[query("handle", "A handle, without '@'.", {"type": "string", "minLength": 1, "maxLength": 200}),
                    enum_query("platform", platforms, "Narrows `handle`; with `platform_id`, names one identity."),
                    query("platform_id", "The platform's user id.",
                          {"type": "string", "minLength": 1, "maxLength": limits.MAX_ID_LENGTH})],
            description="Give `handle` (and optionally `platform`), or `platform` and `platform_id` (400 otherwise). "
                        "At most 10 customers.",
            responses={200: ok(obj({"customers": {"type": "array", "items": OPEN}}, required=["customers"]))})},
        "/customers/{customer_id}": {
            "get": operation(
                "A customer's profile: identities, tags, notes, fields, audit, and their cases (paged)", "customers",
                params=[customer_id, *paging(_const("chalicelib.services.customers", "CASES_DEFAULT_LIMIT", 10),
                                             _const("chalicelib.services.customers", "CASES_MAX_LIMIT", 25))],
                errors=[404], responses={200: ok(ref("Customer"))}),
            "patch": operation(
                "Edit a customer's tags, notes and fields", "customers", params=[customer_id], errors=[404, 409],
                request=body(obj({
                    "tags": customer_tags,
                    "notes": {"type": ["string", "null"],
                              "maxLength": _const("chalicelib.domain.customer", "MAX_NOTES_CHARS", 4000)},
                    "fields": {"type": "object", "maxProperties": _const("chalicelib.domain.customer", "MAX_FIELDS", 30),
                               "description": "Fields a supervisor defined (GET /admin/customer-fields); null removes "
                                              "one."},
                }, closed=True, description="One or more of tags (the whole list), notes, fields.")),
                responses={200: ok(ref("Customer"))}),
        },
        "/customers/{customer_id}/merge": {"post": operation(
            "Link another profile's identities to this one (audited; undo with unmerge)", "customers",
            params=[customer_id], errors=[404, 409],
            request=body(obj({"customer_id": {"type": "string", "minLength": 1, "maxLength": 19,
                                              "pattern": "^cu_[0-9a-f]{16}$"}}, required=["customer_id"],
                             closed=True)),
            responses={200: ok(ref("Customer"))})},
        "/customers/{customer_id}/unmerge": {"post": operation(
            "Send one linked identity back to a profile of its own (audited)", "customers",
            params=[customer_id], errors=[404, 409],
            request=body({"oneOf": [
                obj({"customer_key": text(_const("chalicelib.domain.customer", "MAX_KEY_CHARS", 141), min_length=3)},
                    required=["customer_key"], closed=True),
                obj({"platform": {"type": "string", "enum": platforms},
                     "platform_id": text(limits.MAX_ID_LENGTH, min_length=1)},
                    required=["platform", "platform_id"], closed=True)]}),
            responses={200: ok(ref("Customer"))})},
        "/admin/customer-fields": {
            "get": operation("The customer fields supervisors defined", "customers",
                             responses={200: ok(obj({"fields": {"type": "array", "items": OPEN}},
                                                    required=["fields"]))}),
            "put": operation(
                "Replace the customer field definitions", "customers", description=supervisor,
                request=body(obj({"fields": {
                    "type": "array", "maxItems": _const("chalicelib.domain.customer", "MAX_FIELDS", 30),
                    "items": obj({
                        "name": {"type": "string", "minLength": 1, "maxLength": 40, "pattern": "^[a-z][a-z0-9_]*$"},
                        "label": text(_const("chalicelib.domain.customer", "MAX_FIELD_LABEL_CHARS", 80), min_length=1),
                        "type": {"type": "string", "enum": list(_const("chalicelib.domain.customer", "FIELD_TYPES",
                                                                       ("string", "number")))},
                        "max_length": whole(1, _const("chalicelib.domain.customer", "MAX_FIELD_LENGTH", 1000)),
                    }, required=["name"], closed=True)}}, required=["fields"], closed=True)),
                responses={200: ok(obj({"fields": {"type": "array", "items": OPEN}}, required=["fields"]))}),
        },

        # ---- triage review (issue 14) ----------------------------------------------------
        "/mentions": {"get": operation(
            "Mentions triage left without a case, newest first", "triage",
            params=[query("case", "Must be `false`.", {"type": "string", "enum": ["false"]}, required=True),
                    day_query("day", "Only this day (UTC); default: from today back over the retention."),
                    enum_query("order", ("newest", "negative"), "newest first, or (with `day`) most negative first.",
                               default="newest"),
                    query("lang", "Only this language.", {"type": "string", "minLength": 1, "maxLength": 32}),
                    query("platform", "Only this platform.", {"type": "string", "minLength": 1, "maxLength": 32}),
                    enum_query("sentiment", sentiments, "Only this sentiment."),
                    *([enum_query("category", categories, "Only this category.")] if categories else []),
                    *paging(_const("chalicelib.services.triage_review", "DEFAULT_LIMIT", 25),
                            _const("chalicelib.services.triage_review", "MAX_LIMIT", 100))],
            responses={200: ok(page_of("mentions", OPEN))})},
        "/mentions/{mention_id}/promote": {"post": operation(
            "Open a case from a no-case mention", "triage", params=[mention_id], errors=[404, 409],
            request=body(obj({
                "reason": text(_const("chalicelib.services.triage_review", "MAX_REASON", 500)),
                "category": {"type": "string", "enum": categories} if categories else {"type": "string",
                                                                                        "maxLength": 64},
                "priority": {"type": "string", "enum": priorities},
                "sentiment": {"type": "string", "enum": sentiments},
            }, closed=True), required=False),
            responses={202: ok(OPEN, "Queued: the case opens through the triaged queue.")})},
        "/mentions/{mention_id}/confirm": {"post": operation(
            "Confirm a mention needed no case (off the list)", "triage", params=[mention_id], errors=[404, 409],
            responses={200: ok(OPEN)})},
        "/reports/triage-digest": {"get": operation(
            "A day's negative no-case mentions", "triage", description=supervisor,
            params=[day_query("day", "The day (UTC); default: yesterday.")],
            responses={200: ok(obj({"day": {"type": "string"}, "threshold": {"type": "integer"},
                                    "over_threshold": {"type": "object", "additionalProperties": {"type": "integer"},
                                                       "description": "Channels with at least `threshold` "
                                                                      "(TRIAGE_DIGEST_THRESHOLD) of them: the daily "
                                                                      "notification names these."}},
                                   required=["day"]))})},
        "/admin/triage-corrections": {"get": operation(
            "The labelled examples agents' corrections made (JSON, or JSON lines)", "triage", description=supervisor,
            params=[day_query("from", "First day."), day_query("to", "Last day."),
                    enum_query("format", ("json", "jsonl"), "json or jsonl.", default="json")],
            responses={200: {"description": "The examples.", "content": {
                JSON: {"schema": obj({"examples": {"type": "array", "items": OPEN}, "count": {"type": "integer"}},
                                     required=["examples", "count"])},
                "application/x-ndjson": {"schema": {"type": "string"}}}}})},
        "/admin/triage-examples": {"post": operation(
            "Upload a labelled file for retraining (JSON lines)", "triage",
            description=supervisor + " One example a line, in the shape the `jsonl` export uses: `text` (at most "
            f"{_const('chalicelib.services.triage_examples', 'MAX_TEXT', 2000):,} characters), `label` (`sentiment`, "
            "`category`, `case`, `priority`, `tags`: at least one), `lang`?, `platform`?; sent as "
            "`application/x-ndjson`, `application/jsonl`, `text/plain` or `application/json`. At most "
            f"{_const('chalicelib.services.triage_examples', 'MAX_LINES', 2000):,} lines and 1 MiB (413). Every line "
            "is checked first: a 400 names the bad lines and nothing is kept. Kept as corrections, so the export "
            "and retraining use them; lines already known add nothing.",
            request={"required": True, "content": {
                media: {"schema": text(_const("chalicelib.services.triage_examples", "MAX_BYTES", 1024 * 1024))}
                for media in ("text/plain", "application/x-ndjson")}},
            responses={201: ok(obj({"accepted": {"type": "integer"}, "already_known": {"type": "integer"}},
                                   required=["accepted", "already_known"]), "Some examples were new."),
                       200: ok(obj({"accepted": {"type": "integer"}, "already_known": {"type": "integer"}},
                                   required=["accepted", "already_known"]), "Every example was known already."),
                       413: error(413, "More than 1 MiB or more lines than allowed; split the file."),
                       415: {"description": "Not sent as JSON lines (the framework's answer).",
                             "content": {JSON: {"schema": ref("FrameworkError")}}}})},
        "/admin/triage-models": {
            "get": operation("Learned triage model versions and the active one", "triage", description=supervisor,
                             responses={200: ok(obj({"versions": {"type": "array", "items": OPEN},
                                                     "active": {"type": "string"}}, required=["versions", "active"]))}),
            "post": operation(
                "Retrain now", "triage", description=supervisor,
                request=body(obj({"activate": {"type": "boolean", "default": True}}, closed=True), required=False),
                responses={201: ok(OPEN, "The version trained (or why it was skipped).")}),
        },
        "/admin/triage-models/{version}/activate": {"post": operation(
            "Switch to a model version, or roll back (`baseline`: no learned version)", "triage",
            description=supervisor, errors=[404, 409],
            params=[path_id("version", "A version as GET /admin/triage-models lists it, or `baseline`.")],
            responses={200: ok(OPEN)})},

        # ---- the web inbox (issue 16) ---------------------------------------------------
        "/": {"get": operation(
            "The web inbox page", "web", auth=False,
            responses={200: {"description": "The page; it signs the agent in with Cognito and uses this API.",
                             "content": {"text/html": {"schema": {"type": "string"}}}}})},
        "/assets/{name}": {"get": operation(
            "The web inbox's script, style and icon", "web", auth=False,
            params=[path_id("name", "app.js, app.css or icon.svg.")],
            responses={200: {"description": "The file.", "content": {
                "application/javascript": {"schema": {"type": "string"}}, "text/css": {"schema": {"type": "string"}},
                "image/svg+xml": {"schema": {"type": "string"}}}},
                404: error(404, "No such asset.")})},
    }


def document(base_path: str = "") -> Dict[str, Any]:
    """The document, with ``servers`` pointing where it was fetched from (the stage's base path)."""
    doc = copy.deepcopy(_document())
    doc["servers"] = [{"url": base_path or "/"}]
    return doc


def operations() -> List[Tuple[str, str]]:
    """(METHOD, path) of every documented operation."""
    return sorted((method.upper(), path) for path, methods in _document()["paths"].items() for method in methods)
