"""A whole-request read deadline: the defence against slowloris clients.

A socket timeout restarts on every byte, so a client that dribbles one byte a second holds a
connection (and one of the server's `max_connections` slots) forever. Here each request gets a
deadline when the server starts waiting for it; a watchdog thread shuts the read side of late
connections, which makes the handler's blocked read return at once so it can answer 408.
"""
from __future__ import annotations

import socket
import threading
import time


class ReadDeadlines:
    """`start(handler)` when a request is awaited, `end(handler)` once its body is read."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._deadlines, self._lock = {}, threading.Lock()
        self._stop = threading.Event()
        threading.Thread(target=self._watch, name="read-deadlines", daemon=True).start()

    def start(self, handler):
        with self._lock:
            self._deadlines[handler] = time.monotonic() + self.seconds

    def end(self, handler):
        with self._lock:
            self._deadlines.pop(handler, None)

    def stop(self):
        self._stop.set()

    def _watch(self):
        while not self._stop.wait(min(0.25, self.seconds / 4)):
            now = time.monotonic()
            with self._lock:
                late = [h for h, deadline in self._deadlines.items() if deadline < now]
                for handler in late:
                    del self._deadlines[handler]
            for handler in late:
                handler.timed_out = True
                try:
                    handler.connection.shutdown(socket.SHUT_RD)
                except OSError:
                    pass  # already closed by the client
