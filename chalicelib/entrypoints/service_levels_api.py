"""Service levels over HTTP: team calendars, away messages, the SLA policy (supervisors); each person's
notifications and presence; a team's unassigned queue (supervisors).

Each handler parses, calls one service and shapes the answer. Path and query parameters are checked
as ids and text by ``current_agent`` before any store is read; the services hold a team name to its
own, stricter rule (``domain.agent.valid_team_name``: no '#', at most 64 characters).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Mapping, Tuple

from chalice import Blueprint, Response

from chalicelib.bootstrap import deps
from chalicelib.domain.agent import Agent
from chalicelib.entrypoints.http import api_errors, current_agent, json_body
from chalicelib.entrypoints.lazy import lazy_module

if TYPE_CHECKING:
    from chalicelib.services import away, inbox, notify, sla, workload
else:
    away = lazy_module("chalicelib.services.away")
    inbox = lazy_module("chalicelib.services.inbox")
    notify = lazy_module("chalicelib.services.notify")
    sla = lazy_module("chalicelib.services.sla")
    workload = lazy_module("chalicelib.services.workload")

service_levels_api = Blueprint(__name__)


def _agent() -> Agent:
    return current_agent(service_levels_api.current_request)


def _supervisor() -> Agent:
    agent = _agent()
    inbox.require_supervisor(agent)
    return agent


def _params() -> Mapping[str, str]:
    return service_levels_api.current_request.query_params or {}


def _saved(saved: Tuple[Dict[str, Any], bool]) -> Response:
    """The saved document: 201 when there was none before, else 200."""
    document, created = saved
    return Response(body=document, status_code=201 if created else 200)


# ---- business hours (supervisors) --------------------------------------------------

@service_levels_api.route("/admin/teams/{team}/hours", methods=["GET"])
@api_errors
def get_team_hours(team):
    _supervisor()
    return sla.calendar_view(team, deps())


@service_levels_api.route("/admin/teams/{team}/hours", methods=["PUT"])
@api_errors
def put_team_hours(team):
    agent = _supervisor()
    return _saved(sla.save_calendar(agent, team, json_body(service_levels_api.current_request), deps()))


@service_levels_api.route("/admin/teams/{team}/hours", methods=["DELETE"])
@api_errors
def delete_team_hours(team):
    agent = _supervisor()
    return sla.delete_calendar(agent, team, deps())


# ---- away messages (supervisors) ---------------------------------------------------

@service_levels_api.route("/admin/teams/{team}/away", methods=["GET"])
@api_errors
def get_team_away(team):
    _supervisor()
    return away.away_view(team, deps())


@service_levels_api.route("/admin/teams/{team}/away", methods=["PUT"])
@api_errors
def put_team_away(team):
    agent = _supervisor()
    # Always 200: a team without settings of its own shows the defaults, so nothing is "created".
    return away.save_away(agent, team, json_body(service_levels_api.current_request), deps())


# ---- SLA policy (supervisors) ------------------------------------------------------

@service_levels_api.route("/admin/sla", methods=["GET"])
@api_errors
def get_sla_policy():
    _supervisor()
    return sla.policy_view(deps())


@service_levels_api.route("/admin/sla", methods=["PUT"])
@api_errors
def put_sla_policy():
    agent = _supervisor()
    return _saved(sla.save_policy(agent, json_body(service_levels_api.current_request), deps()))


# ---- notifications (everyone: their own feed) --------------------------------------

@service_levels_api.route("/notifications", methods=["GET"])
@api_errors
def list_notifications():
    return notify.list_notifications(_agent(), _params(), deps())


@service_levels_api.route("/notifications/read", methods=["POST"])
@api_errors
def read_notifications():
    agent = _agent()
    return notify.mark_read(agent, json_body(service_levels_api.current_request), deps())


# ---- presence and the waiting queue ------------------------------------------------

@service_levels_api.route("/me", methods=["GET"])
@api_errors
def get_me():
    # Read fresh: the signed-in profile may be 30 s old, and the load and presence change all the time.
    signed_in = _agent()
    agent = deps().settings.get_agent(signed_in.agent_id) or signed_in
    # Load beside the profile: what an agent needs to see why new cases do (or do not) come.
    return {**agent.public_view(), "free_slots": agent.free_slots, "takes_new_cases": agent.has_room}


@service_levels_api.route("/me/presence", methods=["PUT"])
@api_errors
def put_my_presence():
    agent = _agent()
    return workload.set_presence(agent, json_body(service_levels_api.current_request), deps())


@service_levels_api.route("/teams/{team}/agents", methods=["GET"])
@api_errors
def get_team_agents(team):
    return workload.team_roster(_supervisor(), team, deps())


@service_levels_api.route("/teams/{team}/waiting", methods=["GET"])
@api_errors
def get_team_waiting(team):
    agent = _supervisor()
    return workload.waiting_view(agent, team, _params(), deps())
