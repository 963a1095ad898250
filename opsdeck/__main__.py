"""`python -m opsdeck` runs the command line."""

from opsdeck.cli import run

run()
