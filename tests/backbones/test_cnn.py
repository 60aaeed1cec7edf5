"""fmkeras/backbones/cnn.py and the registry."""
import pytest

from fmkeras.backbones import get_backbone, list_backbones
from fmkeras.errors import ConfigError


def test_cnn_is_registered_with_output_feature_map():
    spec = get_backbone("cnn")
    model = spec.builder((28, 28, 1), filters=(32, 64, 128))
    assert model.output_shape == (None, 3, 3, 128)
    # conv(1->32)+bn, conv(32->64)+bn, conv(64->128)+bn; convs have no bias under BN.
    assert model.count_params() == (9 * 32 + 4 * 32) + (9 * 32 * 64 + 4 * 64) + (9 * 64 * 128 + 4 * 128)


def test_two_conv_reference_net_without_batch_norm():
    model = get_backbone("cnn").builder((32, 32, 3), filters=(32, 64), batch_norm=False)
    assert model.count_params() == (27 * 32 + 32) + (9 * 32 * 64 + 64)


def test_unknown_backbone_lists_names():
    assert "cnn" in list_backbones()
    with pytest.raises(ConfigError, match="unknown backbone 'resnet9000'; registered backbones: .*cnn"):
        get_backbone("resnet9000")
