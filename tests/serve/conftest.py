"""A small trained classifier exported twice, and a REST server over it (port 0, always closed)."""
import pytest

from fmkeras.config import HeadConfig, ModelConfig, ServeConfig
from fmkeras.export import export_saved_model
from fmkeras.serve import ModelServer
from fmkeras.transfer import build_classifier


@pytest.fixture(scope="package")
def trained(fashion):
    """A CNN fit for one epoch on 600 real Fashion-MNIST images, so probabilities are not uniform."""
    import keras
    keras.utils.set_random_seed(7)
    model = build_classifier(ModelConfig(backbone_options={"filters": (4, 8)}, head=HeadConfig(dense_units=(16,))),
                             (28, 28, 1), 10)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(fashion.x_train[:600].astype("float32"), fashion.y_train[:600], batch_size=64, epochs=1, verbose=0)
    return model


@pytest.fixture(scope="package")
def base_path(tmp_path_factory, trained, fashion):
    """saved_models/fashion with versions 1 and 2 of the same model."""
    base = str(tmp_path_factory.mktemp("saved_models") / "fashion")
    for _ in range(2):
        export_saved_model(trained, base, fashion.class_names, (28, 28, 1))
    return base


def make_server(base_path, **serve):
    cfg = ServeConfig(model_base_path=base_path, port=0, poll_seconds=0.2, **serve)
    return ModelServer(cfg).start()


@pytest.fixture(scope="package")
def server(base_path):
    srv = make_server(base_path, version_labels={"stable": 1}, versions=(1, 2))
    yield srv
    srv.close()
