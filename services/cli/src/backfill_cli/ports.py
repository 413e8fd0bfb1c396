"""Is a TCP port free? Asked before starting a server, to fail with a clear message."""

from __future__ import annotations

import errno
import socket


def port_in_use(host: str, port: int) -> bool:
    """True if something already listens on host:port, so a server we start there would fail.

    Probed by binding with SO_REUSEADDR, as Redis and uvicorn do, so a port that only has
    connections in TIME_WAIT from our last run does not count as taken.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False
