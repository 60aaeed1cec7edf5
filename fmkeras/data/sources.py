"""Resolves a `data.source` spec (`fashion_mnist`, `idx:DIR`, `tfds:NAME`, `folder:DIR`, `npz:FILE`,
`multilabel:FILE.csv`)."""
from __future__ import annotations

from fmkeras.config import DataConfig
from fmkeras.data.arrays import array_source, npz_source
from fmkeras.data.idx import fashion_mnist_source, idx_source
from fmkeras.data.image_folder import image_folder_source
from fmkeras.data.multilabel_csv import multilabel_csv_source
from fmkeras.data.source import Source, select_classes
from fmkeras.data.tfds_source import tfds_source
from fmkeras.errors import DataError

__all__ = ["Source", "load_source", "array_source"]


def load_source(cfg: DataConfig) -> Source:
    """Loads the examples named by `cfg.source`, keeping `cfg.classes` if given."""
    spec = cfg.source
    kind, _, arg = spec.partition(":")
    if not arg and spec != "fashion_mnist":
        raise DataError(f"data source {spec!r} needs a path or name after '{kind}:'")
    if spec == "fashion_mnist":
        source = fashion_mnist_source()
    elif kind == "idx":
        source = idx_source(arg)
    elif kind == "tfds":
        source = tfds_source(arg, limit_train=cfg.limit_train, limit_test=cfg.limit_test, download=cfg.download)
    elif kind == "folder":
        source = image_folder_source(arg, channels=cfg.channels or 3, check_files=cfg.check_files,
                                     bad_files=cfg.bad_files, max_pixels=cfg.max_image_pixels,
                                     follow_symlinks=cfg.follow_symlinks)
    elif kind == "npz":
        source = npz_source(arg)
    elif kind == "multilabel":
        return multilabel_csv_source(arg, cfg)  # keeps `cfg.classes` as label columns, not as examples
    else:
        raise DataError(f"unknown data source {spec!r}; use fashion_mnist, idx:DIR, tfds:NAME, folder:DIR, npz:FILE or "
                        "multilabel:FILE.csv")
    return select_classes(source, cfg.classes)
