"""Predict requests and responses in TF Serving's REST JSON formats, validated strictly.

Row format:      {"signature_name": "...", "instances": [<instance>, ...]}
Columnar format: {"signature_name": "...", "inputs": <value> | {"<input>": <value>, ...}}
Binary values are {"b64": "<base64>"}; string outputs whose name ends in `_bytes` come back
the same way. Every problem raises InvalidArgument naming the input and what was expected.
"""
from __future__ import annotations

import base64
import binascii
import json
import zlib

import numpy as np
import tensorflow as tf

from fmkeras.serve.status import FailedPrecondition, InvalidArgument, PayloadTooLarge, UnsupportedMediaType

DEFAULT_SIGNATURE = "serving_default"


def decode_body(body: bytes, encoding: str, max_bytes: int) -> bytes:
    """Undoes a `Content-Encoding` (identity or gzip), never inflating past `max_bytes` (gzip bombs)."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding != "gzip":
        raise UnsupportedMediaType(f"Content-Encoding '{encoding[:40]}' is not supported; use gzip or identity")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, max_bytes + 1)
    except zlib.error as err:
        raise InvalidArgument(f"gzip body is corrupt: {err}") from None
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"gzip body inflates past the limit of {max_bytes} bytes")
    if not inflater.eof or inflater.unused_data:
        raise InvalidArgument("gzip body is truncated or has trailing data")
    return data


def _string_quotes(text: np.ndarray) -> np.ndarray:
    """Positions of the quotes that open or close JSON strings. Raises InvalidArgument for a string that
    never ends."""
    quotes = np.flatnonzero(text == ord('"'))
    if quotes.size % 2:
        raise InvalidArgument("JSON Parse error: unterminated string")
    return quotes


def json_shape(body: bytes) -> tuple:
    """(deepest [ / { nesting, number of arrays and objects) of a JSON text, ignoring brackets inside
    strings, in linear time: nothing here can backtrack.

    A backslash always starts a two-byte escape, so replacing `\\\\` pairs left to right, then `\\"`,
    leaves exactly the quotes that delimit strings (bytes.replace is one linear pass each).
    """
    plain = body.replace(b"\\\\", b"__").replace(b'\\"', b"__") if b"\\" in body else body
    text = np.frombuffer(plain, dtype=np.uint8)
    quotes = _string_quotes(text)
    opening = (text == ord("[")) | (text == ord("{"))
    brackets = np.flatnonzero(opening | (text == ord("]")) | (text == ord("}")))
    outside = brackets[np.searchsorted(quotes, brackets) % 2 == 0]  # an even number of quotes before it
    steps = np.where(opening[outside], 1, -1)
    return int(np.cumsum(steps).max(initial=0)), int((steps == 1).sum())


def json_depth(body: bytes) -> int:
    """Deepest [ / { nesting of a JSON text, ignoring brackets inside strings."""
    return json_shape(body)[0]


def load_json(body: bytes, max_depth: int, max_containers: int = None):
    """Parses a request body, refusing nesting deeper than `max_depth` or more than `max_containers`
    arrays/objects before parsing it (both cost memory far beyond the body's size)."""
    depth, containers = json_shape(body)
    if depth > max_depth:
        raise InvalidArgument(f"JSON nesting depth {depth} exceeds the limit of {max_depth}")
    if max_containers is not None and containers > max_containers:
        raise InvalidArgument(f"JSON has {containers} arrays/objects; the limit is {max_containers} "
                              f"(serve.max_json_containers)")
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as err:  # UnicodeDecodeError is a ValueError
        raise InvalidArgument(f"JSON Parse error: {str(err)[:200]}") from None


def _binary(value, where: str) -> bytes:
    data = value["b64"]
    if not isinstance(data, str):
        raise InvalidArgument(f"{where}: 'b64' must hold a base64 string, got {type(data).__name__}")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        try:  # TF Serving also accepts the web-safe alphabet
            return base64.b64decode(data, altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise InvalidArgument(f"{where}: 'b64' value is not valid base64") from None


def _is_binary(value) -> bool:
    return isinstance(value, dict) and set(value) == {"b64"}


def _strings(value, where: str):
    """A (nested) list of strings / {"b64"} values -> nested list of bytes."""
    if isinstance(value, list):
        return [_strings(v, where) for v in value]
    if _is_binary(value):
        return _binary(value, where)
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:  # JSON allows lone surrogates ("\ud800") that UTF-8 cannot hold
            raise InvalidArgument(f"{where}: string is not valid Unicode (lone surrogate)") from None
    raise InvalidArgument(f"{where}: expected a string or {{\"b64\": ...}}, got {type(value).__name__}")


def to_array(value, spec: tf.TensorSpec, name: str, batched: bool) -> np.ndarray:
    """A JSON value -> numpy array matching `spec` (dtype, rank, fixed dims)."""
    dtype = spec.dtype
    if dtype == tf.string:
        array = np.array(_strings(value, f"input '{name}'"), dtype=object)
    else:
        try:
            array = np.asarray(value)
        except (ValueError, OverflowError):
            raise InvalidArgument(f"input '{name}' is ragged: all instances must have the same shape") from None
        if array.dtype.kind not in "iuf":
            raise InvalidArgument(f"input '{name}' must be a (nested) list of numbers of one shape for dtype "
                                  f"{dtype.name}")
        if dtype.is_integer:
            if array.size and (array.dtype.kind == "f" and not np.all(np.isfinite(array) & (array == np.round(array)))):
                raise InvalidArgument(f"input '{name}' must hold integers for dtype {dtype.name}")
            if array.size and (array.min() < dtype.min or array.max() > dtype.max):
                raise InvalidArgument(f"input '{name}' values must be in [{dtype.min}, {dtype.max}] for "
                                      f"dtype {dtype.name}")
        array = array.astype(dtype.as_numpy_dtype)
    if not batched:
        array = array[np.newaxis]
    shape = spec.shape
    if shape.rank is not None:
        if array.ndim != shape.rank:
            raise InvalidArgument(f"input '{name}' must have rank {shape.rank} {_shape_text(shape)} "
                                  f"(batch included), got shape {list(array.shape)}")
        for i, (want, got) in enumerate(zip(shape.as_list(), array.shape)):
            if (want is not None and want != got) or got == 0:
                raise InvalidArgument(f"input '{name}' dimension {i} must be "
                                      f"{want if want is not None else '>= 1'}, got shape {list(array.shape)}")
    return array


def _shape_text(shape) -> str:
    return "[" + ", ".join("-1" if d is None else str(d) for d in shape.as_list()) + "]"


def _check_count(value, max_instances, where: str):
    """Refuses more than `max_instances` instances before any of them is converted."""
    if max_instances is not None and isinstance(value, list) and len(value) > max_instances:
        raise InvalidArgument(f"{len(value)} instances in {where} exceed the limit of {max_instances} per request "
                              f"(serve.max_batch_instances)")


def parse_predict(request, input_specs: dict, max_instances: int = None) -> tuple:
    """A decoded predict request -> (signature_name, {input: array}, "row" | "columnar").

    `input_specs` maps signature names to {input name: TensorSpec}; more than `max_instances`
    instances are refused before any per-instance conversion.
    """
    if not isinstance(request, dict):
        raise InvalidArgument("request body must be a JSON object")
    unknown = set(request) - {"signature_name", "instances", "inputs"}
    if unknown:
        raise InvalidArgument(f"unknown key '{sorted(unknown)[0]}'; a predict request has signature_name, "
                              f"instances or inputs")
    signature = request.get("signature_name", DEFAULT_SIGNATURE)
    if not isinstance(signature, str):
        raise InvalidArgument("'signature_name' must be a string")
    if signature not in input_specs:
        raise FailedPrecondition(f"Serving signature name: \"{signature}\" not found in signature def")
    specs = input_specs[signature]
    if ("instances" in request) == ("inputs" in request):
        raise InvalidArgument("Missing 'inputs' or 'instances' key" if "inputs" not in request
                              else "Not both 'instances' and 'inputs' keys can be specified")
    if "instances" in request:
        _check_count(request["instances"], max_instances, "'instances'")
        return signature, _rows(request["instances"], specs), "row"
    inputs = request["inputs"]
    for name, value in (inputs.items() if isinstance(inputs, dict) else [("inputs", inputs)]):
        _check_count(value, max_instances, f"'{name}'")
    return signature, _columns(inputs, specs), "columnar"


def _rows(instances, specs: dict) -> dict:
    if not isinstance(instances, list) or not instances:
        raise InvalidArgument("'instances' must be a non-empty list")
    named = [isinstance(i, dict) and not _is_binary(i) for i in instances]
    if any(named) and not all(named):
        raise InvalidArgument("instances must all be objects of named inputs or all be plain values")
    if not all(named):
        if len(specs) != 1:
            raise InvalidArgument(f"this signature has inputs {sorted(specs)}: each instance must be an object")
        (name, spec), = specs.items()
        return {name: to_array(instances, spec, name, batched=True)}
    for instance in instances:
        if set(instance) != set(specs):
            raise InvalidArgument(f"each instance must have exactly the inputs {sorted(specs)}, "
                                  f"got {sorted(instance)[:8]}")
    return {name: to_array([i[name] for i in instances], spec, name, batched=True) for name, spec in specs.items()}


def _columns(inputs, specs: dict) -> dict:
    if isinstance(inputs, dict) and not _is_binary(inputs):
        if set(inputs) != set(specs):
            raise InvalidArgument(f"'inputs' must have exactly the inputs {sorted(specs)}, got {sorted(inputs)[:8]}")
        return {name: to_array(inputs[name], spec, name, batched=True) for name, spec in specs.items()}
    if len(specs) != 1:
        raise InvalidArgument(f"this signature has inputs {sorted(specs)}: 'inputs' must be an object")
    (name, spec), = specs.items()
    return {name: to_array(inputs, spec, name, batched=True)}


def _json_value(array: np.ndarray, name: str):
    if array.dtype == object or array.dtype.kind == "S":
        if name.endswith("_bytes"):
            return np.vectorize(lambda b: {"b64": base64.b64encode(b).decode("ascii")}, otypes=[object])(
                array).tolist() if array.size else array.tolist()
        return np.vectorize(lambda b: b.decode("utf-8", "replace"), otypes=[object])(array).tolist() \
            if array.size else array.tolist()
    return array.tolist()


def format_predict(outputs: dict, fmt: str) -> dict:
    """Outputs -> {"predictions": [...]} (row) or {"outputs": ...} (columnar), as TF Serving."""
    values = {name: _json_value(array, name) for name, array in outputs.items()}
    if fmt == "columnar":
        return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    count = len(next(iter(values.values())))
    return {"predictions": [{name: value[i] for name, value in values.items()} for i in range(count)]}
