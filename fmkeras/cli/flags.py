"""Flags shared by the fmkeras commands; each maps onto a config field or a command input."""
from absl import flags

FLAGS = flags.FLAGS

flags.DEFINE_string("recipe", None, "Built-in recipe to start from (see `fmkeras list`). Default: cnn_fashion, or "
                    "cnn_fashion_fast on a CPU that trains in float32; efficientnet_lite0_transfer for folder: data.")
flags.DEFINE_string("config", None, "YAML/JSON config file; applied after --recipe.")
flags.DEFINE_multi_string("set", [], "Override any config field: --set=train.epochs=3 (repeatable).")
flags.DEFINE_string("data", None, "data.source: fashion_mnist | idx:DIR | tfds:NAME | folder:DIR | npz:FILE | "
                    "multilabel:FILE.csv | text:....")
flags.DEFINE_string("backbone", None, "model.backbone (see `fmkeras list`).")
flags.DEFINE_string("weights", None, "model.weights: none | imagenet | PATH (.weights.h5/.h5/.keras).")
flags.DEFINE_integer("epochs", None, "train.epochs.")
flags.DEFINE_integer("batch_size", None, "train.batch_size; predict: images per model call (default 32).")
flags.DEFINE_float("learning_rate", None, "train.learning_rate.")
flags.DEFINE_integer("limit_train", None, "data.limit_train: use at most this many training images.")
flags.DEFINE_string("name", None, "Run name (run directory prefix and default exported model name).")
flags.DEFINE_string("run_dir", None, "Run directory: where `train` writes (reused to resume) and what "
                    "`evaluate`/`export` read.")
flags.DEFINE_string("model", None, "evaluate/export/predict: a run directory, a .keras file or a SavedModel version dir "
                    "(predict also: preset:NAME).")
flags.DEFINE_string("export_dir", None, "export.base_dir (default saved_models).")
flags.DEFINE_string("model_name", None, "export.model_name (default: the run name).")
flags.DEFINE_boolean("export", None, "export.enabled: export a SavedModel after training.")
flags.DEFINE_string("ensemble", None, "evaluate: comma-separated run dirs / .keras files / SavedModel version dirs "
                    "whose predicted probabilities are averaged; reports each model's and the ensemble's accuracy.")
flags.DEFINE_enum("strategy", None, ["auto", "default", "mirrored", "multiworker", "tpu"],
                  "distribute.strategy: auto picks tpu (distribute.tpu/$TPU_NAME set), multiworker (TF_CONFIG with "
                  "several workers), mirrored (> 1 GPU) or default.")
flags.DEFINE_enum("algorithm", None, ["random", "bayesian", "hyperband"], "tune.algorithm of `fmkeras tune`.")
flags.DEFINE_integer("max_trials", None, "tune.max_trials of `fmkeras tune`.")
flags.DEFINE_string("tune_dir", None, "tune.directory: where `fmkeras tune` keeps (and resumes) its search.")
flags.DEFINE_boolean("verbose_errors", False, "Show the full traceback of user errors too.")
flags.DEFINE_integer("labels_per_class", None, "data.labels_per_class: train on K seeded labels per class "
                     "(also spelled --labels-per-class).")

# Flag name -> config field it overrides.
FIELD_FLAGS = {
    "data": "data.source", "backbone": "model.backbone", "weights": "model.weights", "epochs": "train.epochs",
    "batch_size": "train.batch_size", "learning_rate": "train.learning_rate", "limit_train": "data.limit_train",
    "name": "name", "run_dir": "run_dir", "export_dir": "export.base_dir", "model_name": "export.model_name",
    "export": "export.enabled", "strategy": "distribute.strategy",
    "algorithm": "tune.algorithm", "max_trials": "tune.max_trials", "tune_dir": "tune.directory",
    "labels_per_class": "data.labels_per_class",
}


def config_from_flags(cls=None):
    """The command's config (`cls`, default RunConfig) from --recipe, --config, --set and the field flags."""
    from fmkeras.cli.resolve import resolve_config
    from fmkeras.config import RunConfig
    fields = {field: getattr(FLAGS, flag) for flag, field in FIELD_FLAGS.items()}
    return resolve_config(FLAGS.recipe, FLAGS.config, FLAGS.set, fields, cls=cls or RunConfig)
