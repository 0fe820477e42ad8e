"""Unattended nightly campaigns: run, record, detect changes, publish."""
