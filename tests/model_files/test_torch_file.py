"""fmkeras/model_files/torch_file.py: legacy PyTorch checkpoints read without torch, hostile ones refused."""
import io
import os
import pickle

import numpy as np
import pytest

from fmkeras.errors import WeightsError
from fmkeras.transfer.package_weights import package_source_file
from fmkeras.backbones import get_backbone
from fmkeras.model_files.torch_file import MAGIC_NUMBER, PROTOCOL_VERSION, UnsafeCheckpointError, read_state_dict

HEADER = b"".join(pickle.dumps(x, protocol=2) for x in (
    MAGIC_NUMBER, PROTOCOL_VERSION, {"protocol_version": 1001, "little_endian": True, "type_sizes": {}}))


class _Touch:
    """Unpickling this would create a file: the classic pickle exploit."""
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.system, (f"touch {self.path}",)


def test_reads_the_real_efficientnet_lite0_checkpoint():
    path = package_source_file(get_backbone("efficientnet_lite0").presets["imagenet"])
    state = read_state_dict(path)
    assert len(state) == 296
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3) and state["_conv_stem.weight"].dtype == np.float32
    assert state["_fc.weight"].shape == (1000, 1280) and state["_bn0.num_batches_tracked"].dtype == np.int64
    # Real, trained values: BatchNorm variances are positive and the classifier is not all zeros.
    assert np.all(state["_bn1.running_var"] > 0) and np.abs(state["_fc.weight"]).mean() > 1e-3


def test_hostile_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    hostile = tmp_path / "hostile.pth"
    hostile.write_bytes(HEADER + pickle.dumps({"w": _Touch(marker)}, protocol=2))
    with pytest.raises(UnsafeCheckpointError, match=r"refusing global (posix|os)\.system"):
        read_state_dict(str(hostile))
    assert not marker.exists()
    # The same payload as the magic number (the first pickle read) is refused as well.
    first = tmp_path / "first.pth"
    first.write_bytes(pickle.dumps(_Touch(marker), protocol=2))
    with pytest.raises(UnsafeCheckpointError, match="refusing global"):
        read_state_dict(str(first))
    assert not marker.exists()


def test_truncated_and_foreign_files_get_clear_errors(tmp_path):
    real = package_source_file(get_backbone("efficientnet_lite0").presets["imagenet"])
    with open(real, "rb") as fh:
        head = fh.read(200_000)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(head)
    with pytest.raises(WeightsError, match=r"truncated\.pth"):
        read_state_dict(str(truncated))
    zipped = tmp_path / "new_format.pth"
    zipped.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(WeightsError, match="zip-format PyTorch checkpoint"):
        read_state_dict(str(zipped))
    not_torch = tmp_path / "other.pth"
    not_torch.write_bytes(pickle.dumps(12345, protocol=2))
    with pytest.raises(WeightsError, match="wrong magic number"):
        read_state_dict(str(not_torch))
    not_tensors = tmp_path / "not_tensors.pth"
    not_tensors.write_bytes(HEADER + pickle.dumps({"w": [1, 2, 3]}, protocol=2))
    with pytest.raises(UnsafeCheckpointError, match="not a plain state dict of tensors"):
        read_state_dict(str(not_tensors))
    with pytest.raises(WeightsError, match="cannot read PyTorch checkpoint"):
        read_state_dict(str(tmp_path / "missing.pth"))
