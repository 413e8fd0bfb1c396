"""Benchmarks of the local stack against its floors: `backfill bench`."""
