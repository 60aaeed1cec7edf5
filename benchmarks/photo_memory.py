"""Peak memory of the image pipeline on a folder of large photos: it must not grow with their pixels.

For each of `--counts` (default 15 and 60 photos) it writes that many JPEGs of `--size` (default 4000x3000:
36 MB of decoded pixels each, 2.16 GB for 60) into a temp folder, then in a fresh process loads the folder source
(with its up-front file check) and runs two epochs of the training pipeline at 224 px (decode + resize in
tf.data, cache=memory of the resized uint8 images). Each child reports how far its RSS rose above where it
stood after the imports (the kernel's high-water mark, reset after importing TensorFlow). Decoded
pixels grow 4x from 15 to 60 photos; the pipeline's peak should grow only by the cached 224 px images
(150 KB each) plus a few photos being decoded in parallel.

Run:    python benchmarks/photo_memory.py [--counts 15,60] [--size 4000x3000]
Prints one JSON object; exit status 1 if the peak grows by more than a quarter of the extra decoded pixels.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def write_photos(folder: str, count: int, width: int, height: int):
    """`count` smooth-gradient JPEGs with noise, half in class a/, half in class b/ (quality 90)."""
    import numpy as np
    import tensorflow as tf
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    base = ((xx / width)[..., None] * [255, 120, 30] + (yy / height)[..., None] * [0, 100, 200]) % 256
    for i in range(count):
        label = "ab"[i % 2]
        os.makedirs(os.path.join(folder, label), exist_ok=True)
        noise = rng.integers(0, 24, size=(height, width, 1))
        image = np.clip(base + noise + 8 * i, 0, 255).astype(np.uint8)
        tf.io.write_file(os.path.join(folder, label, f"{i:03d}.jpg"), tf.io.encode_jpeg(image, quality=90))


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(field + ":"))


def measure(folder: str) -> dict:
    """Child process: peak RSS of listing + checking + two pipeline epochs over the photos of `folder`.

    The peak is counted from here on: importing TensorFlow has a high transient peak of its own, so the
    kernel's high-water mark is reset (/proc/self/clear_refs) once the imports are done.
    """
    from fmkeras.config import DataConfig
    from fmkeras.data import build_datasets, load_source
    cfg = DataConfig(source=f"folder:{folder}", image_size=(224, 224), center_crop=0.875, validation_split=0.0)
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # resets VmHWM to the current RSS
    before = _status_kib("VmRSS")
    data = build_datasets(load_source(cfg), cfg, batch_size=16)
    images = 0
    for _ in range(2):
        for batch, _ in data.train:
            images += int(batch.shape[0])
    peak = _status_kib("VmHWM")
    return {"photos": data.num_train, "images_seen": images, "rss_before_kib": before, "peak_rss_kib": peak,
            "peak_growth_kib": peak - before}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="15,60", help="photo counts measured, each in a fresh process")
    parser.add_argument("--size", default="4000x3000")
    parser.add_argument("--child", nargs=1, metavar="FOLDER", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child[0])))
        return 0
    width, height = (int(v) for v in args.size.split("x"))
    counts = [int(c) for c in args.counts.split(",")]
    with tempfile.TemporaryDirectory() as root:
        runs = []
        for count in counts:
            folder = os.path.join(root, f"photos{count}")
            write_photos(folder, count, width, height)
            out = subprocess.run([sys.executable, __file__, "--child", folder], check=True,
                                 capture_output=True, text=True).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
            runs[-1]["jpeg_bytes"] = sum(os.path.getsize(os.path.join(r, f))
                                         for r, _, fs in os.walk(folder) for f in fs)
    pixel_bytes = width * height * 3
    growth = (runs[-1]["peak_growth_kib"] - runs[0]["peak_growth_kib"]) * 1024
    extra_pixels = (counts[-1] - counts[0]) * pixel_bytes
    result = {"benchmark": "photo_memory", "photo_size": [width, height],
              "decoded_bytes_per_photo": pixel_bytes, "runs": runs,
              "peak_growth_bytes": growth, "extra_decoded_pixel_bytes": extra_pixels,
              "growth_over_extra_pixels": round(growth / extra_pixels, 4),
              "cached_bytes_per_photo": 224 * 224 * 3}
    result["bounded"] = bool(growth <= extra_pixels / 4)
    print(json.dumps(result, indent=2))
    return 0 if result["bounded"] else 1


if __name__ == "__main__":
    sys.exit(main())
