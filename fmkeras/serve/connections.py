"""Connection limits that idle sockets cannot exhaust.

At most `max_connections` connections are served at once and one client address holds at most
`per_client` of them. A connection waiting for its next request (idle keep-alive, or a socket that
never sent a byte) holds its slot only until someone needs it: when a limit is reached, the
longest-idle connection (of that client, or of anyone) is closed to make room, and only when none
is idle is the newcomer refused with a 503. Slow senders are not idle; the read deadline
(read_deadline.py) cuts them off.
"""
from __future__ import annotations

import collections
import socket
import threading
import time


def client_of(address) -> str:
    """The client's IP address from a socket address (a path for Unix sockets)."""
    return address[0] if isinstance(address, tuple) else str(address)


class ConnectionLimits:
    """`admit(client)` before serving a connection (None or the refusal message), `release(client)` after."""

    def __init__(self, max_connections: int, per_client: int):
        self.max_connections, self.per_client = max_connections, per_client
        self._slots = threading.BoundedSemaphore(max_connections)
        self._handlers = {}  # handler -> client; guarded by _lock
        self._counts = collections.Counter()
        self._lock = threading.Lock()
        self.evicted_idle = 0  # idle connections closed to make room, for tests and the reliability report

    def admit(self, client: str):
        with self._lock:
            full = self._counts[client] >= self.per_client
        if full and not self._evict_idle(client):
            return f"too many connections from one client (limit {self.per_client})"
        if not self._slots.acquire(blocking=False):
            # The evicted handler frees its slot as its thread ends, a moment later.
            if not (self._evict_idle(None) and self._slots.acquire(timeout=2.0)):
                return f"too many connections (limit {self.max_connections})"
        with self._lock:
            self._counts[client] += 1
        return None

    def release(self, client: str):
        with self._lock:
            self._counts[client] -= 1
            if self._counts[client] <= 0:
                del self._counts[client]
        self._slots.release()

    def register(self, handler, client: str):
        with self._lock:
            self._handlers[handler] = client

    def unregister(self, handler):
        with self._lock:
            self._handlers.pop(handler, None)

    def set_idle(self, handler, idle: bool):
        """Marks `handler` as waiting for a request (evictable) or busy."""
        with self._lock:
            handler.idle_since = time.monotonic() if idle else None

    def _evict_idle(self, client) -> bool:
        """Closes the longest-idle connection (of `client`, or of anyone); False if none is idle."""
        with self._lock:
            idle = [h for h, c in self._handlers.items()
                    if h.idle_since is not None and not h.evicted and (client is None or c == client)]
            if not idle:
                return False
            victim = min(idle, key=lambda h: h.idle_since)
            victim.evicted = True
            self.evicted_idle += 1
        try:
            victim.connection.shutdown(socket.SHUT_RDWR)  # its idle wait returns at once and the thread ends
        except OSError:
            pass
        return True
