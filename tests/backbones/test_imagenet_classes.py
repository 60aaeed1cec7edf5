"""fmkeras/backbones/imagenet_classes.py: ImageNet's 1000 class names, in class-index order, shipped as data."""
import configparser
import fnmatch
import os

from fmkeras.backbones.imagenet_classes import NAMES_FILE, imagenet_class_names

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_thousand_unique_names_in_class_index_order():
    names = imagenet_class_names()
    assert len(names) == 1000 and len(set(names)) == 1000
    assert (names[0], names[1], names[309], names[310]) == ("tench", "goldfish", "bee", "ant")
    assert all(name == name.strip() and name and "," not in name for name in names)


def test_names_file_is_package_data():
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    patterns = cfg["options.package_data"]["fmkeras.backbones"].split()
    assert any(fnmatch.fnmatch(NAMES_FILE, pattern) for pattern in patterns)
