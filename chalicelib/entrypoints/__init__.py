"""Entry points: what turns a Lambda event into a service call and back
(HTTP helpers and blueprints, token verification, SQS batch handling)."""
