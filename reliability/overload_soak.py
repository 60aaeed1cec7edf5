"""Scenario 5: overload and soak against a real `fmkeras serve` process.

The server runs with `--max_inflight=CAPACITY`. Closed-loop clients (keep-alive, one request
in flight each, real Fashion-MNIST images through `serve_pixels`) drive it:
  warm-up  2x capacity clients (every batch size is traced before measuring),
  soak     `capacity` clients for `soak_seconds`: every answer must be 200 (zero 5xx, zero 429)
           and the p99 latency within `p99_budget`,
  overload 2x capacity clients for `overload_seconds`: excess requests get a fast 429 (p99 of
           the 429s within `fast_429_budget`), never a 5xx, and the rest still get 200.
RSS (/proc/<pid>/status VmRSS) and open files (/proc/<pid>/fd) of the idle server after the
warm-up and after the overload phase must differ by less than `max_drift` (5%).
"""
from __future__ import annotations

import collections
import os
import threading
import time

from reliability.serve_process import (Connection, ServerProcess, export_model, has_traceback, percentile,
                                       pixels_body, test_images)


def drive(port: int, path: str, bodies: list, clients: int, seconds: float, timeout: float) -> list:
    """`clients` threads sending back to back for `seconds`; returns [(status, seconds)]."""
    results, lock, stop = [], threading.Lock(), threading.Event()

    def client(index):
        conn, mine, i = Connection(port, timeout), [], index
        while not stop.is_set():
            status, data, took = conn.send("POST", path, bodies[i % len(bodies)])
            mine.append((status, took, has_traceback(data) if status is not None else data.decode()[:200]))
            i += 1
        conn.close()
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=timeout + 5)
    return results


def _idle_usage(server, settle: float = 1.0) -> tuple:
    time.sleep(settle)  # let closed connections' handler threads finish
    return server.rss_kb(), server.open_files()


def _phase(results: list, seconds: float) -> dict:
    statuses = collections.Counter(str(s) for s, _, _ in results)
    ok = [t for s, t, _ in results if s == 200]
    shed = [t for s, t, _ in results if s == 429]
    return {"requests": len(results), "statuses": dict(statuses), "throughput_per_s": round(len(ok) / seconds, 1),
            "p50_ms": round(percentile(ok, 50) * 1000, 1), "p99_ms": round(percentile(ok, 99) * 1000, 1),
            "p99_429_ms": round(percentile(shed, 99) * 1000, 1),
            "5xx": sum(1 for s, _, _ in results if s is not None and s >= 500),
            "connection_errors": sum(1 for s, _, _ in results if s is None),
            "connection_error_samples": sorted({err for s, _, err in results if s is None})[:3],
            "tracebacks": sum(1 for s, _, tb in results if s is not None and tb)}


def run(workdir: str, capacity: int = 8, soak_seconds: float = 60.0, overload_seconds: float = 30.0,
        warmup_seconds: float = 3.0, p99_budget: float = 1.0, fast_429_budget: float = 0.25,
        max_drift: float = 0.05, timeout: float = 30.0) -> dict:
    started = time.monotonic()
    base = os.path.join(workdir, "saved_models", "soak")
    export_model(base, seed=1)
    images = test_images(16)
    bodies = [pixels_body(images[i:i + 1]) for i in range(len(images))]
    failures = []
    with ServerProcess(base, workdir, f"--max_inflight={capacity}", f"--batch_max_size={capacity}") as server:
        path = server.predict_path
        warm = drive(server.port, path, bodies, 2 * capacity, warmup_seconds, timeout)
        rss_base, fds_base = _idle_usage(server)
        soak = _phase(drive(server.port, path, bodies, capacity, soak_seconds, timeout), soak_seconds)
        over = _phase(drive(server.port, path, bodies, 2 * capacity, overload_seconds, timeout), overload_seconds)
        rss_end, fds_end = _idle_usage(server)
        alive = server.alive()
    rss_drift, fd_drift = (rss_end - rss_base) / rss_base, (fds_end - fds_base) / fds_base
    if set(soak["statuses"]) != {"200"}:
        failures.append(f"at capacity ({capacity} clients) not every answer was 200: {soak['statuses']}")
    if soak["p99_ms"] > p99_budget * 1000:
        failures.append(f"p99 at capacity {soak['p99_ms']} ms > budget {p99_budget * 1000} ms")
    if over["5xx"] or over["connection_errors"] or not set(over["statuses"]) <= {"200", "429"}:
        failures.append(f"at 2x capacity: {over['statuses']} (want only 200 and 429)")
    if over["statuses"].get("429", 0) == 0:
        failures.append("at 2x capacity no request was shed with 429 (the in-flight bound did not act)")
    if over["p99_429_ms"] > fast_429_budget * 1000:
        failures.append(f"429s are slow: p99 {over['p99_429_ms']} ms > {fast_429_budget * 1000} ms")
    if soak["tracebacks"] or over["tracebacks"]:
        failures.append("traceback text in a response")
    if abs(rss_drift) >= max_drift or abs(fd_drift) >= max_drift:
        failures.append(f"drift: RSS {rss_drift:+.1%}, open files {fd_drift:+.1%} (limit {max_drift:.0%})")
    if not alive:
        failures.append("server died")
    return {"ok": not failures, "failures": failures, "capacity": capacity, "soak": soak, "overload": over,
            "p99_budget_ms": p99_budget * 1000, "fast_429_budget_ms": fast_429_budget * 1000,
            "rss_mb": [round(rss_base / 1024, 1), round(rss_end / 1024, 1)], "rss_drift": round(rss_drift, 4),
            "open_files": [fds_base, fds_end], "open_files_drift": round(fd_drift, 4),
            "requests_sent": len(warm) + soak["requests"] + over["requests"],
            "5xx_count": sum(1 for s, _, _ in warm if s is not None and s >= 500) + soak["5xx"] + over["5xx"],
            "crashes": int(not alive), "seconds": round(time.monotonic() - started, 1)}
