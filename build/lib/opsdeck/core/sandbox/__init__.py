"""Sandboxes: nuke and rebuild from code."""
