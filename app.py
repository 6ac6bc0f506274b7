"""socialcare: the table of contents. Each handler parses its event, calls
chalicelib, and shapes the answer. Stage settings come from environment
variables (.chalice/config.json); boto3 and platform clients load lazily."""
from chalice import Chalice, Rate, Response

from chalicelib import assign, inbox, intake, reply, triage_rules
from chalicelib.config import settings
from chalicelib.http_api import api_errors, json_body, token_verifier
from chalicelib.listen import push, sources
from chalicelib.listen import service as listen
from chalicelib.observability import count, logger, metrics, process_sqs_batch
from chalicelib.wiring import deps

app = Chalice(app_name="socialcare")
config = settings()


@app.middleware("all")
def observe(event, get_response):
    """Correlation id on every log line; metrics flushed once per invocation."""
    logger.append_keys(stage=config.stage)
    try:
        return get_response(event)
    finally:
        if metrics.metric_set:  # an empty flush only logs a warning
            metrics.flush_metrics()


def current_agent():
    principal = token_verifier().verify(_bearer())
    logger.append_keys(agent=principal.username)
    return inbox.agent_for(principal.username, deps())


def _bearer():
    from chalicelib.auth import bearer_token

    return bearer_token(app.current_request.headers)


# ---- listen ---------------------------------------------------------------
@app.schedule(Rate(1, unit=Rate.MINUTES), name="fetch_mentions")
def fetch_mentions(event):
    results = listen.poll_all(deps(), listen.fetcher_for, log=logger)
    count("MentionsFetched", sum(r.get("fetched", 0) for r in results))
    logger.info("fetch run", extra={"sources": results})
    return results


@app.route("/webhooks/meta", methods=["GET"])
def meta_webhook_handshake():
    challenge = push.handshake(app.current_request.query_params or {}, deps())
    if challenge is None:
        logger.warning("webhook handshake refused: wrong verify token or mode")
        return Response(body={"error": "verify token does not match"}, status_code=403)
    return Response(body=challenge, status_code=200, headers={"Content-Type": "text/plain"})


@app.route("/webhooks/meta", methods=["POST"])
@api_errors
def meta_webhook_delivery():
    request = app.current_request
    received = push.receive_delivery(request.raw_body, request.headers.get("x-hub-signature-256"), deps())
    count("WebhookMentions", received["enqueued"])
    return received


# ---- triage and route (SQS) ---------------------------------------------------
@app.on_sqs_message(queue=config.mentions_queue, batch_size=10, name="triage_mentions")
def triage_mentions(event):
    return process_sqs_batch(event.to_dict(), lambda body: intake.triage_message(body, deps()),
                             dead_letter=deps().dead_letters["mentions"], origin=config.mentions_queue,
                             metric="MentionsTriaged")


@app.on_sqs_message(queue=config.triaged_queue, batch_size=10, name="assign_cases")
def assign_cases(event):
    return process_sqs_batch(event.to_dict(), lambda body: assign.assign_message(body, deps()),
                             dead_letter=deps().dead_letters["triaged"], origin=config.triaged_queue,
                             metric="CasesAssigned")


@app.on_sqs_message(queue=config.outbound_queue, batch_size=5, name="send_replies")
def send_replies(event):
    return process_sqs_batch(event.to_dict(), lambda body: reply.deliver_reply(body, deps()),
                             dead_letter=deps().dead_letters["outbound"], origin=config.outbound_queue,
                             metric="RepliesProcessed")


# ---- agent API ----------------------------------------------------------------
@app.route("/health", methods=["GET"])
def health():
    return {"status": "ok", "stage": config.stage}


@app.route("/cases", methods=["GET"])
@api_errors
def list_cases():
    params = app.current_request.query_params or {}
    return inbox.list_inbox(current_agent(), params, deps())


@app.route("/cases/{case_id}", methods=["GET"])
@api_errors
def get_case(case_id):
    return inbox.case_detail(current_agent(), case_id, deps())


@app.route("/cases/{case_id}", methods=["PATCH"])
@api_errors
def update_case(case_id):
    agent = current_agent()
    return inbox.change_status(agent, case_id, json_body(app.current_request), deps())


@app.route("/cases/{case_id}/replies", methods=["POST"])
@api_errors
def post_reply(case_id):
    agent = current_agent()
    case = inbox.load_case(agent, case_id, deps())
    queued = reply.request_reply(case, json_body(app.current_request), agent_id=agent["agent_id"], deps=deps())
    return Response(body=queued, status_code=202)


# ---- supervisors: rules are data ------------------------------------------------
@app.route("/admin/triage-rules", methods=["GET"])
@api_errors
def get_triage_rules():
    inbox.require_supervisor(current_agent())
    return triage_rules.rules_view(deps().settings)


@app.route("/admin/triage-rules", methods=["PUT"])
@api_errors
def put_triage_rules():
    agent = current_agent()
    inbox.require_supervisor(agent)
    saved = triage_rules.save_validated(deps().settings, json_body(app.current_request),
                                        author=agent["agent_id"], now=deps().now())
    return Response(body=saved, status_code=201)


@app.route("/admin/triage-rules/versions", methods=["GET"])
@api_errors
def list_triage_rule_versions():
    inbox.require_supervisor(current_agent())
    return {"versions": triage_rules.rule_versions(deps().settings)}


# ---- supervisors: sources, agents ---------------------------------------------
@app.route("/sources", methods=["GET"])
@api_errors
def list_sources():
    current_agent()
    return {"sources": [sources.status_view(s) for s in deps().settings.list_sources()]}


@app.route("/admin/sources", methods=["PUT"])
@api_errors
def put_source():
    inbox.require_supervisor(current_agent())
    source = sources.validate_source(json_body(app.current_request))
    existing = deps().settings.get_source(source["source_id"]) or {}
    deps().settings.put_source({**existing, **source})
    return Response(body=sources.status_view({**existing, **source}), status_code=200 if existing else 201)


@app.route("/admin/agents/{agent_id}", methods=["PUT"])
@api_errors
def put_agent(agent_id):
    inbox.require_supervisor(current_agent())
    agent = inbox.validate_agent(agent_id, json_body(app.current_request), deps().settings.get_agent(agent_id))
    deps().settings.put_agent(agent)
    return agent
