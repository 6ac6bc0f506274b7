"""Routes agents use all day: their inbox, a case, edits, notes, hand-offs, a reply.

Services are imported inside each handler (cold start: a request loads only what it uses).
"""
from __future__ import annotations

from typing import Any, Mapping

from chalice import Blueprint, Response

from chalicelib.bootstrap import deps
from chalicelib.entrypoints.http import api_errors, current_agent, json_body

cases_api = Blueprint(__name__)


def _optional_body(request: Any) -> Any:
    """The JSON body, or None when the request has none (claim and unassign need none)."""
    raw = request.raw_body
    return json_body(request) if raw else None


@cases_api.route("/cases", methods=["GET"])
@api_errors
def list_cases():
    from chalicelib.services import inbox

    agent = current_agent(cases_api.current_request)
    params: Mapping[str, str] = cases_api.current_request.query_params or {}
    return inbox.list_inbox(agent, params, deps())


@cases_api.route("/cases/{case_id}", methods=["GET"])
@api_errors
def get_case(case_id):
    from chalicelib.services import inbox

    agent = current_agent(cases_api.current_request)
    params: Mapping[str, str] = cases_api.current_request.query_params or {}
    return inbox.case_detail(agent, case_id, deps(), params)


@cases_api.route("/cases/{case_id}", methods=["PATCH"])
@api_errors
def update_case(case_id):
    from chalicelib.services import case_work

    agent = current_agent(cases_api.current_request)
    return case_work.update_case(agent, case_id, json_body(cases_api.current_request), deps())


@cases_api.route("/cases/{case_id}/notes", methods=["POST"])
@api_errors
def add_note(case_id):
    from chalicelib.services import case_work

    agent = current_agent(cases_api.current_request)
    return Response(body=case_work.add_note(agent, case_id, json_body(cases_api.current_request), deps()),
                    status_code=201)


@cases_api.route("/cases/{case_id}/claim", methods=["POST"])
@api_errors
def claim_case(case_id):
    from chalicelib.services import case_work

    agent = current_agent(cases_api.current_request)
    return case_work.claim(agent, case_id, _optional_body(cases_api.current_request), deps())


@cases_api.route("/cases/{case_id}/assign", methods=["POST"])
@api_errors
def assign_case(case_id):
    from chalicelib.services import case_work

    agent = current_agent(cases_api.current_request)
    return case_work.assign(agent, case_id, json_body(cases_api.current_request), deps())


@cases_api.route("/cases/{case_id}/unassign", methods=["POST"])
@api_errors
def unassign_case(case_id):
    from chalicelib.services import case_work

    agent = current_agent(cases_api.current_request)
    return case_work.unassign(agent, case_id, _optional_body(cases_api.current_request), deps())


@cases_api.route("/cases/{case_id}/replies", methods=["POST"])
@api_errors
def post_reply(case_id):
    from chalicelib.services import inbox, reply

    agent = current_agent(cases_api.current_request)
    case = inbox.load_case(agent, case_id, deps())
    queued = reply.request_reply(case, json_body(cases_api.current_request), agent_id=agent.agent_id, deps=deps())
    return Response(body=queued, status_code=202)


@cases_api.route("/cases/{case_id}/replies/{reply_id}/retry", methods=["POST"])
@api_errors
def retry_reply(case_id, reply_id):
    from chalicelib.services import inbox, reply

    agent = current_agent(cases_api.current_request)
    case = inbox.load_case(agent, case_id, deps())
    queued = reply.retry_reply(case, reply_id, agent_id=agent.agent_id, deps=deps())
    return Response(body=queued, status_code=202)
