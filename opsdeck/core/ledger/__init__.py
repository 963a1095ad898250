"""The deck's git repository as the team's shared ledger: who acts (the operator's identity and key), and
following and publishing to the team's remote before and after a change."""
