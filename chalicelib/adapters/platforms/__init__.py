"""Platform adapters: the only code that speaks X and Graph API shapes."""
