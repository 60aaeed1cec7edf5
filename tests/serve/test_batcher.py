"""fmkeras/serve/batcher.py: concurrent requests share model calls; a bad one fails alone."""
import threading
import time

import numpy as np

from fmkeras.serve import Batcher
from fmkeras.serve.status import InvalidArgument, ResourceExhausted, ServingError


class FakeServable:
    """Doubles its input; rejects negative values; counts calls and never runs two at once."""

    def __init__(self, delay=0.0):
        self.calls, self.active, self.delay = [], 0, delay

    def run(self, signature, inputs):
        self.active += 1
        assert self.active == 1, "model called concurrently"
        try:
            time.sleep(self.delay)
            x = inputs["x"]
            self.calls.append(len(x))
            if (x < 0).any():
                raise InvalidArgument("negative value")
            return {"y": x * 2}
        finally:
            self.active -= 1


def _concurrently(batcher, servable, values):
    results = {}

    def one(i, v):
        try:
            results[i] = batcher.predict(servable, "s", {"x": np.array([[v]], np.float32)})["y"]
        except ServingError as err:
            results[i] = err

    threads = [threading.Thread(target=one, args=(i, v)) for i, v in enumerate(values)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def test_concurrent_requests_are_merged_and_split_back():
    servable, batcher = FakeServable(delay=0.02), Batcher(max_size=4, timeout_ms=50)
    try:
        results = _concurrently(batcher, servable, list(range(12)))
    finally:
        batcher.stop()
    assert [results[i].tolist() for i in range(12)] == [[[2.0 * i]] for i in range(12)]
    assert max(servable.calls) > 1 and max(servable.calls) <= 4 and sum(servable.calls) == 12
    assert len(servable.calls) < 12


def test_bad_request_in_a_batch_fails_alone():
    servable, batcher = FakeServable(delay=0.02), Batcher(max_size=8, timeout_ms=50)
    try:
        results = _concurrently(batcher, servable, [1, 2, -1, 3])
    finally:
        batcher.stop()
    assert isinstance(results[2], InvalidArgument)
    assert [results[i].item() for i in (0, 1, 3)] == [2.0, 4.0, 6.0]


def test_full_queue_is_resource_exhausted():
    servable, batcher = FakeServable(delay=0.5), Batcher(max_size=1, timeout_ms=0, max_queue=1)
    try:
        results = _concurrently(batcher, servable, [1, 2, 3, 4])
    finally:
        batcher.stop()
    refused = [r for r in results.values() if isinstance(r, ResourceExhausted)]
    assert refused and refused[0].http_code == 429 and "too many queued requests" in refused[0].message
    assert any(not isinstance(r, Exception) for r in results.values())


def test_batch_waits_only_for_requests_in_flight():
    servable, batcher = FakeServable(), Batcher(max_size=8, timeout_ms=300)
    x = {"x": np.ones((1, 1), np.float32)}
    try:
        start = time.monotonic()
        with batcher.track():
            batcher.predict(servable, "s", x)
        assert time.monotonic() - start < 0.2  # alone: no 300 ms wait for requests that do not exist
        second_arrived = threading.Event()

        def late_request():  # received now, queued 50 ms later (e.g. still parsing its JSON)
            with batcher.track():
                second_arrived.set()
                time.sleep(0.05)
                batcher.predict(servable, "s", x)

        thread = threading.Thread(target=late_request)
        thread.start()
        second_arrived.wait(5)
        with batcher.track():
            batcher.predict(servable, "s", x)
        thread.join(10)
    finally:
        batcher.stop()
    assert servable.calls == [1, 2]


class _Gate:
    """A servable whose first call blocks until released; records every input it ran."""

    def __init__(self):
        self.release, self.entered, self.ran = threading.Event(), threading.Event(), []

    def run(self, signature, inputs):
        self.entered.set()
        self.release.wait(10)
        self.ran.append(float(inputs["x"][0, 0]))
        return {"y": inputs["x"]}


def test_a_request_that_timed_out_is_dropped_not_run_later():
    batcher = Batcher(max_size=1, timeout_ms=0, request_timeout=0.3)
    gate = _Gate()
    try:
        first = threading.Thread(target=lambda: _swallow(batcher.predict, gate, "s", {"x": np.array([[1.0]])}))
        first.start()
        assert gate.entered.wait(5)
        started = time.monotonic()
        try:  # queued behind the blocked call: its caller gets a 504 after request_timeout
            batcher.predict(gate, "s", {"x": np.array([[2.0]], np.float32)})
            raise AssertionError("the queued request should have timed out")
        except ServingError as err:
            assert err.http_code == 504 and time.monotonic() - started < 2
        gate.release.set()
        first.join(5)
        assert batcher.predict(gate, "s", {"x": np.array([[3.0]], np.float32)})["y"].tolist() == [[3.0]]
        assert gate.ran == [1.0, 3.0] and batcher.dropped == 1  # 2.0 was never run for nobody
    finally:
        gate.release.set()
        batcher.stop()


def _swallow(fn, *args):
    try:
        fn(*args)
    except ServingError:
        pass


class _DecodeCrash(FakeServable):
    """Like TF's decoder on some corrupt images: not an InvalidArgument, any other exception."""

    def run(self, signature, inputs):
        if (inputs["x"] == 13).any():
            self.calls.append(("crash", len(inputs["x"])))
            raise RuntimeError("Unknown image file format. One of JPEG, PNG, GIF, BMP required.")
        return super().run(signature, inputs)


def test_one_undecodable_instance_fails_alone_whatever_the_error():
    batcher = Batcher(max_size=8, timeout_ms=50)
    servable = _DecodeCrash(delay=0.3)
    try:
        first = threading.Thread(target=lambda: batcher.predict(servable, "s", {"x": np.array([[1.0]], np.float32)}))
        first.start()
        time.sleep(0.1)  # the worker is inside the first call: the next four queue up and form one batch
        results = _concurrently(batcher, servable, [2, 13, 4, 5])
        first.join(10)
        assert isinstance(results[1], ServingError) and results[1].http_code == 500
        assert [results[i].tolist() for i in (0, 2, 3)] == [[[4.0]], [[8.0]], [[10.0]]]
        assert ("crash", 4) in servable.calls  # they really shared a batch before the one-by-one re-run
    finally:
        batcher.stop()
