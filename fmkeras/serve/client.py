"""A small Python client for the fmkeras (or any TF Serving) REST predict API.

Example:
    from fmkeras.serve.client import predict
    out = predict("http://127.0.0.1:8501", "fashion", images=[open("shoe.png", "rb").read()])
    out["class_names"], out["probabilities"]
    predict("http://127.0.0.1:8501", "text_debian", texts=["chess engine with network play"])["class_names"]
"""
from __future__ import annotations

import base64
import http.client
import json
import urllib.parse

import numpy as np


class ServingClientError(Exception):
    """The server answered with an error status; `code` is the HTTP status."""

    def __init__(self, code: int, message: str):
        super().__init__(f"HTTP {code}: {message}")
        self.code, self.message = code, message


def _model_path(model: str, version=None, label=None) -> str:
    path = f"/v1/models/{urllib.parse.quote(model, safe='')}"
    if version is not None:
        path += f"/versions/{int(version)}"
    elif label is not None:
        path += f"/labels/{urllib.parse.quote(label, safe='')}"
    return path


def request_json(url: str, method: str, path: str, payload=None, timeout: float = 30.0) -> dict:
    """Sends one request to `url` (http://host:port); returns the decoded JSON or raises ServingClientError."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        body = None if payload is None else json.dumps(payload).encode("utf-8")
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        response = conn.getresponse()
        data = json.loads(response.read() or b"{}")
    finally:
        conn.close()
    if response.status != 200:
        raise ServingClientError(response.status, data.get("error", str(data)))
    return data


def predict_request(images=None, pixels=None, texts=None) -> dict:
    """The request body: encoded images as row-format b64 instances, uint8 pixels as columnar inputs, or
    raw strings for a text classifier's `serving_default`."""
    if sum(value is not None for value in (images, pixels, texts)) != 1:
        raise ValueError("pass exactly one of images= (encoded PNG/JPEG bytes), pixels= (uint8 NHWC array) "
                         "or texts= (strings, for a text classifier)")
    if texts is not None:
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise ValueError("texts must be a list of str")
        return {"signature_name": "serving_default", "instances": list(texts)}
    if images is not None:
        return {"signature_name": "serving_default",
                "instances": [{"b64": base64.b64encode(bytes(b)).decode("ascii")} for b in images]}
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or pixels.ndim != 4:
        raise ValueError(f"pixels must be a uint8 (N, H, W, C) array. Received: {pixels.dtype} {pixels.shape}")
    return {"signature_name": "serve_pixels", "inputs": {"pixels": pixels.tolist()}}


def predict(url: str, model: str, images=None, pixels=None, version: int = None, label: str = None,
            timeout: float = 30.0, texts=None) -> dict:
    """Classifies images (or texts) on a running server.

    Args:
        url: str. Server address, e.g. "http://127.0.0.1:8501".
        images: list of bytes. Encoded PNG/JPEG/GIF/BMP images (the `serving_default` signature).
        pixels: uint8 array (N, H, W, C) (the `serve_pixels` signature).
        texts: list of str. Raw texts for a text classifier (its `serving_default` signature).
        version / label: int / str. A specific version or version label; default the latest.

    Returns a dict of the signature's outputs: probabilities (N, K) float32 array and, for a classifier,
    class_ids (N,) int array and class_names list of str; for a multi-label model labels (N, K) bool array.
    """
    reply = request_json(url, "POST", _model_path(model, version, label) + ":predict",
                         predict_request(images, pixels, texts), timeout)
    if "predictions" in reply:
        rows = reply["predictions"]
        columns = {k: [row[k] for row in rows] for k in rows[0]} if rows else {}
    else:
        columns = reply["outputs"]
    out = {"probabilities": np.asarray(columns["probabilities"], dtype=np.float32)}
    for name, values in columns.items():
        if name != "probabilities":
            out[name] = list(values) if name == "class_names" else np.asarray(values)
    return out


def model_status(url: str, model: str, version: int = None, timeout: float = 30.0) -> list:
    """The `model_version_status` list of a model."""
    return request_json(url, "GET", _model_path(model, version), timeout=timeout)["model_version_status"]


def model_metadata(url: str, model: str, version: int = None, timeout: float = 30.0) -> dict:
    """The metadata (signature defs) of a model version."""
    return request_json(url, "GET", _model_path(model, version) + "/metadata", timeout=timeout)
