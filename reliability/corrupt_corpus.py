"""Scenario 3: a class-folder corpus full of bad and odd files, trained by a real `fmkeras train`.

Every class folder holds real Fashion-MNIST images (PNG and JPEG) plus one of each hostile
file: a zero-byte .jpg, a truncated JPEG, a PNG with a bad IDAT CRC, text saved as .jpg and a
decompression bomb (a well-formed 110 KB 1-bit PNG whose header declares 30000x30000 pixels,
which TF's PNG decoder happens to refuse itself) and a second one of 20000x20000 (48 KB) that
TF does decode: measured at 2.3 GB peak RSS (`/usr/bin/time -v` around one
`decode.decode_image`), against ~750 MB for the whole tiny training run. And one of each
convertible file: a CMYK JPEG, an animated GIF
(first frame used) and a 16-bit PNG. Two trainer processes run with a timeout each:

- `--set=data.bad_files=strict` must exit 2 before training starts (no run directory) with one
  error line naming every bad file and none of the valid or convertible ones;
- `--set=data.bad_files=skip` (the default) must train on exactly the valid + convertible
  files (num_train + num_val in metrics.json) and list exactly the bad ones in `skipped`.

Both must finish within `timeout` seconds and keep their own peak RSS (VmHWM, see run_child)
under `rss_limit_mb`: the bombs are refused from their headers, never decoded.

Example:
    python -m reliability --only=corrupt_corpus
"""
from __future__ import annotations

import io
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib

import numpy as np
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BAD = ("zero_byte.jpg", "truncated.jpg", "bad_crc.png", "text.jpg", "bomb_30000x30000.png",
       "bomb_20000x20000.png")
