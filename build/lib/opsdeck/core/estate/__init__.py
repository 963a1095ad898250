"""What a deck is: its config, its user settings, and the tools bound to each environment."""
