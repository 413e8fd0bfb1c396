"""Backfill IBKR worker: historical bars from TWS / IB Gateway through ib_async."""
