"""fmkeras/data/mosaic.py: 2x2 mosaics of real Fashion-MNIST tiles, labelled with the classes of the tiles
drawn, the same files from the same seed."""
import csv
import filecmp
import os

import numpy as np
from PIL import Image

from fmkeras.data.mosaic import build_mosaics, main, mosaic_labels, tile_mosaics


def test_tiles_go_to_their_quadrants_and_labels_are_the_classes_present():
    images = np.arange(4 * 2 * 2).reshape(4, 2, 2, 1).astype(np.uint8)
    mosaic = tile_mosaics(images, np.array([[0, 1, 2, 3]]))[0, ..., 0]
    np.testing.assert_array_equal(mosaic[:2, :2], images[0, ..., 0])
    np.testing.assert_array_equal(mosaic[:2, 2:], images[1, ..., 0])
    np.testing.assert_array_equal(mosaic[2:, :2], images[2, ..., 0])
    np.testing.assert_array_equal(mosaic[2:, 2:], images[3, ..., 0])
    assert mosaic_labels(np.array([2, 0, 2, 1]), np.array([[0, 0, 2, 3], [1, 1, 1, 1]]), ("a", "b", "c")) == [
        ["b", "c"], ["a"]]


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_mosaics_are_real_tiles_labelled_by_their_classes_and_seeded(tmp_path, fashion):
    first = build_mosaics(str(tmp_path / "a"), num_train=10, num_test=4, seed=3, source=fashion)
    again = main(["--out", str(tmp_path / "b"), "--train", "10", "--test", "4", "--seed", "3"])["labels_csv"]
    other = build_mosaics(str(tmp_path / "c"), num_train=10, num_test=4, seed=4, source=fashion)
    rows = _rows(first)
    assert [r["split"] for r in rows] == ["val"] + ["train"] * 9 + ["test"] * 4  # 10% of train carved as val
    assert _rows(again) == rows and _rows(other) != rows
    assert all(filecmp.cmp(os.path.join(tmp_path, "a", r["path"]), os.path.join(tmp_path, "b", r["path"]),
                           shallow=False) for r in rows)
    flat = {"train": fashion.x_train.reshape(len(fashion.x_train), -1),
            "test": fashion.x_test.reshape(len(fashion.x_test), -1)}
    labels = {"train": fashion.y_train, "test": fashion.y_test}
    for row in rows:
        mosaic = np.asarray(Image.open(os.path.join(tmp_path, "a", row["path"])))
        assert mosaic.shape == (56, 56) and mosaic.dtype == np.uint8
        pool = "test" if row["split"] == "test" else "train"  # test tiles come from the test split only
        present = set()
        for r in (0, 28):
            for c in (0, 28):
                matches = np.flatnonzero((flat[pool] == mosaic[r:r + 28, c:c + 28].reshape(-1)).all(1))
                assert len(matches), row["path"]
                present.add(fashion.class_names[labels[pool][matches[0]]])
        assert row["labels"].split(";") == sorted(present)
