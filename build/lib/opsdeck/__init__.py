"""opsdeck: a terminal deck for immutable infrastructure."""

__version__ = "0.1.0"
