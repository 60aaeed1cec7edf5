"""The `data` section: where images (or texts) come from, how they are shaped, and their augmentation."""
from __future__ import annotations

import dataclasses
from typing import Literal, Optional

from fmkeras.config.section import ConfigSection, FieldCheck
from fmkeras.errors import ConfigError

TEXT_SOURCE_PREFIX = "text:"  # data.source values starting with it select the text task (fmkeras.data.text)
MULTILABEL_SOURCE_PREFIX = "multilabel:"  # data.source values starting with it select the multi-label task
SOURCE_PREFIXES = ("fashion_mnist", "idx:", "tfds:", "folder:", "npz:", MULTILABEL_SOURCE_PREFIX, TEXT_SOURCE_PREFIX)
CACHE_CHOICES = ("memory", "none")  # or a directory path containing '/'


@dataclasses.dataclass(frozen=True)
class AugmentConfig(ConfigSection):
    """Random augmentation applied to training batches (ImageDataGenerator-style ranges).

    rotation: max degrees; shift: fraction of height/width; shear: shear factor (tan of the
    angle); zoom: scale drawn from [1 - zoom, 1 + zoom]; fill_mode: how new pixels are filled.
    crop_area_min: random resized crop covering [crop_area_min, 1] of the image (aspect 3/4..4/3),
    fused into the same single resampling (0 = off); interpolation: bilinear | nearest.
    mixup / cutmix: Beta(alpha, alpha) of the batch-level MixUp / CutMix (0 = off; both on =
    each batch picks one); they make the training labels one-hot soft labels.
    """
    PATH = "data.augment"

    rotation: float = 0.0
    shift: float = 0.0
    shear: float = 0.0
    zoom: float = 0.0
    horizontal_flip: bool = False
    vertical_flip: bool = False
    fill_mode: Literal["nearest", "constant", "reflect", "wrap"] = "nearest"
    brightness: float = 0.0
    contrast: float = 0.0
    crop_area_min: float = 0.0
    interpolation: Literal["bilinear", "nearest"] = "bilinear"
    mixup: float = 0.0
    cutmix: float = 0.0
    # fmkeras.data.policy: none | randaugment (policy_ops distinct ops at policy_magnitude) | trivialaugment
    # (one op at a magnitude uniform in [0, policy_magnitude]); geometric ops join the one resampling.
    # erase_prob: random erasing of one rectangle (up to erase_max_area of the image) per image.
    policy: Literal["none", "randaugment", "trivialaugment"] = "none"
    policy_ops: int = 2
    policy_magnitude: float = 0.5
    erase_prob: float = 0.0
    erase_max_area: float = 0.25

    def check(self, c: FieldCheck):
        c.range("rotation", 0.0, 180.0)
        for name in ("shift", "shear", "zoom", "brightness", "contrast"):
            c.range(name, 0.0, 0.9)
        c.range("crop_area_min", 0.0, 1.0)
        c.range("mixup", 0.0, 10.0)
        c.range("cutmix", 0.0, 10.0)
        c.range("policy_ops", 1, 5)
        c.range("policy_magnitude", 0.0, 1.0)
        c.range("erase_prob", 0.0, 1.0)
        c.range("erase_max_area", 0.02, 1.0)


@dataclasses.dataclass(frozen=True)
class DataConfig(ConfigSection):
    """Where images come from and how they are shaped.

    source: `fashion_mnist` (Debian IDX files), `idx:DIR`, `tfds:NAME`, `folder:DIR`, `npz:FILE`.
    image_size: (height, width) every image is resized to; None keeps the source's size.
    cache: where decoded+resized images are kept after the first epoch: `memory`, `none`, or a
    directory path (with a '/', e.g. ./cache) for tf.data file caches that outlive the run.
    check_files: decode every file of an image folder once before training and skip (and
    report) the ones that fail, so no bad file can stop an epoch.
    bad_files: what to do with image-folder files that cannot be read: `skip` (leave them out,
    list them in metrics.json) or `strict` (fail before training with one error naming them all).
    max_image_pixels: a file whose header declares more pixels is refused without decoding
    (decompression bombs); the default is PIL's MAX_IMAGE_PIXELS.
    follow_symlinks: follow symlinks in an image folder that point outside it (refused by default:
    a shared dataset folder must not make training read, e.g., ~/.ssh files).
    center_crop: None squashes every image to `image_size`; a fraction in (0, 1] first takes the
    central square of that fraction of the shorter side (photos keep their aspect ratio; 0.875 is
    the usual ImageNet view). Training, evaluation, export and serving all crop the same way.
    """
    PATH = "data"

    source: str = "fashion_mnist"
    image_size: Optional[tuple] = None
    channels: Optional[Literal[1, 3]] = None
    validation_split: float = 0.1
    cache: str = "memory"
    shuffle_buffer: int = 10000
    limit_train: Optional[int] = None
    limit_test: Optional[int] = None
    classes: Optional[tuple] = None
    download: bool = True
    seed: int = 1337
    augment: AugmentConfig = AugmentConfig()
    check_files: bool = True
    # Low-label and weak-supervision experiments (fmkeras.data.labels), applied to the training split only:
    # keep `labels_per_class` seeded, stratified training examples; flip a `label_noise` fraction of labels.
    labels_per_class: Optional[int] = None
    label_noise: float = 0.0
    bad_files: Literal["skip", "strict"] = "skip"
    max_image_pixels: int = 89_478_485
    follow_symlinks: bool = False
    center_crop: Optional[float] = None
    # Imbalanced training split (fmkeras.data.labels): none | weights (loss weight N / (K * count) per class,
    # model.fit's class_weight) | sample (oversample every class to the largest one's count each epoch).
    balance: Literal["none", "weights", "sample"] = "none"


    def check(self, c: FieldCheck):
        if not self.source.startswith(SOURCE_PREFIXES):
            raise ConfigError(f"`{c.path('source')}` must be fashion_mnist or start with one of idx:, tfds:, "
                              f"folder:, npz:, multilabel:, text:. Received: {c.path('source')}={self.source!r}")
        c.size("image_size")
        c.range("validation_split", 0.0, 0.9)
        if self.cache not in CACHE_CHOICES and "/" not in self.cache:
            raise ConfigError(f"`{c.path('cache')}` must be memory, none or a directory path containing '/' "
                              f"(e.g. ./cache). Received: {c.path('cache')}={self.cache!r}")
        c.range("shuffle_buffer", 1)
        c.range("max_image_pixels", 1)
        c.range("center_crop", 0.0, 1.0, low_open=True)
        if self.bad_files == "strict" and not self.check_files:
            raise ConfigError(f"`{c.path('bad_files')}=strict` needs `{c.path('check_files')}=true` (the up-front "
                              f"check finds the bad files). Received: {c.path('check_files')}=False")
        c.range("limit_train", 1)
        c.range("limit_test", 1)
        c.range("labels_per_class", 1)
        c.range("label_noise", 0.0, 0.9)
