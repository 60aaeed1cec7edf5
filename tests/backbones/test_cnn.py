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


def test_fused_batch_norm_matches_keras_and_round_trips(tmp_path):
    import keras
    import numpy as np
    import tensorflow as tf

    from fmkeras.backbones.cnn import FusedBatchNormalization

    x = tf.random.stateless_normal([8, 5, 5, 3], seed=[1, 2]) * 3.0 + 1.0
    keras_bn, fused_bn = keras.layers.BatchNormalization(), FusedBatchNormalization()
    np.testing.assert_allclose(fused_bn(x, training=True), keras_bn(x, training=True), atol=1e-5)
    np.testing.assert_allclose(fused_bn.moving_mean, keras_bn.moving_mean, atol=1e-6)
    # the moving variance takes the unbiased batch variance (n / (n - 1) x Keras 3's)
    n = 8 * 5 * 5
    unbiased = np.var(x.numpy(), axis=(0, 1, 2)) * n / (n - 1)
    np.testing.assert_allclose(fused_bn.moving_variance, 0.99 + 0.01 * unbiased, rtol=1e-5)
    np.testing.assert_allclose(fused_bn(x, training=False), keras_bn(x, training=False), rtol=1e-3, atol=1e-3)

    model = get_backbone("cnn").builder((28, 28, 1), filters=(8, 16), batch_norm="fused")
    assert model.count_params() == get_backbone("cnn").builder((28, 28, 1), filters=(8, 16)).count_params()
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert any(isinstance(layer, FusedBatchNormalization) for layer in loaded.layers)
    images = np.random.default_rng(0).random((2, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(loaded(images), model(images), atol=1e-6)


def test_fused_batch_norm_trains_in_mixed_bfloat16():
    import keras
    import tensorflow as tf

    from fmkeras.backbones.cnn import FusedBatchNormalization

    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        layer = FusedBatchNormalization()
        x = tf.cast(tf.random.stateless_normal([4, 3, 3, 2], seed=[3, 4]), "bfloat16")
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(tf.cast(y, "float32") ** 2)
        assert y.dtype == tf.bfloat16 and layer.moving_mean.dtype == "float32"
        assert tape.gradient(loss, x).dtype == tf.bfloat16
    finally:
        keras.config.set_dtype_policy("float32")


def test_batch_norm_option_is_checked():
    with pytest.raises(ValueError, match="batch_norm must be true, false or 'fused'"):
        get_backbone("cnn").builder((28, 28, 1), filters=(8,), batch_norm="yes")


def test_pool_first_normalizes_the_pooled_map_with_the_same_weights():
    import keras
    import numpy as np
    build = get_backbone("cnn").builder
    plain = build((28, 28, 1), filters=(8, 16), convs_per_block=2, batch_norm="fused")
    pooled = build((28, 28, 1), filters=(8, 16), convs_per_block=2, batch_norm="fused", pool_first=True)
    assert pooled.output_shape == plain.output_shape == (None, 7, 7, 16)
    assert pooled.count_params() == plain.count_params()
    names = [layer.name for layer in pooled.layers]
    # in each block the first conv keeps Conv-BN-ReLU; the last one is Conv-Pool-BN-ReLU
    assert names[1:9] == ["block1_conv1", "block1_bn1", "block1_relu1", "block1_conv2", "block1_pool",
                          "block1_bn2", "block1_relu2", "block2_conv1"]
    # BN's statistics come from the pooled map: a quarter of the pixels at block 1's last conv
    assert pooled.get_layer("block1_bn2").input.shape[1:3] == (14, 14)
    assert plain.get_layer("block1_bn2").input.shape[1:3] == (28, 28)
    # with the identity BN of a fresh layer at inference, max-pooling commutes with the monotone BN-ReLU
    pooled.set_weights(plain.get_weights())
    x = np.random.default_rng(0).uniform(0, 1, (2, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(pooled(x, training=False), plain(x, training=False), atol=1e-5)
    assert isinstance(pooled.get_layer("block2_pool"), keras.layers.MaxPooling2D)


@pytest.mark.parametrize("pool_first", [False, True])
def test_last_conv_valid_sees_the_whole_last_map_at_a_ninth_of_the_cost(pool_first):
    import numpy as np
    build = get_backbone("cnn").builder
    kw = dict(filters=(8, 16, 16, 32), batch_norm="fused", pool_first=pool_first)
    same, valid = build((28, 28, 1), **kw), build((28, 28, 1), last_conv_valid=True, **kw)
    assert same.output_shape == valid.output_shape == (None, 1, 1, 32)  # 28 -> 14 -> 7 -> 3 -> 1 either way
    assert same.count_params() == valid.count_params()  # the same layers: only padding and pooling differ
    assert valid.get_layer("block4_conv1").padding == "valid" and "block4_pool" not in [
        layer.name for layer in valid.layers]
    assert valid.get_layer("block4_conv1").output.shape[1:3] == (1, 1)  # one output (1/9 of the 3x3 MACs)
    assert same.get_layer("block4_conv1").output.shape[1:3] == (3, 3)
    # every cell of the last 3x3 map reaches the output; "same" + 2x2 pooling drops 5 of the 9
    x = np.zeros((1, 28, 28, 1), "float32")
    bottom_right = x.copy()
    bottom_right[0, 20:, 20:] = 255.0
    assert not np.allclose(valid(x, training=False), valid(bottom_right, training=False))
    with pytest.raises(ValueError, match=r"last_conv_valid needs the last block's map to be at least 3x3.*"
                                         r"a 1x1 map from input \(28, 28, 1\) and filters \[8, 16, 16, 16, 32\]"):
        build((28, 28, 1), filters=(8, 16, 16, 16, 32), last_conv_valid=True)


def test_a_bad_option_value_reaches_the_user_as_a_config_error():
    from fmkeras.config import ModelConfig
    from fmkeras.transfer import build_classifier
    with pytest.raises(ConfigError, match=r"backbone 'cnn', `model.backbone_options`: last_conv_valid needs"):
        build_classifier(ModelConfig(backbone_options={"filters": [8, 8, 8, 8, 8], "last_conv_valid": True}),
                         (28, 28, 1), 10)


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_whole_map_conv_is_a_matrix_product_equal_to_the_valid_conv(policy, tmp_path):
    import keras
    import numpy as np
    import tensorflow as tf
    from fmkeras.backbones.cnn import WholeMapConv2D
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        fast = WholeMapConv2D(7, 3, padding="valid", use_bias=True)
        plain = keras.layers.Conv2D(7, 3, padding="valid", use_bias=True)
        x = tf.constant(np.random.default_rng(0).normal(size=(4, 3, 3, 5)), "float32")
        fast(x), plain(x)
        plain.set_weights(fast.get_weights())
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y_fast, y_plain = fast(x), plain(x)
        tol = 1e-5 if policy == "float32" else 5e-2
        assert y_fast.shape == y_plain.shape == (4, 1, 1, 7) and y_fast.dtype == y_plain.dtype
        np.testing.assert_allclose(np.float32(y_fast), np.float32(y_plain), rtol=tol, atol=tol)
        for a, b in zip(tape.gradient(y_fast, [x, *fast.trainable_weights]),
                        tape.gradient(y_plain, [x, *plain.trainable_weights])):
            np.testing.assert_allclose(np.float32(a), np.float32(b), rtol=tol, atol=tol)
        # the traced step is a MatMul, no Conv2D: the point of the layer
        ops = {op.type for op in tf.function(fast).get_concrete_function(
            tf.TensorSpec((None, 3, 3, 5))).graph.get_operations()}
        assert "MatMul" in ops and not {"Conv2D", "_FusedConv2D"} & ops
        # any other map is Conv2D's convolution, unchanged
        big = tf.constant(np.random.default_rng(1).normal(size=(2, 5, 5, 5)), "float32")
        np.testing.assert_allclose(np.float32(fast(big)), np.float32(plain(big)), rtol=tol, atol=tol)
        assert fast(big).shape == (2, 3, 3, 7)
        same = WholeMapConv2D(7, 3, padding="same")
        assert same(x).shape == (4, 3, 3, 7)
        # a saved model names the class and loads it back
        model = keras.Sequential([keras.Input((3, 3, 5)), fast])
        model.save(tmp_path / "m.keras")
        loaded = keras.models.load_model(tmp_path / "m.keras")
        assert type(loaded.layers[0]) is WholeMapConv2D
        np.testing.assert_allclose(np.float32(loaded(x)), np.float32(model(x)), rtol=1e-6, atol=1e-6)
    finally:
        keras.config.set_dtype_policy(before)


def test_last_conv_valid_uses_the_whole_map_conv():
    from fmkeras.backbones.cnn import WholeMapConv2D
    net = get_backbone("cnn").builder((28, 28, 1), filters=(8, 16, 16, 32), last_conv_valid=True)
    assert type(net.get_layer("block4_conv1")) is WholeMapConv2D
    assert type(net.get_layer("block3_conv1")) is not WholeMapConv2D
