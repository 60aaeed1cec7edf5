"""Model files are programs: inspect a `.keras`/`.h5` before Keras deserialises anything in it.

`keras.saving.load_model(safe_mode=True)` alone has had bypasses (CVE-2025-1550: arbitrary
module imports from config.json; CVE-2025-8747/9905: unsafe-deserialization gadgets, Lambda
layers in legacy .h5; CVE-2025-12058: a lookup layer's `vocabulary` read from any path or URL at
load time). fmkeras needs Keras >= 3.12 (the release with all of those fixes; setup.cfg's floor is
also checked at run time) and, before calling it, checks:
- the archive: member names (no absolute paths, `..` or unexpected files), member count,
  sizes and compression ratios (zip bombs);
- every serialized object in config.json (or an .h5's `model_config`): its module must be on an
  allow-list of Keras namespaces or an fmkeras class registered with Keras; Lambda layers,
  serialized Python functions/bytecode and function references outside keras.activations,
  keras.losses, keras.metrics and functions fmkeras registered with Keras are refused.
Anything refused raises UnsafeModelError naming the file and the offending entry.

Example:
    model = load_keras_model("runs/x/model.keras")        # inspected, then safe_mode=True
"""
from __future__ import annotations

import json
import os
import posixpath
import re
import zipfile

import keras

from fmkeras.errors import DataError

KERAS_MEMBERS = ("config.json", "metadata.json", "model.weights.h5")
MIN_KERAS = (3, 12)  # CVE-2025-1550 (3.9), -8747 and -9906 (3.11), -12058 (3.12)
PATH_KEYS = ("vocabulary", "idf_weights")  # a string here is a file Keras reads while loading
MAX_MEMBERS = 10_000
MAX_TOTAL_BYTES = 8 << 30       # uncompressed size of all members
MAX_CONFIG_BYTES = 64 << 20
MAX_RATIO = 100                 # uncompressed / compressed, checked for members over 1 MiB
MAX_DEPTH = 200                 # JSON nesting of config.json
ALLOWED_MODULES = frozenset({
    "keras", "keras.layers", "keras.initializers", "keras.regularizers", "keras.constraints",
    "keras.optimizers", "keras.optimizers.schedules", "keras.losses", "keras.metrics", "keras.activations",
    "keras.models", "keras.src.models.functional", "keras.src.models.sequential", "keras.src.models.model",
})
FUNCTION_MODULES = frozenset({"keras.activations", "keras.losses", "keras.metrics"})
REFUSED_CLASSES = frozenset({"Lambda", "TFOpLambda", "SlicingOpLambda", "__lambda__", "__python_function__",
                             "TFSMLayer", "TorchModuleWrapper", "JaxLayer", "FlaxLayer"})
INTERNAL_CLASSES = frozenset({"__keras_tensor__", "__tensor__", "__numpy__", "__bytes__", "__typespec__",
                              "__slice__", "__ellipsis__", "__tuple__"})


class UnsafeModelError(DataError):
    """A model file was refused before loading; the message names the file and the reason."""


def _check_entry(entry: dict, where: str, path: str):
    module, name = entry.get("module"), entry.get("class_name")
    registered = entry.get("registered_name")
    if not isinstance(name, str) or (module is not None and not isinstance(module, str)):
        raise UnsafeModelError(f"{path}: malformed object at {where}")
    if name in REFUSED_CLASSES:
        raise UnsafeModelError(f"{path}: refused {name} at {where} (it runs code or loads files outside the "
                               f"archive when loaded)")
    config = entry.get("config")
    if isinstance(config, dict):
        for key in PATH_KEYS:
            if isinstance(config.get(key), str):
                raise UnsafeModelError(f"{path}: refused {name} at {where}: its {key} is the path "
                                       f"{config[key][:200]!r}, a file read outside the archive when loaded")
    if registered is not None and not isinstance(registered, str):
        raise UnsafeModelError(f"{path}: malformed registered_name at {where}")
    if name == "function":
        target = entry.get("config")
        if module == "builtins" and isinstance(target, str) and target.startswith("fmkeras>") \
                and keras.saving.get_registered_object(target) is not None:
            return  # a function fmkeras registered with Keras (e.g. a TextVectorization standardize)
        if module not in FUNCTION_MODULES or not isinstance(target, str) or target.startswith("_") \
                or not callable(getattr(_module(module), target, None)):
            raise UnsafeModelError(f"{path}: refused function reference {module}.{target} at {where}")
        return
    if module is None:
        if registered not in (None, name):
            raise UnsafeModelError(f"{path}: refused registered_name {registered!r} for {name} at {where}")
        if name not in INTERNAL_CLASSES and name != "Functional" and not hasattr(keras.layers, name) \
                and not hasattr(keras.models, name):
            raise UnsafeModelError(f"{path}: refused unknown class {name!r} at {where}")
        return
    if module.startswith("fmkeras."):
        expected = f"fmkeras>{name}"
        if registered != expected or keras.saving.get_registered_object(expected) is None:
            raise UnsafeModelError(f"{path}: refused {module}.{name} at {where} (not a registered fmkeras class)")
        return
    if module not in ALLOWED_MODULES:
        raise UnsafeModelError(f"{path}: refused import of module {module!r} (class {name!r}) at {where}")
    if registered not in (None, name):
        raise UnsafeModelError(f"{path}: refused registered_name {registered!r} for {module}.{name} at {where} "
                               f"(Keras would load that registered object instead)")


