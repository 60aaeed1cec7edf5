"""A small CNN: conv blocks (Conv-BN-ReLU x convs_per_block, then max-pool).

`filters=(32, 64, 128), convs_per_block=1` is the default Fashion-MNIST net (fast on CPU);
`filters=(32, 64), convs_per_block=1, batch_norm=False` is the reference cats-vs-dogs two-conv net.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from fmkeras.backbones.registry import BackboneSpec, register_backbone


@keras.saving.register_keras_serializable(package="fmkeras")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """Keras' BatchNormalization whose training step runs TF's fused kernel (FusedBatchNormV3 + its gradient).

    Keras 3 builds batch norm from `tf.nn.moments` and elementwise ops, each with its own gradient; in the
    cnn_fashion net on this project's CPU that was a third of the training step (the fused kernel
    made the whole step 1.5x faster in float32). It also takes bfloat16 activations directly (statistics
    in float32), where Keras' layer casts them to float32 and back. Same variables, config and inference
    path as BatchNormalization (saved models name this class, registered as fmkeras>FusedBatchNormalization);
    the moving variance is updated with the unbiased batch variance, as Keras 2's fused layer did (Keras
    3's uses the biased one). Falls back to Keras' computation for masks, other axes and inference.
    """

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable) or mask is not None or self.axis not in (-1, len(inputs.shape) - 1) \
                or len(inputs.shape) != 4 or self.renorm or self.synchronized:
            return super().call(inputs, training=training, mask=mask)
        x = inputs if inputs.dtype in (tf.float32, tf.bfloat16, tf.float16) else tf.cast(inputs, "float32")
        ones = tf.ones(x.shape[-1:], "float32")
        zeros = tf.zeros(x.shape[-1:], "float32")
        gamma = tf.cast(self.gamma, "float32") if self.scale else ones
        beta = tf.cast(self.beta, "float32") if self.center else zeros
        y, mean, variance = tf.compat.v1.nn.fused_batch_norm(x, gamma, beta, epsilon=self.epsilon, is_training=True)
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return tf.cast(y, self.compute_dtype)


@keras.saving.register_keras_serializable(package="fmkeras")
class WholeMapConv2D(keras.layers.Conv2D):
    """Keras' Conv2D that computes an unpadded convolution whose kernel covers the whole input map (a 3x3 kernel
    on a 3x3 map: one output per image) as one matrix product of the flattened map with the flattened kernel.

    That is the same sum of products (kernel (kh, kw, cin, cout) flattened in the order the map (kh, kw, cin) is),
    and the same variables and config as Conv2D; TF's convolution kernels are built for maps larger than the
    kernel and computed it several times slower: in cnn_fashion_fast's training step on an AVX2 CPU (float32)
    that one conv took ~18% of the CPU time; as a matrix product the step needs 1/1.10 of the CPU (1/1.42 on AMX
    in bfloat16; benchmarks/whole_map_conv.py). Any other shape, stride, dilation, group count or data format
    runs Conv2D's convolution.
    """

    def _covers_input(self, inputs) -> bool:
        return (self.padding == "valid" and self.data_format == "channels_last" and self.groups == 1
                and tuple(self.strides) == (1, 1) and tuple(self.dilation_rate) == (1, 1)
                and tuple(inputs.shape[1:3]) == tuple(self.kernel_size))

    def convolution_op(self, inputs, kernel):
        if not self._covers_input(inputs):
            return super().convolution_op(inputs, kernel)
        flat = tf.reshape(inputs, (-1, inputs.shape[1] * inputs.shape[2] * inputs.shape[3]))
        outputs = tf.matmul(flat, tf.reshape(kernel, (-1, self.filters)))
        return tf.reshape(outputs, (-1, 1, 1, self.filters))


def build_cnn(input_shape, weights=None, filters=(32, 64, 128), convs_per_block=1, batch_norm=True,
              kernel_size=3, pool_first=False, last_conv_valid=False, name="cnn") -> keras.Model:
    """Builds the CNN feature extractor; returns a model whose output is the last feature map.

    Args:
        filters: tuple of int. Filters of each block; each block halves the resolution.
        convs_per_block: int. Convolutions before each pooling.
        batch_norm: bool or "fused". Conv-BN-ReLU when true, Conv(bias)-ReLU when false; "fused" is
            Conv-BN-ReLU with FusedBatchNormalization (TF's fused kernel: same model, faster training step).
        pool_first: bool. Each block's last conv is followed by MaxPool, then BN and ReLU (Conv-Pool-BN-ReLU,
            as fast CIFAR-10 trainers order it): normalization and activation run on a quarter of the pixels.
        last_conv_valid: bool. The last block's last conv has "valid" padding and the block no pooling. Where
            the last block sees a map of the kernel's size (a 28-px image: 28 -> 14 -> 7 -> 3), that conv is one
            output seeing the whole map - a Dense layer on the flattened map - at 1/9 of the FLOPs of the "same"
            conv, whose 2x2 pooling of a 3x3 map then keeps only its top-left 2x2 cells; `WholeMapConv2D`
            computes it as that matrix product.
    """
    if batch_norm not in (True, False, "fused"):
        raise ValueError(f"batch_norm must be true, false or 'fused'. Received: batch_norm={batch_norm!r}")
    inputs = keras.Input(input_shape, name="pixels")
    x = inputs
    for block, width in enumerate(filters, start=1):
        for conv in range(1, convs_per_block + 1):
            last = last_conv_valid and block == len(filters) and conv == convs_per_block
            if last and any(size is not None and size < kernel_size for size in x.shape[1:3]):
                raise ValueError(f"last_conv_valid needs the last block's map to be at least {kernel_size}x"
                                 f"{kernel_size} (the kernel). Received: a {x.shape[1]}x{x.shape[2]} map from input "
                                 f"{tuple(input_shape)} and filters {list(filters)}")
            conv_layer = WholeMapConv2D if last else keras.layers.Conv2D
            x = conv_layer(width, kernel_size, padding="valid" if last else "same", use_bias=not batch_norm,
                           name=f"block{block}_conv{conv}")(x)
            if pool_first and conv == convs_per_block and not last:
                x = keras.layers.MaxPooling2D(name=f"block{block}_pool")(x)
            if batch_norm == "fused":
                x = FusedBatchNormalization(name=f"block{block}_bn{conv}")(x)
            elif batch_norm:
                x = keras.layers.BatchNormalization(name=f"block{block}_bn{conv}")(x)
            x = keras.layers.ReLU(name=f"block{block}_relu{conv}")(x)
        if not pool_first and not (last_conv_valid and block == len(filters)):
            x = keras.layers.MaxPooling2D(name=f"block{block}_pool")(x)
    if weights is not None:
        # Weight files are loaded by fmkeras.transfer.weights after building; there are no presets.
        raise ValueError(f"cnn has no weight presets. Received: weights={weights!r}")
    return keras.Model(inputs, x, name=name)


def scale_to_unit(x):
    """[0, 255] -> [0, 1]."""
    return x / 255.0


register_backbone(BackboneSpec(
    name="cnn", builder=build_cnn, preprocess=scale_to_unit, default_input_size=(28, 28),
    min_input_size=(8, 8), description="small Conv-BN-ReLU/MaxPool CNN (fast on CPU)"))
