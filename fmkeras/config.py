"""Dataclass configs for a run: data, augmentation, model, training and export.

One source of truth: recipes (YAML/JSON files), config files given with --config and
flag overrides (`train.epochs=3`) all become a `RunConfig` through `from_dict` and
`apply_overrides`, and `validate` names the field, the bad value and what is allowed.

Example:
    cfg = load_config("fmkeras/recipes/cnn_fashion.yaml")
    cfg = apply_overrides(cfg, {"train.epochs": 3})
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import typing
from typing import Any, Optional

import yaml

from fmkeras.errors import ConfigError


class _YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that `1e-4` is a float as in YAML 1.2 (PyYAML, a YAML 1.1 parser,
    reads it as the string "1e-4" and only `1.0e-4` as a number)."""


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                   |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                   |\.[0-9_]+(?:[eE][-+][0-9]+)?
                   |[-+]?\.(?:inf|Inf|INF)
                   |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def yaml_load(text: str):
    """Parses YAML like `yaml.safe_load`, reading `1e-4` as a number (config files, `--set` values)."""
    return yaml.load(text, Loader=_YamlLoader)


TEXT_SOURCE_PREFIX = "text:"  # data.source values starting with it select the text task (fmkeras.data.text)


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Random augmentation applied to training batches (ImageDataGenerator-style ranges).

    rotation: max degrees; shift: fraction of height/width; shear: shear factor (tan of the
    angle); zoom: scale drawn from [1 - zoom, 1 + zoom]; fill_mode: how new pixels are filled.
    crop_area_min: random resized crop covering [crop_area_min, 1] of the image (aspect 3/4..4/3),
    fused into the same single resampling (0 = off); interpolation: bilinear | nearest.
    mixup / cutmix: Beta(alpha, alpha) of the batch-level MixUp / CutMix (0 = off; both on =
    each batch picks one); they make the training labels one-hot soft labels.
    """
    rotation: float = 0.0
    shift: float = 0.0
    shear: float = 0.0
    zoom: float = 0.0
    horizontal_flip: bool = False
    vertical_flip: bool = False
    fill_mode: str = "nearest"
    brightness: float = 0.0
    contrast: float = 0.0
    crop_area_min: float = 0.0
    interpolation: str = "bilinear"
    mixup: float = 0.0
    cutmix: float = 0.0
    # fmkeras.data.policy: none | randaugment (policy_ops distinct ops at policy_magnitude) | trivialaugment
    # (one op at a magnitude uniform in [0, policy_magnitude]); geometric ops join the one resampling.
    # erase_prob: random erasing of one rectangle (up to erase_max_area of the image) per image.
    policy: str = "none"
    policy_ops: int = 2
    policy_magnitude: float = 0.5
    erase_prob: float = 0.0
    erase_max_area: float = 0.25


@dataclasses.dataclass(frozen=True)
class DataConfig:
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
    source: str = "fashion_mnist"
    image_size: Optional[tuple] = None
    channels: Optional[int] = None
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
    bad_files: str = "skip"
    max_image_pixels: int = 89_478_485
    follow_symlinks: bool = False
    center_crop: Optional[float] = None
    # Imbalanced training split (fmkeras.data.labels): none | weights (loss weight N / (K * count) per class,
    # model.fit's class_weight) | sample (oversample every class to the largest one's count each epoch).
    balance: str = "none"


@dataclasses.dataclass(frozen=True)
class HeadConfig:
    """The new classification head put on a backbone.

    binary: one sigmoid unit instead of a softmax (two classes only); the model still
    outputs two probabilities [1 - p, p], so evaluation and export treat it like any classifier.
    """
    pooling: str = "avg"
    dense_units: tuple = ()
    dropout: float = 0.0
    activation: str = "relu"
    binary: bool = False


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Backbone (by registry name), its weights and options, and the head."""
    backbone: str = "cnn"
    weights: Optional[str] = None
    input_size: Optional[tuple] = None
    backbone_options: dict = dataclasses.field(default_factory=dict)
    head: HeadConfig = HeadConfig()
    lora_rank: int = 0  # > 0: LoRA on the backbone's Dense/EinsumDense/Embedding layers, the rest frozen
    # > 1: a deep ensemble, text sources only: this many classifiers trained one after another, each with its
    # own seed (train.seed + i), into one model that averages their probabilities (fmkeras.transfer.ensemble).
    ensemble: int = 1


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimizer, schedule, regularization and callbacks of one training run."""
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    l2: float = 0.0
    schedule: str = "constant"
    warmup_steps: int = 0
    decay_rate: float = 0.5
    decay_steps: int = 1000
    label_smoothing: float = 0.0
    # Polyak averaging: > 0 keeps an exponential moving average of the weights (Keras' optimizer
    # `use_ema`, updated every step with this momentum, e.g. 0.99); validation, the best checkpoint
    # and the final model use the averaged weights (keras.callbacks.SwapEMAWeights). 0 = off.
    ema_momentum: float = 0.0
    early_stopping_patience: int = 0
    steps_per_epoch: Optional[int] = None
    seed: int = 1337
    deterministic: bool = False
    verbose: int = 2
    # Adversarial training (fmkeras.transfer.adversarial): each batch is fitted with its FGSM/PGD copy at
    # `adversarial_epsilon` (a fraction of the [0, 255] pixel range); PGD takes `adversarial_steps` steps.
    adversarial: str = "none"
    adversarial_epsilon: float = 0.1
    adversarial_steps: int = 5
    # crossentropy, or a noise-robust loss for noisy labels (fmkeras.train.losses): symmetric (SCE), bootstrap.
    loss: str = "crossentropy"
    # Resume: a checkpoint every N steps and at each epoch end (0 = off, the default until the
    # step-indexed stream matches the epoch pipeline's accuracy); rerunning with the same run_dir
    # continues at that step. The newest `keep_checkpoints` (>= 2) files are kept.
    backup_every_steps: int = 0
    keep_checkpoints: int = 2
    # schedule=one_cycle (fmkeras.train.schedules.OneCycle): LR from learning_rate/one_cycle_div up to
    # learning_rate over warmup_steps (0: one_cycle_pct_start of the steps), then down to
    # learning_rate/(div*final_div); the momentum (SGD momentum, Adam beta_1) goes the other way between
    # one_cycle_momentum = (at the ends, at the peak); empty = no momentum cycling.
    one_cycle_div: float = 25.0
    one_cycle_final_div: float = 1e4
    one_cycle_pct_start: float = 0.25
    one_cycle_momentum: tuple = (0.95, 0.85)
    # Gradient clipping (Keras optimizer clipnorm/clipvalue; 0 = off), gradient accumulation (the optimizer's
    # gradient_accumulation_steps: weights move every N batches with the averaged gradient) and the Keras
    # mixed-precision policy (float32 | mixed_float16 | mixed_bfloat16; loss and softmax stay float32).
    clipnorm: float = 0.0
    clipvalue: float = 0.0
    accumulate_steps: int = 1
    precision: str = "float32"
    # Gradual magnitude pruning of Conv/Dense kernels (fmkeras.train.pruning): 0 = off, else the final sparsity,
    # reached along prune_schedule (polynomial | constant) between prune_begin and prune_end (fractions of the
    # training steps), masks recomputed every prune_frequency steps.
    prune_sparsity: float = 0.0
    prune_schedule: str = "polynomial"
    prune_begin: float = 0.0
    prune_end: float = 0.75
    prune_frequency: int = 100


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    """Staged transfer: stage 1 trains the head for `train.epochs` (backbone frozen if
    `freeze_backbone`); stage 2 runs `epochs` more with the top `unfreeze_layers` layers or
    `unfreeze_blocks` blocks trainable (both 0 = the whole backbone) at `learning_rate`,
    each lower block's LR multiplied by `lr_decay_per_block` (discriminative LRs; 1 = off).
    BatchNorm layers stay in inference mode while `freeze_batchnorm`."""
    freeze_backbone: bool = False
    epochs: int = 0
    unfreeze_layers: int = 0
    unfreeze_blocks: int = 0
    learning_rate: float = 1e-5
    freeze_batchnorm: bool = True
    lr_decay_per_block: float = 1.0


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """`fmkeras pretrain`: make a backbone from a source dataset (fmkeras.pretrain).

    method: `simclr` (contrastive, labels ignored) or `supervised` (a classifier on the source's labels).
    SimCLR views: a random resized crop keeping `crop_min_scale`..1 of the area, then random horizontal
    flips, `brightness` and `contrast` jitter; NT-Xent loss at `temperature` on a projection head of
    `projection_units` (hidden, output). output: the backbone `.keras` file (default <run_dir>/backbone.keras).
    projection_batch_norm: BatchNormalization after every hidden projection Dense (as in SimCLR).
    erase_prob: chance that each view gets a random rectangle (up to `erase_max_area` of the image) filled with
    uniform noise (random erasing); noise_stddev: gaussian pixel noise (in [0, 255] units) added to each view.
    """
    method: str = "simclr"
    epochs: int = 5
    batch_size: int = 256
    learning_rate: float = 2e-3
    temperature: float = 0.2
    projection_units: tuple = (256, 128)
    crop_min_scale: float = 0.3
    horizontal_flip: bool = True
    brightness: float = 0.3
    contrast: float = 0.4
    output: Optional[str] = None
    projection_batch_norm: bool = True
    erase_prob: float = 0.0
    erase_max_area: float = 0.25
    noise_stddev: float = 0.0


@dataclasses.dataclass(frozen=True)
class DistillConfig:
    """`fmkeras distill`: the student learns `alpha` * hard-label CE + (1 - alpha) * T^2 * KL(teacher || student)
    on softmax outputs at `temperature` (fmkeras.transfer.distill)."""
    temperature: float = 4.0
    alpha: float = 0.1


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """Where the SavedModel goes: `<base_dir>/<model_name>/<next version>/`."""
    enabled: bool = True
    base_dir: str = "saved_models"
    model_name: Optional[str] = None
    # Also export a `serve_pixels_tta` signature averaging over test-time-augmentation views: flip | 2..10.
    tta: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    """`fmkeras serve`: a TF-Serving-compatible REST server for `<model_base_path>/<version>/`.

    versions: pinned versions to serve; empty serves the latest complete version.
    version_labels: label -> version for `/labels/{label}` URLs (e.g. {"stable": 1}).
    batch_max_size / batch_timeout_ms: concurrent requests are merged into one model call of at
    most this many images, waiting at most this long for more to arrive.
    max_image_pixels: encoded images whose header claims more pixels are refused (decompression bombs).
    max_connections: open connections beyond this get HTTP 503 and are closed.
    max_inflight: predict requests handled at once; more get an immediate HTTP 429 (bounded queue).
    read_timeout_seconds: a request (headers and body) must arrive within this long, else HTTP 408 and
    the connection is closed (slowloris); also how long an idle keep-alive connection is kept.
    shutdown_grace_seconds: on SIGTERM, how long in-flight requests may take before the server exits.
    max_json_containers: bodies with more JSON arrays/objects are refused before parsing (each costs
    ~60 bytes of Python memory: 9 MB of "[[[0]]]," would otherwise take ~370 MB to parse).
    max_request_pixels: the images of one request may declare at most this many pixels together.
    idle_timeout_seconds: a connection that sends nothing for this long is closed; when all
    `max_connections` are taken, idle ones are closed first to make room.
    max_connections_per_client: connections one client address may hold (beyond: its idle ones are
    closed to make room, else HTTP 503).
    allowed_hosts: Host header names accepted (port ignored; `*` accepts any); others get HTTP 403,
    which stops DNS rebinding. The bind address is always accepted.
    allowed_origins: browser origins (e.g. http://localhost:3000) allowed to call the server; any
    other Origin header gets HTTP 403.
    auth_token_file: a file holding a bearer token every request must send (`Authorization: Bearer ...`).
    """
    model_base_path: Optional[str] = None
    model_name: Optional[str] = None
    host: str = "127.0.0.1"
    port: int = 8501
    versions: tuple = ()
    version_labels: dict = dataclasses.field(default_factory=dict)
    poll_seconds: float = 1.0
    max_body_bytes: int = 10 * 1024 * 1024
    max_json_depth: int = 32
    max_batch_instances: int = 1024
    max_image_pixels: int = 4096 * 4096
    max_connections: int = 64
    batch_max_size: int = 8
    batch_timeout_ms: float = 2.0
    max_queue: int = 256
    request_timeout_seconds: float = 30.0
    max_inflight: int = 32
    max_json_containers: int = 1_000_000
    read_timeout_seconds: float = 30.0
    shutdown_grace_seconds: float = 10.0
    max_request_pixels: int = 4 * 4096 * 4096
    idle_timeout_seconds: float = 5.0
    max_connections_per_client: int = 32
    allowed_hosts: tuple = ("localhost", "127.0.0.1", "::1")
    allowed_origins: tuple = ()
    auth_token_file: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class DistributeConfig:
    """tf.distribute: `strategy` auto|default|mirrored|multiworker|tpu (auto: tpu if `tpu` or $TPU_NAME is
    set, multiworker if TF_CONFIG names several workers, mirrored if > 1 GPU, else default).
    `train.batch_size` is per replica; the global batch is batch_size x replicas. `scale_learning_rate`
    none|linear|sqrt multiplies train/finetune learning rates by replicas (or its square root).
    `shard_policy` auto|data|file|off is tf.data's AutoShardPolicy across workers. `devices` pins the
    mirrored replicas (e.g. CPU:0,CPU:1). `backup_every_steps`: the multi-worker loop's fault-tolerance
    checkpoint interval."""
    strategy: str = "auto"
    tpu: str = ""
    scale_learning_rate: str = "none"
    shard_policy: str = "auto"
    devices: tuple = ()
    backup_every_steps: int = 50


@dataclasses.dataclass(frozen=True)
class TuneConfig:
    """keras-tuner search (`fmkeras tune`): `space` maps config paths (or `augment_strength`) to ranges:
    `{min, max, sampling: log, step}` (ints if both bounds are ints), a list of choices, or a fixed value.
    Results go to `<directory>/<project_name or name>`; an existing search there is resumed unless
    `overwrite`. `algorithm` random|bayesian|hyperband (hyperband: `max_epochs` per trial budget).
    The best trial is retrained on train+val and exported when `retrain`."""
    algorithm: str = "random"
    objective: str = "val_accuracy"
    max_trials: int = 10
    executions_per_trial: int = 1
    max_epochs: int = 4
    hyperband_factor: int = 3
    directory: str = "tune_results"
    project_name: Optional[str] = None
    overwrite: bool = False
    retrain: bool = True
    space: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class TextConfig:
    """Text sources (`data.source=text:...`): which columns hold text and label, and how the
    `TextVectorization` layer inside the model splits text into `sequence_length` token ids
    from a vocabulary of at most `max_tokens` (learned from the training split, or read from
    `vocabulary`)."""
    text_column: str = "text"
    label_column: str = "label"
    max_tokens: int = 20000
    sequence_length: int = 64
    standardize: str = "lower_and_strip_punctuation"
    ngrams: int = 1  # 2 also adds word bigrams as tokens (after the unigrams, within sequence_length)
    token_dropout: float = 0.0  # training only: each token becomes out-of-vocabulary with this probability
    vocabulary: Optional[str] = None  # a vocabulary file (one token a line) instead of learning one, e.g. the
    # vocabulary.txt written beside a pretrained text backbone (model.weights) so token ids match
    # Wide & deep: "tf_idf" adds a bag-of-n-grams view of the whole text (`TextVectorization(output_mode=
    # "tf_idf")` over word 1..`wide_ngrams`-grams, at most `wide_max_tokens`, learned from the training
    # split) joined with the pooled backbone features at the output layer, so the classifier weighs every
    # word and bigram directly as well as the Transformer's contextual features. "none" = Transformer only.
    wide: str = "none"
    wide_ngrams: int = 2
    wide_max_tokens: int = 50000
    # Linear member: also fit a TF-IDF (1..`wide_ngrams`-grams, sublinear tf, L2-normalized) logistic regression
    # to convergence, full batch, with the L2 strength picked from `linear_l2` on the validation split
    # (fmkeras.transfer.linear_text), and average it into the model with weight `linear_weight` (the
    # Transformer member(s) share the rest).
    linear_member: bool = False
    linear_weight: float = 0.5
    linear_l2: tuple = (3e-7, 1e-6, 3e-6, 1e-5)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything one `fmkeras train` run needs."""
    name: str = "run"
    run_root: str = "runs"
    run_dir: Optional[str] = None
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    finetune: FinetuneConfig = FinetuneConfig()
    export: ExportConfig = ExportConfig()
    serve: ServeConfig = ServeConfig()
    distribute: DistributeConfig = DistributeConfig()
    tune: TuneConfig = TuneConfig()
    text: TextConfig = TextConfig()
    pretrain: PretrainConfig = PretrainConfig()
    distill: DistillConfig = DistillConfig()


CHOICES = {
    "data.cache": ("memory", "none"),
    "data.bad_files": ("skip", "strict"),
    "data.balance": ("none", "weights", "sample"),
    "data.augment.fill_mode": ("nearest", "constant", "reflect", "wrap"),
    "data.augment.interpolation": ("bilinear", "nearest"),
    "data.augment.policy": ("none", "randaugment", "trivialaugment"),
    "model.head.pooling": ("avg", "max", "flatten"),
    "train.optimizer": ("adam", "adamw", "sgd"),
    "train.schedule": ("constant", "cosine", "linear", "inverse_time", "one_cycle"),
    "train.precision": ("float32", "mixed_float16", "mixed_bfloat16"),
    "train.prune_schedule": ("polynomial", "constant"),
    "distribute.strategy": ("auto", "default", "mirrored", "multiworker", "tpu"),
    "distribute.scale_learning_rate": ("none", "linear", "sqrt"),
    "distribute.shard_policy": ("auto", "data", "file", "off"),
    "tune.algorithm": ("random", "bayesian", "hyperband"),
    "text.standardize": ("lower_and_strip_punctuation", "lower", "strip_punctuation", "none",
                         "lower_and_split_punctuation"),
    "text.wide": ("none", "tf_idf"),
    "train.adversarial": ("none", "fgsm", "pgd"),
    "train.loss": ("crossentropy", "symmetric", "bootstrap"),
    "pretrain.method": ("simclr", "supervised"),
}
SOURCE_PREFIXES = ("fashion_mnist", "idx:", "tfds:", "folder:", "npz:", "text:")


def _field_types(cls) -> dict:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce(value: Any, kind: Any, path: str) -> Any:
    """Converts a YAML/JSON/flag value to the field's declared type, or raises naming `path`."""
    if typing.get_origin(kind) is typing.Union:  # Optional[X]
        if value is None:
            return None
        kind = [k for k in typing.get_args(kind) if k is not type(None)][0]
    if dataclasses.is_dataclass(kind):
        if isinstance(value, kind):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"`{path}` must be a mapping. Received: {path}={value!r}")
        return from_dict(kind, value, prefix=path + ".")
    try:
        if kind is bool:
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
                return value.lower() in ("true", "1")
            if not isinstance(value, bool):
                raise TypeError
            return value
        if kind is tuple:
            if isinstance(value, str):
                value = [v for v in value.replace("x", ",").split(",") if v.strip()]
                value = [yaml_load(v) for v in value]
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = [value]  # a lone number is a one-item list; validate() judges its length
            if not isinstance(value, (list, tuple)):
                raise TypeError
            return tuple(value)
        if kind is dict:
            if not isinstance(value, dict):
                raise TypeError
            return dict(value)
        if kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if kind is str:
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise TypeError
            return str(value)
    except (TypeError, ValueError):
        name = getattr(kind, "__name__", str(kind))
        raise ConfigError(f"`{path}` must be of type {name}. Received: {path}={value!r}") from None
    return value


def from_dict(cls, values: dict, prefix: str = ""):
    """Builds config `cls` from a (nested) dict, rejecting unknown fields by name."""
    if values is None:
        values = {}
    types = _field_types(cls)
    unknown = sorted(set(values) - set(types))
    if unknown:
        raise ConfigError(
            f"unknown config field `{prefix}{unknown[0]}`; allowed fields of `{prefix.rstrip('.') or 'config'}`: "
            f"{', '.join(sorted(types))}")
    kwargs = {k: _coerce(v, types[k], prefix + k) for k, v in values.items()}
    return cls(**kwargs)


def to_dict(cfg) -> dict:
    """A plain JSON-serialisable dict of a config (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def _replace_path(cfg, parts: list, value: Any, full: str):
    types = _field_types(type(cfg))
    head = parts[0]
    if head not in types:
        prefix = full[: len(full) - len(".".join(parts))]
        raise ConfigError(
            f"unknown config field `{full}`; allowed fields of `{prefix.rstrip('.') or 'config'}`: "
            f"{', '.join(sorted(types))}")
    if len(parts) == 1:
        return dataclasses.replace(cfg, **{head: _coerce(value, types[head], full)})
    child = getattr(cfg, head)
    if not dataclasses.is_dataclass(child):
        raise ConfigError(f"`{full}`: `{head}` is not a group of fields")
    return dataclasses.replace(cfg, **{head: _replace_path(child, parts[1:], value, full)})


def apply_overrides(cfg: RunConfig, overrides: dict) -> RunConfig:
    """Returns `cfg` with dotted-path overrides applied, e.g. {"train.epochs": 3}."""
    for key, value in overrides.items():
        if isinstance(value, str) and value.strip():
            try:
                value = yaml_load(value)
            except yaml.YAMLError:
                pass  # not YAML: keep the text, the field's type decides
        cfg = _replace_path(cfg, key.split("."), value, key)
    return validate(cfg)


def parse_override(text: str) -> tuple:
    """Parses one `--set` item `a.b=value` into (path, value)."""
    if "=" not in text:
        raise ConfigError(f"override must look like `section.field=value`. Received: {text!r}")
    key, value = text.split("=", 1)
    return key.strip(), value


def load_config_file(path: str) -> dict:
    """Reads a YAML or JSON config file into a dict."""
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    with open(path) as fh:
        text = fh.read()
    try:
        values = json.loads(text) if path.endswith(".json") else yaml_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"config file {path} is not valid {'JSON' if path.endswith('.json') else 'YAML'}: "
                          f"{str(err).splitlines()[0]}") from None
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return values


def load_config(path: str) -> RunConfig:
    """Loads and validates a RunConfig from a YAML/JSON file."""
    return validate(from_dict(RunConfig, load_config_file(path)))


def _check_choice(path: str, value: Any):
    allowed = CHOICES[path]
    if value not in allowed:
        raise ConfigError(f"`{path}` must be one of {', '.join(allowed)}. Received: {path}={value!r}")


def _check_range(path: str, value, low=None, high=None, low_open=False):
    if value is None:
        return
    bad = (low is not None and (value <= low if low_open else value < low)) or (high is not None and value > high)
    if bad:
        lo = "" if low is None else (f"> {low}" if low_open else f">= {low}")
        hi = "" if high is None else f"<= {high}"
        raise ConfigError(f"`{path}` must be {' and '.join(x for x in (lo, hi) if x)}. Received: {path}={value!r}")


def _check_size(path: str, value):
    if value is None:
        return
    if len(value) != 2 or not all(isinstance(v, int) and v > 0 for v in value):
        raise ConfigError(f"`{path}` must be two positive integers (height, width). Received: {path}={value!r}")


def validate(cfg: RunConfig) -> RunConfig:
    """Checks every field's range and choices; returns `cfg` unchanged or raises ConfigError."""
    d, a, m, t = cfg.data, cfg.data.augment, cfg.model, cfg.train
    if not d.source.startswith(SOURCE_PREFIXES):
        raise ConfigError(f"`data.source` must be fashion_mnist or start with one of idx:, tfds:, folder:, npz:, "
                          f"text:. Received: data.source={d.source!r}")
    _check_size("data.image_size", d.image_size)
    _check_size("model.input_size", m.input_size)
    if d.channels not in (None, 1, 3):
        raise ConfigError(f"`data.channels` must be 1, 3 or null. Received: data.channels={d.channels!r}")
    _check_range("data.validation_split", d.validation_split, 0.0, 0.9)
    if d.cache not in CHOICES["data.cache"] and "/" not in d.cache:
        raise ConfigError(f"`data.cache` must be memory, none or a directory path containing '/' (e.g. ./cache). "
                          f"Received: data.cache={d.cache!r}")
    _check_range("data.shuffle_buffer", d.shuffle_buffer, 1)
    _check_choice("data.bad_files", d.bad_files)
    _check_range("data.max_image_pixels", d.max_image_pixels, 1)
    _check_range("data.center_crop", d.center_crop, 0.0, 1.0, low_open=True)
    if d.bad_files == "strict" and not d.check_files:
        raise ConfigError("`data.bad_files=strict` needs `data.check_files=true` (the up-front check finds the bad "
                          "files). Received: data.check_files=False")
    _check_range("data.limit_train", d.limit_train, 1)
    _check_choice("data.balance", d.balance)
    if d.balance != "none" and d.source.startswith(TEXT_SOURCE_PREFIX):
        raise ConfigError(f"`data.balance` is not supported for text sources yet. Received: data.balance="
                          f"{d.balance!r}, data.source={d.source!r}")
    _check_range("data.limit_test", d.limit_test, 1)
    _check_range("data.augment.rotation", a.rotation, 0.0, 180.0)
    for name in ("shift", "shear", "zoom", "brightness", "contrast"):
        _check_range(f"data.augment.{name}", getattr(a, name), 0.0, 0.9)
    _check_choice("data.augment.fill_mode", a.fill_mode)
    _check_choice("data.augment.interpolation", a.interpolation)
    _check_range("data.augment.crop_area_min", a.crop_area_min, 0.0, 1.0)
    _check_range("data.augment.mixup", a.mixup, 0.0, 10.0)
    _check_range("data.augment.cutmix", a.cutmix, 0.0, 10.0)
    _check_choice("data.augment.policy", a.policy)
    _check_range("data.augment.policy_ops", a.policy_ops, 1, 5)
    _check_range("data.augment.policy_magnitude", a.policy_magnitude, 0.0, 1.0)
    _check_range("data.augment.erase_prob", a.erase_prob, 0.0, 1.0)
    _check_range("data.augment.erase_max_area", a.erase_max_area, 0.02, 1.0)
    _check_choice("model.head.pooling", m.head.pooling)
    _check_range("model.head.dropout", m.head.dropout, 0.0, 0.95)
    if not all(isinstance(u, int) and u > 0 for u in m.head.dense_units):
        raise ConfigError(f"`model.head.dense_units` must be positive integers. "
                          f"Received: model.head.dense_units={m.head.dense_units!r}")
    _check_range("train.epochs", t.epochs, 1)
    _check_range("train.batch_size", t.batch_size, 1)
    _check_range("train.learning_rate", t.learning_rate, 0.0, 10.0, low_open=True)
    _check_range("train.momentum", t.momentum, 0.0, 1.0)
    _check_range("train.weight_decay", t.weight_decay, 0.0)
    _check_range("train.l2", t.l2, 0.0)
    _check_range("train.label_smoothing", t.label_smoothing, 0.0, 0.5)
    _check_range("train.ema_momentum", t.ema_momentum, 0.0, 0.9999)
    if t.ema_momentum and t.backup_every_steps:
        # A step checkpoint taken at an epoch end would hold the swapped-in averaged weights as the
        # training weights; resuming from it would silently continue from the average.
        raise ConfigError("`train.ema_momentum` cannot be combined with resumable training yet. Received: "
                          f"train.ema_momentum={t.ema_momentum!r} and "
                          f"train.backup_every_steps={t.backup_every_steps!r}")
    _check_range("train.warmup_steps", t.warmup_steps, 0)
    _check_range("train.decay_steps", t.decay_steps, 1)
    _check_range("train.steps_per_epoch", t.steps_per_epoch, 1)
    _check_range("train.backup_every_steps", t.backup_every_steps, 0)
    _check_range("train.keep_checkpoints", t.keep_checkpoints, 2)
    _check_choice("train.optimizer", t.optimizer)
    _check_choice("train.schedule", t.schedule)
    _validate_fast_training(cfg)
    f = cfg.finetune
    for name in ("epochs", "unfreeze_layers", "unfreeze_blocks"):
        _check_range(f"finetune.{name}", getattr(f, name), 0)
    _check_range("finetune.learning_rate", f.learning_rate, 0.0, 10.0, low_open=True)
    _check_range("finetune.lr_decay_per_block", f.lr_decay_per_block, 0.0, 1.0, low_open=True)
    if f.unfreeze_layers and f.unfreeze_blocks:
        raise ConfigError(f"set `finetune.unfreeze_layers` or `finetune.unfreeze_blocks`, not both. Received: "
                          f"finetune.unfreeze_layers={f.unfreeze_layers}, finetune.unfreeze_blocks={f.unfreeze_blocks}")
    validate_serve(cfg.serve)
    dist, tune = cfg.distribute, cfg.tune
    for name in ("strategy", "scale_learning_rate", "shard_policy"):
        _check_choice(f"distribute.{name}", getattr(dist, name))
    _check_range("distribute.backup_every_steps", dist.backup_every_steps, 1)
    _check_choice("tune.algorithm", tune.algorithm)
    for name in ("max_trials", "executions_per_trial", "max_epochs"):
        _check_range(f"tune.{name}", getattr(tune, name), 1)
    _check_range("tune.hyperband_factor", tune.hyperband_factor, 2)
    _check_range("model.lora_rank", m.lora_rank, 0)
    _check_range("model.ensemble", m.ensemble, 1, 16)
    if m.ensemble > 1 and not d.source.startswith(TEXT_SOURCE_PREFIX):
        raise ConfigError("`model.ensemble` > 1 trains text classifiers (data.source=text:...); for image models, "
                          "train runs with different train.seed values and average them with "
                          f"`fmkeras evaluate --ensemble=RUN_A,RUN_B`. Received: model.ensemble={m.ensemble}, "
                          f"data.source={d.source!r}")
    if m.lora_rank and f.epochs:
        raise ConfigError(f"`model.lora_rank` replaces staged fine-tuning; set finetune.epochs=0. "
                          f"Received: model.lora_rank={m.lora_rank}, finetune.epochs={f.epochs}")
    _check_range("text.max_tokens", cfg.text.max_tokens, 3)
    _check_range("text.sequence_length", cfg.text.sequence_length, 1)
    _check_range("text.ngrams", cfg.text.ngrams, 1, 3)
    _check_range("text.token_dropout", cfg.text.token_dropout, 0.0, 0.9)
    _check_choice("text.standardize", cfg.text.standardize)
    _check_choice("text.wide", cfg.text.wide)
    _check_range("text.wide_ngrams", cfg.text.wide_ngrams, 1, 3)
    _check_range("text.wide_max_tokens", cfg.text.wide_max_tokens, 3)
    _check_range("text.linear_weight", cfg.text.linear_weight, 0.0, 1.0, low_open=True)
    if not cfg.text.linear_l2 or not all(isinstance(v, (int, float)) and v >= 0 for v in cfg.text.linear_l2):
        raise ConfigError("`text.linear_l2` must be a non-empty list of numbers >= 0. "
                          f"Received: text.linear_l2={cfg.text.linear_l2!r}")
    _check_range("data.labels_per_class", d.labels_per_class, 1)
    _check_range("data.label_noise", d.label_noise, 0.0, 0.9)
    _check_choice("train.adversarial", t.adversarial)
    _check_range("train.adversarial_epsilon", t.adversarial_epsilon, 0.0, 1.0, low_open=True)
    _check_range("train.adversarial_steps", t.adversarial_steps, 1)
    _check_choice("train.loss", t.loss)
    p = cfg.pretrain
    _check_choice("pretrain.method", p.method)
    _check_range("pretrain.epochs", p.epochs, 1)
    _check_range("pretrain.batch_size", p.batch_size, 2)
    _check_range("pretrain.learning_rate", p.learning_rate, 0.0, 10.0, low_open=True)
    _check_range("pretrain.temperature", p.temperature, 0.0, 10.0, low_open=True)
    _check_range("pretrain.crop_min_scale", p.crop_min_scale, 0.0, 1.0, low_open=True)
    _check_range("pretrain.brightness", p.brightness, 0.0, 0.9)
    _check_range("pretrain.contrast", p.contrast, 0.0, 0.9)
    _check_range("pretrain.erase_prob", p.erase_prob, 0.0, 1.0)
    _check_range("pretrain.erase_max_area", p.erase_max_area, 0.0, 1.0, low_open=True)
    _check_range("pretrain.noise_stddev", p.noise_stddev, 0.0, 255.0)
    if not p.projection_units or not all(isinstance(u, int) and u > 0 for u in p.projection_units):
        raise ConfigError(f"`pretrain.projection_units` must be positive integers (hidden..., output). "
                          f"Received: pretrain.projection_units={p.projection_units!r}")
    if p.output is not None and not p.output.endswith(".keras"):
        raise ConfigError(f"`pretrain.output` must be a .keras file. Received: pretrain.output={p.output!r}")
    _check_range("distill.temperature", cfg.distill.temperature, 0.0, 100.0, low_open=True)
    _check_range("distill.alpha", cfg.distill.alpha, 0.0, 1.0)
    if not cfg.name or "/" in cfg.name:
        raise ConfigError(f"`name` must be a non-empty name without '/'. Received: name={cfg.name!r}")
    return cfg


def _validate_fast_training(cfg: RunConfig):
    """one_cycle, clipping, accumulation and precision settings (fmkeras.train.schedules/optimizers)."""
    t = cfg.train
    _check_range("train.one_cycle_div", t.one_cycle_div, 1.0)
    _check_range("train.one_cycle_final_div", t.one_cycle_final_div, 1.0)
    _check_range("train.one_cycle_pct_start", t.one_cycle_pct_start, 0.0, 1.0, low_open=True)
    if t.one_cycle_momentum and (len(t.one_cycle_momentum) != 2 or not all(
            isinstance(v, (int, float)) and 0.0 <= v < 1.0 for v in t.one_cycle_momentum)):
        raise ConfigError("`train.one_cycle_momentum` must be two numbers in [0, 1) (at the ends, at the peak LR) "
                          f"or empty. Received: train.one_cycle_momentum={t.one_cycle_momentum!r}")
    if t.schedule == "one_cycle" and t.one_cycle_momentum and cfg.finetune.lr_decay_per_block < 1.0:
        raise ConfigError("`train.schedule=one_cycle` with momentum cycling cannot be combined with "
                          "`finetune.lr_decay_per_block` < 1 yet; set train.one_cycle_momentum=[] or "
                          f"lr_decay_per_block=1. Received: finetune.lr_decay_per_block={cfg.finetune.lr_decay_per_block}")
    _check_range("train.clipnorm", t.clipnorm, 0.0)
    _check_range("train.clipvalue", t.clipvalue, 0.0)
    if t.clipnorm and t.clipvalue:
        raise ConfigError(f"set `train.clipnorm` or `train.clipvalue`, not both. Received: "
                          f"train.clipnorm={t.clipnorm}, train.clipvalue={t.clipvalue}")
    _check_range("train.accumulate_steps", t.accumulate_steps, 1, 1024)
    _check_range("train.prune_sparsity", t.prune_sparsity, 0.0, 0.99)
    _check_choice("train.prune_schedule", t.prune_schedule)
    _check_range("train.prune_begin", t.prune_begin, 0.0, 1.0)
    _check_range("train.prune_end", t.prune_end, t.prune_begin, 1.0, low_open=True)
    _check_range("train.prune_frequency", t.prune_frequency, 1)
    _check_choice("train.precision", t.precision)
    tta = cfg.export.tta
    if tta is not None and not (tta == "flip" or (tta.isdigit() and 2 <= int(tta) <= 10)):
        raise ConfigError(f"`export.tta` must be flip or an integer 2..10. Received: export.tta={tta!r}")
    if t.precision == "mixed_float16" and t.adversarial != "none":
        # Adversarial training's own train step does not scale the loss, which float16 gradients need.
        raise ConfigError(f"`train.precision=mixed_float16` cannot be combined with adversarial training; use "
                          f"mixed_bfloat16. Received: train.adversarial={t.adversarial!r}")
    if t.precision != "float32" and cfg.data.source.startswith(TEXT_SOURCE_PREFIX):
        # Text classifiers' heads are not pinned to float32: their softmax would run in the mixed dtype.
        raise ConfigError(f"`train.precision` must be float32 for text sources. Received: "
                          f"train.precision={t.precision!r}, data.source={cfg.data.source!r}")


def validate_serve(s: ServeConfig) -> ServeConfig:
    """Checks the serve section's ranges; returns it unchanged or raises ConfigError."""
    _check_range("serve.port", s.port, 0, 65535)
    for name in ("max_body_bytes", "max_json_depth", "max_batch_instances", "max_image_pixels", "max_connections",
                 "batch_max_size", "max_queue", "max_inflight", "max_json_containers", "max_request_pixels",
                 "max_connections_per_client"):
        _check_range(f"serve.{name}", getattr(s, name), 1)
    for name in ("poll_seconds", "request_timeout_seconds", "read_timeout_seconds", "shutdown_grace_seconds",
                 "idle_timeout_seconds"):
        _check_range(f"serve.{name}", getattr(s, name), 0.0, low_open=True)
    _check_range("serve.batch_timeout_ms", s.batch_timeout_ms, 0.0)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in s.versions):
        raise ConfigError(f"`serve.versions` must be positive integers. Received: serve.versions={s.versions!r}")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in s.version_labels.values()):
        raise ConfigError(f"`serve.version_labels` must map labels to positive integer versions. "
                          f"Received: serve.version_labels={s.version_labels!r}")
    for name in ("allowed_hosts", "allowed_origins"):
        if not all(isinstance(v, str) and v for v in getattr(s, name)):
            raise ConfigError(f"`serve.{name}` must be non-empty strings. Received: serve.{name}={getattr(s, name)!r}")
    return s
