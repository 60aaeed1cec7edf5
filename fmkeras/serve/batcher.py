"""Merges concurrent predict requests into one model call (TF Serving's batching, simplified).

A single worker thread takes the first queued request, waits up to `timeout_ms` for more
(only while requests the server has received but not yet queued exist, see `track`),
and runs requests with the same servable, signature and per-instance shape as one batch of
at most `max_size` instances, then splits the outputs back. If a merged batch fails on bad
input (e.g. one undecodable image) or any other error, each request is re-run alone so only
the bad one fails. A request whose caller gave up (504) is cancelled: if the worker has not
started it, it is dropped, never run. The worker is the only caller of the model, so model calls
never run concurrently.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import queue
import threading
import time
from concurrent.futures import Future

import numpy as np

from fmkeras.serve.status import (DeadlineExceeded, Internal, ResourceExhausted, ServingError, Unavailable,
                                  redact_paths)

log = logging.getLogger("fmkeras.serve")
_Item = collections.namedtuple("_Item", "servable signature inputs size future")


def _key(item: _Item) -> tuple:
    return (id(item.servable), item.signature,
            tuple((k, v.shape[1:], v.dtype.str) for k, v in sorted(item.inputs.items())))


class Batcher:
    """`predict(servable, signature, inputs)` from any thread; batching happens behind it."""

    def __init__(self, max_size: int = 8, timeout_ms: float = 2.0, max_queue: int = 256,
                 request_timeout: float = 30.0):
        self.max_size, self.timeout = max_size, timeout_ms / 1000.0
        self.request_timeout = request_timeout
        self._queue = queue.Queue(maxsize=max_queue)
        self._stop = threading.Event()
        self._inflight, self._count_lock = 0, threading.Lock()
        self.batches = collections.Counter()  # batch size -> number of model calls, for tests/benchmarks
        self.dropped = 0  # requests dropped unrun because their caller had timed out
        self._thread = threading.Thread(target=self._work, name="batcher", daemon=True)
        self._thread.start()

    @contextlib.contextmanager
    def track(self):
        """Marks one request in flight (from receipt to answer), so batches wait for it."""
        with self._count_lock:
            self._inflight += 1
        try:
            yield
        finally:
            with self._count_lock:
                self._inflight -= 1

    def predict(self, servable, signature: str, inputs: dict) -> dict:
        if self._stop.is_set():
            raise Unavailable("server is shutting down")
        size = len(next(iter(inputs.values())))
        future = Future()
        try:
            self._queue.put_nowait(_Item(servable, signature, inputs, size, future))
        except queue.Full:
            raise ResourceExhausted(f"too many queued requests (limit {self._queue.maxsize}); retry later") from None
        try:
            return future.result(timeout=self.request_timeout)
        except TimeoutError:
            future.cancel()  # still queued: the worker drops it instead of running it for nobody
            raise DeadlineExceeded(f"prediction took longer than {self.request_timeout} s") from None

    def _collect(self) -> list:
        items = [self._queue.get()]
        if items[0] is None:
            return []
        deadline = time.monotonic() + self.timeout
        total = items[0].size
        while total < self.max_size:
            # Wait only for requests that exist: ones already received but still being parsed.
            wait = deadline - time.monotonic() if self._inflight > len(items) else 0
            try:
                item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                if self._inflight > len(items) and time.monotonic() < deadline:
                    continue
                break
            if item is None:
                self._queue.put(None)  # keep the stop marker for the loop
                break
            items.append(item)
            total += item.size
        return items

    def _work(self):
        while not self._stop.is_set():
            items = self._collect()
            groups = collections.defaultdict(list)
            for item in items:
                groups[_key(item)].append(item)
            for group in groups.values():
                self._run_group(group)

    def _start(self, item: _Item) -> bool:
        """Marks `item` running; False (and counted) when its caller already gave up on it."""
        if item.future.set_running_or_notify_cancel():
            return True
        self.dropped += 1
        return False

    def _run_group(self, group: list):
        while group:  # split a group larger than max_size into consecutive batches
            batch, size = [], 0
            while group and (not batch or size + group[0].size <= self.max_size):
                item = group.pop(0)
                if self._start(item):
                    size += item.size
                    batch.append(item)
            if not batch:
                continue
            try:
                self._run(batch)
            except Exception:  # noqa: BLE001 - one bad request must not fail the others: re-run alone
                for item in batch:
                    self._run([item])

    def _run(self, batch: list):
        first = batch[0]
        inputs = first.inputs if len(batch) == 1 else {
            k: np.concatenate([item.inputs[k] for item in batch]) for k in first.inputs}
        try:
            outputs = first.servable.run(first.signature, inputs)
        except Exception as err:  # noqa: BLE001
            if len(batch) > 1:
                raise  # re-run one by one so only the bad request fails
            if not isinstance(err, ServingError):  # a bug or a resource problem: answer 500, keep serving
                log.exception("model call failed")
                err = Internal(f"{type(err).__name__}: {redact_paths(str(err)[:300])}")
            first.future.set_exception(err)
            return
        self.batches[len(batch)] += 1
        start = 0
        for item in batch:
            item.future.set_result({k: v[start:start + item.size] for k, v in outputs.items()})
            start += item.size

    def stop(self):
        self._stop.set()
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        self._thread.join(timeout=10)
        while True:  # fail whatever is still queued instead of leaving callers waiting
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None and item.future.set_running_or_notify_cancel():
                item.future.set_exception(Unavailable("server is shutting down"))
