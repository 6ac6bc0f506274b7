"""Services: one module per capability (intake, assign, inbox, reply, listen,
rules). They work on domain objects through the ports in ``chalicelib.ports``
and never import adapters, boto3 or Chalice."""
