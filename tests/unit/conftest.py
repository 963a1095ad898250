"""Fixtures shared by the unit tests."""

from tests.unit.team import team as team
