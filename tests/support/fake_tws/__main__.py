"""Run the fake gateway as a process (for benchmarks with several worker processes).

    python -m tests.support.fake_tws --port 0 --pacing-scale 0.01 [--rules-json FILE]

Prints `{"port": N}` once listening; on SIGTERM or SIGINT prints one JSON line of stats
(FakeGateway.stats()) and exits 0.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from tests.support.fake_tws.gateway import FakeGateway
from tests.support.fake_tws.pacing import DEFAULT_RULES, PacingRule


def _rules(path: str | None) -> tuple[PacingRule, ...]:
    """A JSON list of PacingRule fields, e.g. [{"name": "x", "scope": "all", "limit": 60,
    "window_s": 600, "max_bar_seconds": 30, "bid_ask_weight": 2}]."""
    if path is None:
        return DEFAULT_RULES
    return tuple(PacingRule(**item) for item in json.loads(Path(path).read_text()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.fake_tws")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--pacing-scale", type=float, default=1.0)
    parser.add_argument("--rules-json", default=None)
    args = parser.parse_args(argv)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: stop.set())

    gateway = FakeGateway(args.pacing_scale, rules=_rules(args.rules_json), port=args.port)
    port = gateway.start()
    print(json.dumps({"port": port}), flush=True)
    try:
        # A timed wait, so the main thread gets to run the signal handler.
        while not stop.wait(0.2):
            pass
        print(json.dumps(gateway.stats()), flush=True)
    finally:
        gateway.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
