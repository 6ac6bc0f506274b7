"""socialcare: serverless social customer service.

Modules mirror the pipeline: listen -> triage -> route -> reply, with measure
and cost alongside. Domain modules are plain Python; AWS access lives in
``chalicelib.adapters`` and platform HTTP in ``chalicelib.platforms``.
"""