CONVERTIBLE = ("cmyk.jpg", "animated.gif", "sixteen_bit.png")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(side: int = 30000) -> bytes:
    """A valid 1-bit grayscale PNG of side x side black pixels: ~110 KB on disk."""
    row = b"\0" * (1 + (side + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _encode(image, fmt: str, **kwargs) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **kwargs)
    return out.getvalue()


def hostile_files(pixels: np.ndarray, bombs: dict) -> dict:
    """File name -> bytes for every bad and convertible kind, made from one uint8 (H, W) image."""
    from PIL import Image
    rgb = np.dstack([pixels, 255 - pixels, pixels // 2])
    jpeg = _encode(Image.fromarray(rgb), "JPEG", quality=90)
    png = bytearray(_encode(Image.fromarray(rgb), "PNG"))
    at = png.find(b"IDAT")
    png[at + 4 + struct.unpack(">I", png[at - 4:at])[0]] ^= 0xFF  # first CRC byte of the IDAT chunk
    frames = [Image.fromarray(rgb), Image.fromarray(255 - rgb)]
    return {
        "zero_byte.jpg": b"",
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "bad_crc.png": bytes(png),
        "text.jpg": b"This is a text file that was saved with a .jpg name.\n" * 4,
        **bombs,
        "cmyk.jpg": _encode(Image.fromarray(rgb).convert("CMYK"), "JPEG"),
        "animated.gif": _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0),
        "sixteen_bit.png": _encode(Image.fromarray(pixels.astype(np.uint16) * 257), "PNG"),
    }


def write_corpus(root: str, classes: int, per_class: int, seed: int = 3) -> dict:
    """Writes root/<class>/ with `per_class` real images each and one of every hostile file per class.

    Returns {"valid": [...], "convertible": [...], "bad": [...]} relative paths.
    """
    from PIL import Image
    from fmkeras.data.idx import fashion_mnist_source
    source = fashion_mnist_source()
    rng = np.random.default_rng(seed)
    bombs = {f"bomb_{side}x{side}.png": bomb_png(side) for side in (30000, 20000)}
    written = {"valid": [], "convertible": [], "bad": []}
    for label in range(classes):
        name = source.class_names[label].replace("/", "_").replace(" ", "_")
        os.makedirs(os.path.join(root, name), exist_ok=True)
        picks = rng.choice(np.flatnonzero(source.y_train == label), per_class + 1, replace=False)
        for i, index in enumerate(picks[:per_class]):
            fmt, ext = ("PNG", "png") if i % 2 else ("JPEG", "jpg")
            rel = f"{name}/{i:04d}.{ext}"
            with open(os.path.join(root, rel), "wb") as fh:
                fh.write(_encode(Image.fromarray(source.x_train[index][..., 0]), fmt))
            written["valid"].append(rel)
        for file_name, data in hostile_files(source.x_train[picks[-1]][..., 0], bombs).items():
            rel = f"{name}/{file_name}"
            with open(os.path.join(root, rel), "wb") as fh:
                fh.write(data)
            written["bad" if file_name in BAD else "convertible"].append(rel)
    return written


def _peak_rss_mb(pid: int) -> float:
    """The process's own peak RSS so far (VmHWM of its address space), 0 once it has exited."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_child(args: list, timeout: float) -> dict:
    """Runs `python -m fmkeras <args>`; returns rc, wall seconds, the child's own peak RSS (MB), stderr.

    The peak is the child's VmHWM, polled every 50 ms (it only grows). Not ru_maxrss: on exec Linux
    folds the spawning process's RSS high-water mark into the child's ru_maxrss, so a child spawned
    by a harness holding TF (~1 GB) would report the harness's peak (measured: 962 MB for a child
    whose own peak was 657 MB).
    """
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    started, peak, hung = time.monotonic(), 0.0, False
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-m", "fmkeras", *args], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=err)
        while True:
            peak = max(peak, _peak_rss_mb(proc.pid))
            pid, status = os.waitpid(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - started > timeout:
                hung = True
                os.kill(proc.pid, signal.SIGKILL)
                pid, status = os.waitpid(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen from waiting again
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    return {"rc": proc.returncode, "seconds": round(time.monotonic() - started, 1), "hung": hung,
            "peak_rss_mb": round(peak, 1), "stderr": stderr}


def tiny_config(root: str, epochs: int) -> dict:
    return {
        "name": "corrupt-corpus",
        "data": {"source": f"folder:{root}", "image_size": [28, 28], "validation_split": 0.2},
        "model": {"backbone": "cnn", "backbone_options": {"filters": [8, 16]}, "head": {"dense_units": [16]}},
        "train": {"epochs": epochs, "batch_size": 32, "learning_rate": 0.003, "verbose": 0},
        "export": {"enabled": False},
    }


def _error_lines(stderr: str) -> list:
    return [line for line in stderr.splitlines() if line.startswith("fmkeras: error:")]


def check_strict(result: dict, written: dict, run_dir: str) -> dict:
    """Strict run: exit 2, one error line naming every bad file and nothing else, no run directory."""
    lines = _error_lines(result["stderr"])
    named = lines[0] if len(lines) == 1 else ""
    return {"rc": result["rc"], "seconds": result["seconds"], "peak_rss_mb": result["peak_rss_mb"],
            "error_lines": len(lines),
            "bad_files_named": sum(f"/{rel} (" in named for rel in written["bad"]),
            "good_files_named": [rel for rel in written["valid"] + written["convertible"] if f"/{rel}" in named],
            "run_dir_created": os.path.exists(run_dir), "hung": result["hung"],
            "error_head": named[:300]}


def check_skip(result: dict, written: dict, run_dir: str) -> dict:
    """Lenient run: trains on exactly the valid + convertible files, lists exactly the bad ones."""
    entry = {"rc": result["rc"], "seconds": result["seconds"], "peak_rss_mb": result["peak_rss_mb"],
             "hung": result["hung"]}
    path = os.path.join(run_dir, "metrics.json")
    if result["rc"] != 0 or not os.path.isfile(path):
        return {**entry, "stderr": result["stderr"][-800:]}
    with open(path) as fh:
        metrics = json.load(fh)
    skipped = {os.path.relpath(s["path"], os.path.dirname(os.path.dirname(s["path"]))): s["reason"]
               for s in metrics["skipped"]}
    bomb_reasons = [r for p, r in skipped.items() if "/bomb_" in p]
    return {**entry, "images_used": metrics["num_train"] + metrics["num_val"] + metrics["num_test"],
            "num_train": metrics["num_train"], "num_val": metrics["num_val"],
            "skipped_count": metrics["skipped_count"], "skipped_match": sorted(skipped) == sorted(written["bad"]),
            "bombs_refused_from_header": sum("refused before decoding" in r for r in bomb_reasons),
            "val_accuracy": metrics["history"].get("val_accuracy", [None])[-1],
            "skipped_reasons": {p.split("/")[-1]: r for p, r in skipped.items()}}


def run(workdir: str, classes: int = 3, per_class: int = 60, epochs: int = 2, timeout: float = 300,
        rss_limit_mb: float = 1500) -> dict:
    """Writes the corpus, runs the strict and the lenient trainer; returns the scoreboard entry."""
    started = time.monotonic()
    root = os.path.join(workdir, "corpus")
    written = write_corpus(root, classes, per_class)
    config = os.path.join(workdir, "config.yaml")
    with open(config, "w") as fh:
        yaml.safe_dump(tiny_config(root, epochs), fh)
    strict_dir, skip_dir = os.path.join(workdir, "strict_run"), os.path.join(workdir, "skip_run")
    strict = check_strict(run_child(["train", f"--config={config}", f"--run_dir={strict_dir}",
                                     "--set=data.bad_files=strict"], timeout), written, strict_dir)
    skip = check_skip(run_child(["train", f"--config={config}", f"--run_dir={skip_dir}",
                                 "--set=data.bad_files=skip"], timeout), written, skip_dir)
    expected_used = len(written["valid"]) + len(written["convertible"])
    bombs = sum("/bomb_" in rel for rel in written["bad"])
    strict_ok = (strict["rc"] == 2 and strict["error_lines"] == 1 and not strict["run_dir_created"]
                 and strict["bad_files_named"] == len(written["bad"]) and not strict["good_files_named"])
    skip_ok = (skip["rc"] == 0 and skip.get("images_used") == expected_used and skip.get("skipped_match")
               and skip.get("skipped_count") == len(written["bad"]) and skip.get("bombs_refused_from_header") == bombs)
    peak = max(strict["peak_rss_mb"], skip["peak_rss_mb"])
    crashes = sum(r["rc"] not in expected or r["hung"] for r, expected in ((strict, (2,)), (skip, (0,))))
    return {"ok": bool(strict_ok and skip_ok and peak < rss_limit_mb and crashes == 0),
            "files": {k: len(v) for k, v in written.items()}, "expected_images_used": expected_used,
            "strict": strict, "skip": skip, "peak_rss_mb": peak, "rss_limit_mb": rss_limit_mb,
            "timeout_seconds": timeout, "crashes": crashes, "seconds": round(time.monotonic() - started, 1)}
