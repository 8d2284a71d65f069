"""Whether a server answers at host:port: the check before a client that would retry for minutes
(a database engine, `ray.init`) is handed the address."""

from __future__ import annotations

import socket
from typing import Optional


def unanswered(host: str, port: int, timeout: float) -> Optional[str]:
    """Why nothing answers at `host:port` within `timeout` seconds (``Connection refused``, ``timed
    out``), or None when something accepts the connection."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return exc.strerror or str(exc)
    return None
