"""The deck's terminal UI (Textual only): renders core's state and sends intents to core."""
