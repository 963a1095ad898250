"""The headless core of opsdeck: config, model, operations and audit. Never imports a UI library."""
