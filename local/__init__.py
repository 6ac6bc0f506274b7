"""Local stand-ins for the outside world (fake platform APIs, demo data); never deployed."""
