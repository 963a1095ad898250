"""Adopting an estate: a team's existing Terraform read, and an opsdeck.toml drafted from it (`opsdeck init`)."""
