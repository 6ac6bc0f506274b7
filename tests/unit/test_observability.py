"""Every invocation starts with a clean log context and the stage as a metric dimension."""
from chalicelib.observability import logger, metrics, start_invocation


def test_a_new_invocation_does_not_name_the_previous_caller():
    start_invocation("prod")
    logger.append_keys(agent="aiko", message_id="m-1")
    logger.set_correlation_id("x:123")
    start_invocation("prod")
    keys = logger.get_current_keys()
    assert keys.get("stage") == "prod"
    assert not {"agent", "message_id"} & set(keys) and not keys.get("correlation_id")
    assert metrics.default_dimensions == {"stage": "prod"}
