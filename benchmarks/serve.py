"""Serving latency and throughput: the REST server vs an in-process call of the same SavedModel.

One process builds the default recipe's CNN (32-64-128 filters, flatten, dense 256; weights do not
change the cost), exports it, then measures, in the same run:
- in_process: `tf.saved_model.load(...).signatures["serve_pixels"]` called directly;
- rest: `fmkeras serve` in a subprocess on 127.0.0.1, requests over persistent HTTP/1.1
  connections carrying one real Fashion-MNIST image as JSON (the same serve_pixels signature).
Latency: p50/p99 of sequential batch-1 calls. Throughput: 8 concurrent clients, images/s.
The REST server runs twice: with its default batching (max 8 images, 2 ms wait) and without.

Run: python benchmarks/serve.py [--requests 300] [--clients 8]
Before/after: python benchmarks/serve.py --compare_with=/path/to/other/checkout [--rounds 3] runs this
checkout's server and the other one's in alternating rounds of one run (same model, same load) and
reports the median p50 latency and throughput of each and their ratios (this / other).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from fmkeras.config import HeadConfig, ModelConfig  # noqa: E402
from fmkeras.data.idx import fashion_mnist_source  # noqa: E402
from fmkeras.export import export_saved_model  # noqa: E402
from fmkeras.transfer import build_classifier  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = ModelConfig(backbone_options={"filters": (32, 64, 128)},
                    head=HeadConfig(pooling="flatten", dense_units=(256,), dropout=0.4))


def _summary(latencies: list) -> dict:
    ms = np.asarray(latencies) * 1000.0
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3),
            "mean_ms": round(float(ms.mean()), 3), "n": int(len(ms))}


def _throughput(call, clients: int, per_client: int) -> dict:
    """Runs `call(client_index)` per_client times in each of `clients` threads; images per second."""
    errors = []

    def worker(i):
        try:
            for _ in range(per_client):
                call(i)
        except Exception as err:  # counted and reported, never hidden
            errors.append(repr(err))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    return {"images_per_s": round(clients * per_client / seconds, 1), "seconds": round(seconds, 3),
            "clients": clients, "requests": clients * per_client, "errors": len(errors)}


def in_process(path: str, image: np.ndarray, requests: int, clients: int, total: int) -> dict:
    serve = tf.saved_model.load(path).signatures["serve_pixels"]
    pixels = tf.constant(image[np.newaxis])
    for _ in range(20):
        serve(pixels=pixels)
    latencies = []
    for _ in range(requests):
        start = time.perf_counter()
        serve(pixels=pixels)["probabilities"].numpy()
        latencies.append(time.perf_counter() - start)
    return {"latency_batch1": _summary(latencies),
            "throughput": _throughput(lambda i: serve(pixels=pixels)["probabilities"].numpy(), clients,
                                      total // clients)}


def _start_server(base: str, flags: list, root: str = ROOT):
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "fmkeras.cli.main", "serve", f"--model_base_path={base}",
                             "--port=0", *flags], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    line = proc.stdout.readline()
    if " at http://" not in line:
        proc.kill()
        raise RuntimeError(f"server did not start: {line!r}")
    host_port = line.split(" at http://")[1].split("/")[0]
    return proc, host_port.split(":")[0], int(host_port.split(":")[1])


def rest(base: str, name: str, image: np.ndarray, requests: int, clients: int, total: int, flags=(),
         root: str = ROOT) -> dict:
    proc, host, port = _start_server(base, list(flags), root)
    body = json.dumps({"signature_name": "serve_pixels", "instances": [image.tolist()]}).encode()
    connections = [http.client.HTTPConnection(host, port, timeout=30) for _ in range(clients)]

    def call(i):
        conn = connections[i]
        conn.request("POST", f"/v1/models/{name}:predict", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {data[:200]!r}")
        return json.loads(data)

    try:
        for _ in range(20):
            call(0)
        latencies = []
        for _ in range(requests):
            start = time.perf_counter()
            call(0)
            latencies.append(time.perf_counter() - start)
        return {"latency_batch1": _summary(latencies),
                "throughput": _throughput(call, clients, total // clients), "request_bytes": len(body),
                "server_flags": list(flags)}
    finally:
        for conn in connections:
            conn.close()
        proc.terminate()
        proc.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--throughput_requests", type=int, default=1600)
    parser.add_argument("--compare_with", default=None, help="another checkout whose server runs alternately")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.compare_with:
        return compare(args)
    source = fashion_mnist_source()
    image = source.x_test[0]
    model = build_classifier(MODEL, (28, 28, 1), 10)
    with tempfile.TemporaryDirectory() as tmp:
        base = os.path.join(tmp, "fashion")
        _, path = export_saved_model(model, base, source.class_names, (28, 28, 1))
        direct = in_process(path, image, args.requests, args.clients, args.throughput_requests)
        served = rest(base, "fashion", image, args.requests, args.clients, args.throughput_requests)
        unbatched = rest(base, "fashion", image, args.requests, args.clients, args.throughput_requests,
                         ["--batch_max_size=1", "--batch_timeout_ms=0"])
    print(json.dumps({
        "benchmark": "serve", "model": "cnn 32-64-128 flatten dense256 (28x28x1)", "cpu_count": os.cpu_count(),
        "in_process": direct, "rest": served, "rest_without_batching": unbatched,
        "rest_over_in_process_p50": round(served["latency_batch1"]["p50_ms"] / direct["latency_batch1"]["p50_ms"], 2),
        "rest_throughput_fraction": round(served["throughput"]["images_per_s"] / direct["throughput"]["images_per_s"],
                                          3)}, indent=2))


def compare(args):
    """This checkout's server vs `args.compare_with`'s, alternating rounds in one run."""
    source = fashion_mnist_source()
    image = source.x_test[0]
    model = build_classifier(MODEL, (28, 28, 1), 10)
    runs = {"this": [], "other": []}
    roots = {"this": ROOT, "other": os.path.abspath(args.compare_with)}
    with tempfile.TemporaryDirectory() as tmp:
        base = os.path.join(tmp, "fashion")
        export_saved_model(model, base, source.class_names, (28, 28, 1))
        for round_index in range(args.rounds):
            for label in (("this", "other") if round_index % 2 == 0 else ("other", "this")):
                runs[label].append(rest(base, "fashion", image, args.requests, args.clients,
                                        args.throughput_requests, root=roots[label]))

    def median(label, key, field):
        return float(np.median([r[key][field] for r in runs[label]]))

    summary = {label: {"root": roots[label], "p50_ms": median(label, "latency_batch1", "p50_ms"),
                       "p99_ms": median(label, "latency_batch1", "p99_ms"),
                       "images_per_s": median(label, "throughput", "images_per_s"),
                       "errors": sum(r["throughput"]["errors"] for r in runs[label])} for label in runs}
    print(json.dumps({
        "benchmark": "serve_compare", "rounds": args.rounds, "requests": args.requests, "clients": args.clients,
        "cpu_count": os.cpu_count(), **summary,
        "p50_ratio_this_over_other": round(summary["this"]["p50_ms"] / summary["other"]["p50_ms"], 3),
        "throughput_ratio_this_over_other": round(summary["this"]["images_per_s"] / summary["other"]["images_per_s"],
                                                  3),
        "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
