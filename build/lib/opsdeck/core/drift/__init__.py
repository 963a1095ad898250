"""Drift between code and cloud: the check, the ignore file, ownership of resources, reconcile."""