def _module(name: str):
    return {"keras.activations": keras.activations, "keras.losses": keras.losses,
            "keras.metrics": keras.metrics}[name]


def check_config(config, path: str):
    """Walks a deserialised model config; raises UnsafeModelError on the first refused object."""
    stack = [(config, "config", 0)]
    while stack:
        node, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise UnsafeModelError(f"{path}: config nested deeper than {MAX_DEPTH} levels at {where}")
        if isinstance(node, dict):
            if "class_name" in node:
                _check_entry(node, where, path)
            stack.extend((v, f"{where}.{k}", depth + 1) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(node))


def _parse_json(text, path: str):
    try:
        return json.loads(text)
    except RecursionError:
        raise UnsafeModelError(f"{path}: config.json is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise UnsafeModelError(f"{path}: config.json is not valid JSON: {err}") from None


def _check_member(info: zipfile.ZipInfo, path: str):
    name = info.filename
    norm = posixpath.normpath(name)
    if name.startswith(("/", "\\")) or "\\" in name or ":" in name or norm.startswith("..") or ".." in name.split("/"):
        raise UnsafeModelError(f"{path}: refused archive member {name!r} (path traversal)")
    if name not in KERAS_MEMBERS and not name.startswith("assets/"):
        raise UnsafeModelError(f"{path}: unexpected archive member {name!r}; a .keras file holds "
                               f"{', '.join(KERAS_MEMBERS)} and assets/")
    if info.file_size > (1 << 20) and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        raise UnsafeModelError(f"{path}: archive member {name!r} expands {info.file_size} bytes from "
                               f"{info.compress_size} (ratio > {MAX_RATIO}: zip bomb)")


def inspect_keras_archive(path: str) -> dict:
    """Checks a .keras zip without extracting it; returns its parsed config.json."""
    if not zipfile.is_zipfile(path):
        raise UnsafeModelError(f"{path}: not a .keras archive (not a zip file)")
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            raise UnsafeModelError(f"{path}: {len(infos)} archive members (limit {MAX_MEMBERS})")
        for info in infos:
            _check_member(info, path)
        total = sum(i.file_size for i in infos)
        if total > MAX_TOTAL_BYTES:
            raise UnsafeModelError(f"{path}: archive expands to {total} bytes (limit {MAX_TOTAL_BYTES})")
        names = [i.filename for i in infos]
        if "config.json" not in names:
            raise UnsafeModelError(f"{path}: no config.json in the archive")
        config_info = archive.getinfo("config.json")
        if config_info.file_size > MAX_CONFIG_BYTES:
            raise UnsafeModelError(f"{path}: config.json is {config_info.file_size} bytes (limit {MAX_CONFIG_BYTES})")
        config = _parse_json(archive.read("config.json"), path)
    check_config(config, path)
    return config


def inspect_h5(path: str):
    """Checks the `model_config` an .h5 may carry (weights-only files have none)."""
    import h5py
    try:
        with h5py.File(path, "r") as fh:
            raw = fh.attrs.get("model_config")
    except OSError as err:
        raise UnsafeModelError(f"{path}: not a readable HDF5 file: {err}") from None
    if raw is None:
        return None
    config = _parse_json(raw.decode() if isinstance(raw, bytes) else raw, path)
    check_config(config, path)
    return config


def inspect_model_file(path: str):
    """Inspects a .keras or .h5 file; raises UnsafeModelError if it must not be loaded."""
    if not os.path.isfile(path):
        raise UnsafeModelError(f"model file not found: {path}")
    if path.endswith(".keras"):
        return inspect_keras_archive(path)
    if path.endswith(".h5"):
        return inspect_h5(path)
    raise UnsafeModelError(f"{path}: unsupported model file type (expected .keras or .h5)")


def check_keras_version(version: str = None):
    """Raises UnsafeModelError when the installed Keras predates the 2025 safe_mode fixes."""
    version = version or keras.__version__
    parts = tuple(int(p) for p in re.findall(r"\d+", version)[:2])
    if parts < MIN_KERAS:
        raise UnsafeModelError(f"Keras {version} has known safe_mode bypasses (CVE-2025-1550, -8747, -9906, "
                               f"-12058); model files are loaded only with Keras >= "
                               f"{'.'.join(map(str, MIN_KERAS))}: pip install -U keras")


def load_keras_model(path: str, compile: bool = True) -> keras.Model:
    """Inspects `path`, then loads it with Keras safe mode on (never a path from a request)."""
    check_keras_version()
    inspect_model_file(path)
    if not path.endswith(".keras"):
        raise UnsafeModelError(f"{path}: only .keras model files are loaded as models")
    return keras.saving.load_model(path, compile=compile, safe_mode=True)
