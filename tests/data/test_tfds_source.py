"""tfds: sources keep images encoded until tf.data decodes them: variable-size photos work."""
import numpy as np
from etils import epath
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from fmkeras.config import DataConfig
from fmkeras.data.pipeline import build_datasets
from fmkeras.data.sources import load_source

SIZES = [(40, 60), (90, 30), (33, 33), (120, 80), (25, 70), (64, 48)]


class VariableSizePhotos(tfds.core.GeneratorBasedBuilder):
    """A local TFDS builder whose images all differ in size (nothing is downloaded)."""
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return self.dataset_info_from_configs(features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 3)),
            "label": tfds.features.ClassLabel(names=["dark", "bright"])}), supervised_keys=("image", "label"))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(0, 12), "test": self._generate_examples(100, 4)}

    def _generate_examples(self, start, count):
        for i in range(start, start + count):
            height, width = SIZES[i % len(SIZES)]
            label = i % 2
            image = np.full((height, width, 3), 200 if label else 30, np.uint8)
            yield i, {"image": image, "label": label}


@pytest.fixture
def prepared(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(VariableSizePhotos, "pkg_dir_path", epath.Path(tmp_path), raising=False)
    VariableSizePhotos(data_dir=str(tmp_path)).download_and_prepare()
    return "variable_size_photos"


def test_tfds_variable_size_images_stream_through_the_pipeline(prepared):
    source = load_source(DataConfig(source=f"tfds:{prepared}", download=False))
    assert source.kind == "encoded" and source.x_train.dtype == object and len(source.x_train) == 12
    assert source.image_shape is None and source.class_names == ("dark", "bright")
    assert all(bytes(b)[:4] == b"\x89PNG" or bytes(b)[:2] == b"\xff\xd8" for b in source.x_train)  # still encoded
    data = build_datasets(source, DataConfig(source=f"tfds:{prepared}", image_size=(32, 32), validation_split=0.25),
                          batch_size=4)
    images, labels = next(iter(data.test))
    assert images.shape == (4, 32, 32, 3) and images.dtype == tf.float32
    # Labels survive the trip: dark images are dark, bright ones bright, whatever their original size.
    means = tf.reduce_mean(images, axis=[1, 2, 3]).numpy()
    assert np.all((means > 128) == (labels.numpy() == 1))
    assert data.num_train == 9 and data.num_val == 3 and data.num_test == 4


def test_tfds_variable_sizes_need_an_image_size(prepared):
    source = load_source(DataConfig(source=f"tfds:{prepared}", download=False))
    with pytest.raises(Exception, match="different sizes; set `data.image_size`"):
        build_datasets(source, DataConfig(source=f"tfds:{prepared}"), batch_size=4)
