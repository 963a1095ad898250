"""Images and releases: bake, promote, roll back, roll out, and the git ledger of pins."""
