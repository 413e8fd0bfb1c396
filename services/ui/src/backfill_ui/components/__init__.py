"""Pieces several pages share: job cards, charts, worker info."""
