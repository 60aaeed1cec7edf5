"""fmkeras/data/pipeline.py: split, shapes, resize/channels, reproducibility."""
import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from fmkeras.config import AugmentConfig, DataConfig
from fmkeras.data.pipeline import build_datasets, dataset_fn, decoded_examples, split_indices
from fmkeras.data.sources import load_source
from fmkeras.errors import DataError
from tests.data.test_sources import write_png_folder


def test_split_is_fixed_by_seed_and_disjoint():
    a_train, a_val = split_indices(100, 0.2, seed=7)
    b_train, b_val = split_indices(100, 0.2, seed=7)
    np.testing.assert_array_equal(a_val, b_val)
    assert len(a_val) == 20 and not set(a_train) & set(a_val)
    assert set(split_indices(100, 0.2, seed=8)[1]) != set(a_val)


def test_batches_have_model_shape_and_pixel_range(fashion_npz):
    cfg = DataConfig(source=f"npz:{fashion_npz}", validation_split=0.25)
    data = build_datasets(load_source(cfg), cfg, batch_size=32)
    assert (data.num_train, data.num_val, data.num_test) == (450, 150, 200)
    images, labels = next(iter(data.train))
    assert images.shape == (32, 28, 28, 1) and images.dtype.name == "float32"
    assert 0.0 <= float(images.numpy().min()) and float(images.numpy().max()) <= 255.0 and labels.dtype.name == "int64"
    assert sum(int(x.shape[0]) for x, _ in data.val) == 150


def test_resize_and_gray_to_rgb(fashion_npz):
    cfg = DataConfig(source=f"npz:{fashion_npz}", image_size=(32, 32), channels=3, limit_train=64)
    data = build_datasets(load_source(cfg), cfg, batch_size=16)
    images, _ = next(iter(data.test))
    assert data.image_shape == (32, 32, 3) and images.shape == (16, 32, 32, 3)
    np.testing.assert_allclose(images[..., 0], images[..., 2])


def test_arrays_at_the_model_size_skip_the_per_image_map(fashion_npz):
    # Fashion-MNIST's uint8 arrays are already what the cache holds: a per-image map (resize check, channel
    # check) took 2.8 s of the default recipe's first epoch for nothing.
    source = load_source(DataConfig(source=f"npz:{fashion_npz}"))
    x, y = source.x_train[:8], source.y_train[:8]
    same = decoded_examples(source, x, y, (28, 28, 1))
    assert "Map" not in type(same).__name__
    np.testing.assert_array_equal(np.stack([image.numpy() for image, _ in same]), x)
    resized = decoded_examples(source, x, y, (32, 32, 1))
    assert "Map" in type(resized).__name__ and next(iter(resized))[0].shape == (32, 32, 1)
    cropped = decoded_examples(source, x, y, (28, 28, 1), crop=0.5)
    assert "Map" in type(cropped).__name__


def test_same_seed_same_augmented_epoch(fashion_npz):
    cfg = DataConfig(source=f"npz:{fashion_npz}", limit_train=64,
                     augment=AugmentConfig(rotation=20, zoom=0.2, horizontal_flip=True))
    first = next(iter(build_datasets(load_source(cfg), cfg, 16).train))[0].numpy()
    second = next(iter(build_datasets(load_source(cfg), cfg, 16).train))[0].numpy()
    np.testing.assert_array_equal(first, second)
    data = build_datasets(load_source(cfg), cfg, 16)
    epoch1 = next(iter(data.train))[0].numpy()
    epoch2 = next(iter(data.train))[0].numpy()
    assert not np.array_equal(epoch1, epoch2), "each epoch must draw new augmentations"


def test_folder_of_varied_sizes_needs_image_size(tmp_path):
    root = write_png_folder(tmp_path / "f", size=(12, 10))
    write_png_folder(tmp_path / "f", classes=("cat",), per_class=1, size=(20, 30))
    cfg = DataConfig(source=f"folder:{root}", validation_split=0.0)
    with pytest.raises(DataError, match="set `data.image_size`"):
        build_datasets(load_source(cfg), cfg, 4)
    cfg = DataConfig(source=f"folder:{root}", validation_split=0.0, image_size=(16, 16))
    data = build_datasets(load_source(cfg), cfg, 4)
    shapes = {tuple(x.shape[1:]) for x, _ in data.train}
    assert shapes == {(16, 16, 3)} and data.num_train == 6


