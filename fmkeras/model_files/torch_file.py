"""Reads the tensors of a PyTorch checkpoint in the legacy (non-zip) format, without torch and without running it.

A legacy `.pth` file is five pickles followed by raw storage bytes: a magic number, the protocol
version, a sys-info dict, the state dict (tensors point at storages through persistent ids), and the
list of storage keys in the order their bytes follow (each: int64 element count, then the data).
A pickle can call any importable function, so this reader resolves only the few globals a state
dict of tensors needs (`collections.OrderedDict`, `torch._utils._rebuild_tensor_v2` and the
`torch.*Storage` types) to local stand-ins, and refuses every other global with an error naming
it, before anything is called. Nothing from the file is ever imported or executed.

Example:
    state = read_state_dict("efficientnet-lite0-57934424.pth")
    state["_conv_stem.weight"].shape   # (32, 3, 3, 3), a numpy array
"""
from __future__ import annotations

import collections
import io
import pickle

import numpy as np

from fmkeras.errors import WeightsError

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class UnsafeCheckpointError(WeightsError):
    """The checkpoint asks for something a plain state dict of tensors never needs."""


class _Storage:
    """Stand-in for a torch storage: its dtype, and its data once the bytes after the pickles are read."""
    __slots__ = ("key", "dtype", "numel", "data")

    def __init__(self, key: str, dtype, numel: int):
        self.key, self.dtype, self.numel, self.data = key, dtype, numel, None


class _TensorRef:
    """A tensor as (storage, offset, shape, strides) in elements; materialized after the storages are read."""
    __slots__ = ("storage", "offset", "shape", "stride")

    def __init__(self, storage, offset, shape, stride):
        self.storage, self.offset, self.shape, self.stride = storage, offset, tuple(shape), tuple(stride)

    def __setstate__(self, state):  # BUILD on a tensor is never needed; refuse it rather than guess
        raise UnsafeCheckpointError("checkpoint sets state on a tensor (BUILD opcode); refusing it")

    def numpy(self) -> np.ndarray:
        data, item = self.storage.data, np.dtype(self.storage.dtype).itemsize
        if self.shape and (min(self.shape) < 0 or any(s < 0 for s in self.stride)):
            raise WeightsError(f"tensor in storage {self.storage.key} has a negative size or stride")
        last = self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.stride)) if all(self.shape) else 0
        if self.offset < 0 or (all(self.shape) and last >= len(data)):
            raise WeightsError(f"tensor in storage {self.storage.key} reads past its storage "
                               f"({len(data)} elements)")
        view = np.lib.stride_tricks.as_strided(data[self.offset:], shape=self.shape,
                                               strides=[s * item for s in self.stride])
        return np.array(view)  # a copy: the caller owns it, the file's buffer can go


def _rebuild_tensor_v2(storage, offset, shape, stride, requires_grad=False, hooks=None, metadata=None):
    if not isinstance(storage, _Storage):
        raise UnsafeCheckpointError("_rebuild_tensor_v2 called on something that is not a storage")
    return _TensorRef(storage, int(offset), shape, stride)


class _StorageType:
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickler that knows only what a state dict of tensors is made of."""

    def __init__(self, fh, path: str, storages: dict):
        super().__init__(fh)
        self.path, self.storages = path, storages

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafeCheckpointError(f"{self.path}: refusing global {module}.{name} (a tensor checkpoint needs only "
                                    f"OrderedDict, _rebuild_tensor_v2 and torch storage types)")

    def persistent_load(self, pid):
        # ("storage", type, key, location, numel[, view_metadata=None]); views of storages are not supported.
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage" and pid[5:] in ((), (None,))
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str) and isinstance(pid[4], int)):
            raise UnsafeCheckpointError(f"{self.path}: unexpected persistent id {str(pid)[:80]}")
        _, kind, key, _location, numel = pid[:5]
        if key not in self.storages:
            self.storages[key] = _Storage(key, STORAGE_DTYPES[kind.name], numel)
        return self.storages[key]


def _load_pickle(fh, path: str, storages: dict, what: str):
    try:
        return _StateDictUnpickler(fh, path, storages).load()
    except UnsafeCheckpointError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as err:
        raise WeightsError(f"{path} is not a readable PyTorch checkpoint ({what}: {type(err).__name__}: "
                           f"{str(err)[:120]})") from None


def _read_storage_bytes(fh, path: str, storages: dict, keys):
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise WeightsError(f"{path}: storage key list is malformed")
    for key in keys:
        if key not in storages:
            raise WeightsError(f"{path}: storage {key} has data but no tensor uses it")
        storage = storages[key]
        head = fh.read(8)
        if len(head) != 8:
            raise WeightsError(f"{path} is truncated (storage {key}: no size)")
        numel = int.from_bytes(head, "little", signed=True)
        nbytes = numel * np.dtype(storage.dtype).itemsize
        if numel != storage.numel or numel < 0:
            raise WeightsError(f"{path}: storage {key} declares {numel} elements, its tensors expect {storage.numel}")
        raw = fh.read(nbytes)
        if len(raw) != nbytes:
            raise WeightsError(f"{path} is truncated (storage {key}: {len(raw)} of {nbytes} bytes)")
        storage.data = np.frombuffer(raw, dtype=np.dtype(storage.dtype).newbyteorder("<"))
    missing = [key for key, storage in storages.items() if storage.data is None]
    if missing:
        raise WeightsError(f"{path}: storages {', '.join(missing[:5])} have no data")


def read_state_dict(path: str) -> dict:
    """{name: numpy array} of a legacy-format PyTorch state dict; UnsafeCheckpointError on anything else."""
    try:
        with open(path, "rb") as fh:
            content = fh.read()
    except OSError as err:
        raise WeightsError(f"cannot read PyTorch checkpoint {path}: {err.strerror}") from None
    if content[:2] == b"PK":
        raise WeightsError(f"{path} is a zip-format PyTorch checkpoint; only the legacy format is supported")
    fh, storages = io.BytesIO(content), {}
    if _load_pickle(fh, path, storages, "magic number") != MAGIC_NUMBER:
        raise WeightsError(f"{path} is not a PyTorch checkpoint (wrong magic number)")
    if _load_pickle(fh, path, storages, "protocol version") != PROTOCOL_VERSION:
        raise WeightsError(f"{path}: unsupported PyTorch checkpoint protocol")
    sys_info = _load_pickle(fh, path, storages, "system info")
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian", False):
        raise WeightsError(f"{path}: only little-endian checkpoints are supported")
    state = _load_pickle(fh, path, storages, "state dict")
    if not isinstance(state, dict) or not all(isinstance(v, _TensorRef) for v in state.values()):
        raise UnsafeCheckpointError(f"{path}: the checkpoint is not a plain state dict of tensors")
    _read_storage_bytes(fh, path, storages, _load_pickle(fh, path, storages, "storage keys"))
    return {str(name): ref.numpy() for name, ref in state.items()}
