"""Templates and brand voice over HTTP (issue 12): /admin/templates, /templates, /admin/brand-voice and
POST /cases/{case_id}/replies/check.

Services are imported inside each handler: a function that never serves these routes never loads them.
Sending a reply from a template, and the 409 on a blocking brand-voice finding, happen on
``POST /cases/{case_id}/replies`` (cases_api.py, through services/reply.py).
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Tuple

from chalice import Blueprint, Response

from chalicelib.bootstrap import deps
from chalicelib.entrypoints.http import api_errors, current_agent, json_body

templates_api = Blueprint(__name__)


def _params() -> Mapping[str, str]:
    return templates_api.current_request.query_params or {}


def _saved(result: Tuple[Dict[str, Any], bool]) -> Response:
    view, created = result
    return Response(body=view, status_code=201 if created else 200)


# ---- supervisors -----------------------------------------------------------------------------

@templates_api.route("/admin/templates", methods=["GET"])
@api_errors
def list_all_templates():
    from chalicelib.services import templates

    agent = current_agent(templates_api.current_request)
    return templates.admin_list(agent, _params(), deps())


@templates_api.route("/admin/templates/{template_id}", methods=["GET"])
@api_errors
def get_template(template_id):
    from chalicelib.services import templates

    agent = current_agent(templates_api.current_request)
    return templates.get(agent, template_id, deps())


@templates_api.route("/admin/templates/{template_id}", methods=["PUT"])
@api_errors
def put_template(template_id):
    from chalicelib.services import templates

    agent = current_agent(templates_api.current_request)
    return _saved(templates.save(agent, template_id, json_body(templates_api.current_request), deps()))


@templates_api.route("/admin/templates/{template_id}", methods=["DELETE"])
@api_errors
def delete_template(template_id):
    from chalicelib.services import templates

    agent = current_agent(templates_api.current_request)
    return templates.delete(agent, template_id, deps())


@templates_api.route("/admin/brand-voice", methods=["GET"])
@api_errors
def get_brand_voice():
    from chalicelib.services import brand_voice

    return brand_voice.view(current_agent(templates_api.current_request), deps())


@templates_api.route("/admin/brand-voice", methods=["PUT"])
@api_errors
def put_brand_voice():
    from chalicelib.services import brand_voice

    agent = current_agent(templates_api.current_request)
    return _saved(brand_voice.save(agent, json_body(templates_api.current_request), deps()))


# ---- agents ----------------------------------------------------------------------------------

@templates_api.route("/templates", methods=["GET"])
@api_errors
def list_my_templates():
    from chalicelib.services import templates

    agent = current_agent(templates_api.current_request)
    return templates.agent_list(agent, _params(), deps())


@templates_api.route("/cases/{case_id}/replies/check", methods=["POST"])
@api_errors
def check_reply(case_id):
    from chalicelib.services import brand_voice, inbox

    agent = current_agent(templates_api.current_request)
    case = inbox.load_case(agent, case_id, deps())
    return brand_voice.check_reply(agent, case, json_body(templates_api.current_request), deps())
