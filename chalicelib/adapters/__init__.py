"""AWS adapters: the only modules that call boto3."""
