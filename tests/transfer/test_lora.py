"""fmkeras/transfer/lora.py: LoRA trains <= 10% of full fine-tuning's parameters; base weights stay put."""
import keras
import numpy as np
import pytest

from fmkeras.backbones.vit import build_vit
from fmkeras.config import HeadConfig, ModelConfig, RunConfig, TextConfig, apply_overrides
from fmkeras.errors import ConfigError
from fmkeras.data import build_datasets, load_source
from fmkeras.train import compile_model
from fmkeras.transfer import build_classifier, build_text_classifier, trainable_parameter_count
from tests.conftest import tiny_config

VIT = {"patch_size": 7, "dim": 64, "depth": 1, "heads": 4, "mlp_dim": 128}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A ViT backbone saved as .keras (random weights stand in for pretrained ones)."""
    path = str(tmp_path_factory.mktemp("backbone") / "vit.keras")
    build_vit((28, 28, 1), **VIT).save(path)
    return path


def _model(path, rank):
    return build_classifier(ModelConfig(backbone="vit", weights=path, backbone_options=VIT, lora_rank=rank,
                                        head=HeadConfig()), (28, 28, 1), 10)


def test_lora_trains_at_most_a_tenth_and_keeps_base_weights(tmp_path, pretrained):
    full, lora = _model(pretrained, 0), _model(pretrained, 2)
    full_count, lora_count = trainable_parameter_count(full), trainable_parameter_count(lora)
    assert full_count == full.count_params()
    assert lora_count <= 0.10 * full_count, (lora_count, full_count)
    paths = [v.path for v in lora.trainable_weights]
    assert all("lora" in p or p.startswith("predictions") for p in paths), paths
    assert any("attention/query/lora_kernel_a" in p for p in paths) and any("mlp1/lora" in p for p in paths)
    backbone = lora.get_layer("backbone")
    frozen = {v.path: np.array(v) for v in backbone.weights if "lora" not in v.path}
    adapters = {v.path: np.array(v) for v in backbone.weights if "lora_kernel_b" in v.path}
    assert all(not a.any() for a in adapters.values())  # B starts at zero: x(W + AB) == xW at step 0
    cfg = tiny_config(tmp_path, epochs=2, learning_rate=3e-3)
    data = build_datasets(load_source(cfg.data), cfg.data, cfg.train.batch_size)
    # Plain fit: fmkeras' trainer restores its best checkpoint, and Keras merges W + AB into the
    # kernel when it saves LoRA layers, so the unmerged state is only visible before that.
    compile_model(lora, cfg.train, total_steps=20)
    history = lora.fit(data.train, epochs=2, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    for v in backbone.weights:
        if v.path in frozen:
            np.testing.assert_array_equal(np.array(v), frozen[v.path], err_msg=v.path)
    assert any(np.abs(np.array(v)).sum() > 0 for v in backbone.weights if "lora_kernel_b" in v.path)
    # Saving merges W + AB: the reloaded model computes the same function with nothing LoRA-specific.
    lora.save(str(tmp_path / "lora.keras"))
    reloaded = keras.saving.load_model(str(tmp_path / "lora.keras"), safe_mode=True)
    pixels = np.asarray(next(iter(data.val))[0])
    np.testing.assert_allclose(reloaded(pixels).numpy(), lora(pixels).numpy(), atol=1e-5)


def test_lora_on_text_embedding_and_config_rules():
    texts = np.array(["chess game engine", "network proxy daemon", "strategy game", "http server"] * 4)
    model = build_text_classifier(ModelConfig(backbone="text_transformer", lora_rank=2,
                                              backbone_options={"size": "tiny"}),
                                  TextConfig(sequence_length=8), texts, 2)
    paths = [v.path for v in model.trainable_weights]
    assert "token_embedding/lora_embeddings_a" in paths and "token_embedding/embeddings" not in paths
    with pytest.raises(ConfigError, match="lora_rank"):
        apply_overrides(RunConfig(), {"model.lora_rank": -1})
    with pytest.raises(ConfigError, match="finetune.epochs"):
        apply_overrides(RunConfig(), {"model.lora_rank": 2, "finetune.epochs": 1})
    with pytest.raises(ValueError, match="no Dense"):
        build_classifier(ModelConfig(backbone="cnn", lora_rank=2, backbone_options={"filters": (4,)},
                                     head=HeadConfig()), (28, 28, 1), 10)
