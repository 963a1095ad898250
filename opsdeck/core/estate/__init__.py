"""What a deck is: its config, its user settings, its pins, and the tools it was handed (installed.py)."""
