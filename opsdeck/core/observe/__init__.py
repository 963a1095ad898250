"""Observing the deck: refresh, status, the stored snapshot, lag and rollouts (plans are core/plans)."""