FULL_AUGMENT = AugmentConfig(rotation=20, shift=0.2, shear=0.2, zoom=0.2, horizontal_flip=True, brightness=0.1,
                             contrast=0.1, crop_area_min=0.5, mixup=0.2, cutmix=1.0)


def test_fixed_seed_reproduces_the_same_augmented_folder_batch(tmp_path):
    root = write_png_folder(tmp_path / "f", per_class=8, size=(16, 16))
    cfg = DataConfig(source=f"folder:{root}", validation_split=0.0, augment=FULL_AUGMENT, image_size=(16, 16))
    batches = [next(iter(build_datasets(load_source(cfg), cfg, 8, deterministic=True).train)) for _ in range(2)]
    np.testing.assert_array_equal(batches[0][0].numpy(), batches[1][0].numpy())
    np.testing.assert_array_equal(batches[0][1].numpy(), batches[1][1].numpy())
    assert batches[0][1].shape == (8, 2)  # mixup/cutmix: one-hot soft labels
    other = dataclasses.replace(cfg, seed=2)
    assert not np.array_equal(next(iter(build_datasets(load_source(other), other, 8).train))[0].numpy(),
                              batches[0][0].numpy())


def test_file_cache_is_written_once_and_keyed_by_content(tmp_path):
    root = write_png_folder(tmp_path / "f", per_class=4, size=(12, 12))
    cache = tmp_path / "cache"
    cfg = DataConfig(source=f"folder:{root}", validation_split=0.25, cache=str(cache), image_size=(8, 8))
    data = build_datasets(load_source(cfg), cfg, 4)
    first = sorted(x.numpy().tobytes() for x, _ in data.val)
    names = sorted(p.name for p in cache.iterdir())
    assert any(n.startswith("val-") and n.endswith(".index") for n in names), names
    second = sorted(x.numpy().tobytes() for x, _ in build_datasets(load_source(cfg), cfg, 4).val)
    assert first == second and sorted(p.name for p in cache.iterdir()) == names
    resized = DataConfig(source=f"folder:{root}", validation_split=0.25, cache=str(cache), image_size=(6, 6))
    assert next(iter(build_datasets(load_source(resized), resized, 4).val))[0].shape[1:] == (6, 6, 3)
    with pytest.raises(ValueError, match="`data.cache` must be memory, none or a directory path"):
        from fmkeras.config import RunConfig, validate
        validate(RunConfig(data=DataConfig(cache="memroy")))


def test_shards_are_disjoint_and_cover_the_split(fashion_npz):
    cfg = DataConfig(source=f"npz:{fashion_npz}", validation_split=0.0, limit_train=90, cache="none")
    source = load_source(cfg)
    seen = []
    for index in range(3):
        data = build_datasets(source, cfg, 16, num_shards=3, shard_index=index)
        assert data.num_train == 30 and data.num_test == 67 - (index == 2)
        options = data.train.options()
        assert options.experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.OFF
        seen.append({x.tobytes() for batch, _ in data.train for x in batch.numpy().astype(np.uint8)})
    assert not (seen[0] & seen[1]) and not (seen[1] & seen[2]) and sum(map(len, seen)) == 90
    with pytest.raises(DataError, match="shard index must be in"):
        build_datasets(source, cfg, 16, num_shards=3, shard_index=3)


def test_dataset_fn_serves_a_distribution_strategy(fashion_npz):
    cfg = DataConfig(source=f"npz:{fashion_npz}", validation_split=0.0, limit_train=64)
    context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=2)
    ds = dataset_fn(load_source(cfg), cfg, global_batch_size=32)(context)
    assert next(iter(ds))[0].shape[0] == 16 and sum(int(x.shape[0]) for x, _ in ds) == 32


def test_non_deterministic_ordering_is_an_option(fashion_npz):
    cfg = DataConfig(source=f"npz:{fashion_npz}", limit_train=64)
    assert build_datasets(load_source(cfg), cfg, 16, deterministic=False).train.options().deterministic is False
    assert build_datasets(load_source(cfg), cfg, 16).train.options().deterministic is True
