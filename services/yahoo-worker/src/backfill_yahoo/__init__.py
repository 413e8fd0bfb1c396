"""The Yahoo Finance worker: yfinance collection that never mistakes a failure for no data."""
