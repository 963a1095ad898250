"""The deck's widgets."""
