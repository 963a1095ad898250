"""Observing the deck: plans, refresh, status, the stored snapshot and lag."""
