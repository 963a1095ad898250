"""Safety: locks, the audit log, break-glass, and recovery after an interrupted operation."""
