"""Train: optimizers, schedules, callbacks and the fit loop."""
from fmkeras.train.trainer import TrainResult, compile_model, fit, restores_dtype_policy, seed_everything

__all__ = ["TrainResult", "compile_model", "fit", "restores_dtype_policy", "seed_everything"]
