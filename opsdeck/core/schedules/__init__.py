"""Ready-to-install schedules: the nightly drift check and the bakes (crontab, systemd, CI jobs)."""
