"""The tools core works with, as small typed interfaces (protocols) in core's own words.

Core operations never build a tool themselves: they ask the deck's ``Tools`` (factory.py) for the tools
of one environment's target (its account, region and credentials) or of the build account. The real
factory (opsdeck/wiring.py) hands out the adapters; unit tests hand out in-memory fakes (tests/fakes.py)
of the same shape, so every operation runs headless and fast without a cloud. Each port is small and
named for what its callers need (cloud.py: identity, object store, images, groups and instances,
traffic, inventory, notifications; git.py: the ledger's history, its commits, the team's remote), so a
fake implements only what a test uses. The values they speak are core/types.
"""
