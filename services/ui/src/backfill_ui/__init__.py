"""Backfill console: the NiceGUI web app to submit, follow, inspect and monitor jobs."""
