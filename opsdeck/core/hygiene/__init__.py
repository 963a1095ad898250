"""Estate hygiene: what exists or changed outside the pipeline (orphans, changes seen in CloudTrail)."""
