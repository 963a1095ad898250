"""Safety: locks, the audit log, break-glass, confirmation, and one audited operation."""
