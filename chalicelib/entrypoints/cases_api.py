"""Routes agents use all day: their inbox, a case, a status change, a reply."""
from __future__ import annotations

from typing import Mapping

from chalice import Blueprint, Response

from chalicelib.bootstrap import deps
from chalicelib.entrypoints.http import api_errors, current_agent, json_body
from chalicelib.services import inbox, reply

cases_api = Blueprint(__name__)


@cases_api.route("/cases", methods=["GET"])
@api_errors
def list_cases():
    params: Mapping[str, str] = cases_api.current_request.query_params or {}
    return inbox.list_inbox(current_agent(cases_api.current_request), params, deps())


@cases_api.route("/cases/{case_id}", methods=["GET"])
@api_errors
def get_case(case_id):
    params: Mapping[str, str] = cases_api.current_request.query_params or {}
    return inbox.case_detail(current_agent(cases_api.current_request), case_id, deps(), params)


@cases_api.route("/cases/{case_id}", methods=["PATCH"])
@api_errors
def update_case(case_id):
    agent = current_agent(cases_api.current_request)
    return inbox.change_status(agent, case_id, json_body(cases_api.current_request), deps())


@cases_api.route("/cases/{case_id}/replies", methods=["POST"])
@api_errors
def post_reply(case_id):
    agent = current_agent(cases_api.current_request)
    case = inbox.load_case(agent, case_id, deps())
    queued = reply.request_reply(case, json_body(cases_api.current_request), agent_id=agent.agent_id, deps=deps())
    return Response(body=queued, status_code=202)


@cases_api.route("/cases/{case_id}/replies/{reply_id}/retry", methods=["POST"])
@api_errors
def retry_reply(case_id, reply_id):
    agent = current_agent(cases_api.current_request)
    case = inbox.load_case(agent, case_id, deps())
    queued = reply.retry_reply(case, reply_id, agent_id=agent.agent_id, deps=deps())
    return Response(body=queued, status_code=202)
