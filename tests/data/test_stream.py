"""fmkeras/data/stream.py: batch g is a pure function of (seed, g), so a resumed stream continues exactly."""
import numpy as np
import tensorflow as tf

from fmkeras.config import AugmentConfig, DataConfig
from fmkeras.data.stream import StepBatches


def _stream(seed=7, **augment):
    x = np.arange(100 * 4, dtype=np.float32).reshape(100, 2, 2, 1)
    examples = tf.data.Dataset.from_tensor_slices((x, np.arange(100)))
    cfg = DataConfig(seed=seed, shuffle_buffer=50, augment=AugmentConfig(**augment))
    return StepBatches(examples, cfg, batch_size=16, count=100)


def _batches(ds):
    return [(images.numpy(), labels.numpy()) for images, labels in ds]


def test_resumed_stream_equals_the_tail_of_the_full_one_in_a_new_object():
    full = _batches(_stream(horizontal_flip=True, brightness=0.1)(0, 30))
    # A fresh StepBatches, as in a restarted process, started mid-pass at batch 11.
    tail = _batches(_stream(horizontal_flip=True, brightness=0.1)(11, 19))
    assert len(full) == 30 and len(tail) == 19
    for (a, b), (c, d) in zip(full[11:], tail):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


def test_each_pass_is_a_different_permutation_of_all_examples():
    batches = _batches(_stream()(0, 14))  # 7 batches per pass (16 x 6 + 4)
    first, second = (np.concatenate([b for _, b in batches[p * 7:(p + 1) * 7]]) for p in (0, 1))
    assert sorted(first.tolist()) == sorted(second.tolist()) == list(range(100))
    assert first.tolist() != second.tolist() and [len(b) for _, b in batches[:7]][-1] == 4


def test_seed_changes_order_and_iterating_twice_does_not():
    stream = _stream()
    once, again = _batches(stream(0, 7)), _batches(stream(0, 7))
    other = _batches(_stream(seed=8)(0, 7))
    assert all((a[1] == b[1]).all() for a, b in zip(once, again))
    assert any((a[1] != b[1]).any() for a, b in zip(once, other))
