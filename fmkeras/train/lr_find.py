"""Learning-rate range test (Smith 2015, "Cyclical Learning Rates for Training Neural Networks", sec. 3.3).

The learning rate grows exponentially from `min_lr` to `max_lr` over `steps` training steps, one batch
each; the loss of every batch is recorded and smoothed with a bias-corrected exponential moving average
(as fastai's `lr_find`; its span defaults to ~5% of the sweep, since a fixed beta=0.98 lags ~50 steps,
three decades of LR on a 120-step sweep). The sweep stops early once the smoothed loss exceeds
`diverge_factor` times its minimum. The suggestion reads a zero-lag curve (the same average run forwards
then backwards): the LR where it falls fastest against log(lr), searched before its minimum (fastai's
"steep"); `min_loss_lr / 10` is reported beside it. The model's weights are restored
afterwards, so the test does not train the model it is given (it is left compiled with the sweep's
optimizer: `fit`/`compile_model` recompile it).

Example (a notebook):
    result = lr_range_test(model, data.train, cfg.train, steps=200)
    result.save("runs/lr_find")          # lr_find.json + lr_find.png
    print(result.suggested_lr)
"""
from __future__ import annotations

import dataclasses
import json
import math
import os

import keras
import numpy as np

from fmkeras.config import TrainConfig
from fmkeras.train.losses import build_loss
from fmkeras.train.optimizers import build_optimizer
from fmkeras.train.trainer import has_soft_labels

JSON_FILE, PLOT_FILE = "lr_find.json", "lr_find.png"


@dataclasses.dataclass
class LRFinderResult:
    """The sweep: one learning rate, raw loss and smoothed loss per step, and the suggestions."""
    learning_rates: list
    losses: list
    smoothed_losses: list
    suggested_lr: float
    min_loss_lr: float
    stopped_early: bool

    def to_dict(self) -> dict:
        return {"suggested_learning_rate": self.suggested_lr, "min_loss_learning_rate": self.min_loss_lr,
                "min_loss_lr_div_10": self.min_loss_lr / 10, "steps": len(self.losses),
                "stopped_early": self.stopped_early, "learning_rates": self.learning_rates,
                "losses": self.losses, "smoothed_losses": self.smoothed_losses}

    def save(self, out_dir: str) -> dict:
        """Writes `lr_find.json` and the curve `lr_find.png` into `out_dir`; returns their paths."""
        os.makedirs(out_dir, exist_ok=True)
        paths = {"json": os.path.join(out_dir, JSON_FILE), "plot": os.path.join(out_dir, PLOT_FILE)}
        with open(paths["json"], "w") as fh:
            json.dump(self.to_dict(), fh, indent=2)
        self.plot(paths["plot"])
        return paths

    def plot(self, path: str) -> str:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(self.learning_rates, self.losses, color="0.8", label="loss per batch")
        ax.plot(self.learning_rates, self.smoothed_losses, label="smoothed loss")
        ax.axvline(self.suggested_lr, color="C3", linestyle="--", label=f"suggested {self.suggested_lr:.2e}")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        finite = [v for v in self.smoothed_losses if math.isfinite(v)]
        if finite:
            ax.set_ylim(min(finite) * 0.9, min(max(finite), finite[0] * 2) * 1.05)
        ax.legend()
        ax.set_title("LR range test")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path


def smooth(losses, beta: float = 0.98) -> list:
    """Bias-corrected exponential moving average: avg_i = (beta avg_{i-1} + (1-beta) x_i), / (1 - beta^i)."""
    avg, out = 0.0, []
    for i, value in enumerate(losses, start=1):
        avg = beta * avg + (1 - beta) * value
        out.append(avg / (1 - beta ** i))
    return out


def zero_lag(losses, beta: float) -> list:
    """`smooth` forwards, then the result smoothed backwards: the lags cancel (like scipy's filtfilt)."""
    return smooth(smooth(losses, beta)[::-1], beta)[::-1]


def default_beta(steps: int) -> float:
    """EMA factor spanning ~5% of the sweep, in [0.8, 0.98]."""
    return float(min(0.98, max(0.8, 1 - 20 / steps)))


def suggest(learning_rates, smoothed, skip_start: int = 10) -> float:
    """The LR of the steepest fall of `smoothed` vs log10(lr), before its minimum (skipping the first steps)."""
    lrs, values = np.asarray(learning_rates), np.asarray(smoothed)
    end = int(np.nanargmin(values)) + 1
    start = min(skip_start, max(end - 2, 0))
    if end - start < 2:
        return float(lrs[max(end - 1, 0)])
    slopes = np.gradient(values[start:end], np.log10(lrs[start:end]))
    return float(lrs[start + int(np.nanargmin(slopes))])


def lr_range_test(model: keras.Model, dataset, cfg: TrainConfig = TrainConfig(), min_lr: float = 1e-7,
                  max_lr: float = 1.0, steps: int = 200, beta: float = None,
                  diverge_factor: float = 4.0) -> LRFinderResult:
    """Runs the LR range test on `model` over batches of `dataset` (repeated as needed).

    dataset: batched (images, labels); integer labels, or one-hot when `cfg.label_smoothing` is set.
    cfg: the optimizer (with its momentum/weight decay), loss and label smoothing to test with.
    Returns the sweep; `model`'s weights are left as they were.
    """
    if not 0 < min_lr < max_lr:
        raise ValueError(f"`min_lr` must be > 0 and < `max_lr`. Received: min_lr={min_lr}, max_lr={max_lr}")
    if steps < 10:
        raise ValueError(f"`steps` must be >= 10. Received: steps={steps}")
    beta = default_beta(steps) if beta is None else beta
    weights = model.get_weights()
    factor = (max_lr / min_lr) ** (1 / (steps - 1))
    optimizer = build_optimizer(dataclasses.replace(cfg, ema_momentum=0.0), min_lr)
    soft = has_soft_labels(dataset) and cfg.loss == "crossentropy"  # MixUp/CutMix (B, K) labels
    loss_fn = keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing) if soft else build_loss(cfg)
    model.compile(optimizer=optimizer, loss=loss_fn)
    lrs, losses, smoothed, best, stopped, avg = [], [], [], math.inf, False, 0.0
    batches = iter(dataset.repeat())
    try:
        for step in range(steps):
            lr = min_lr * factor ** step
            optimizer.learning_rate = lr
            x, y = next(batches)
            loss = float(model.train_on_batch(x, y))  # resets the metrics: this batch's loss
            lrs.append(lr)
            losses.append(loss)
            avg = beta * avg + (1 - beta) * loss
            smoothed.append(avg / (1 - beta ** (step + 1)))
            if not math.isfinite(loss) or (step > 10 and smoothed[-1] > diverge_factor * best):
                stopped = True
                break
            best = min(best, smoothed[-1])
    finally:
        model.set_weights(weights)
    finite = [i for i, v in enumerate(losses) if math.isfinite(v)]
    usable_lrs = [lrs[i] for i in finite]
    usable = zero_lag([losses[i] for i in finite], beta)
    smoothed = usable + [math.nan] * (len(lrs) - len(usable))
    if len(usable) < 2:
        raise ValueError(f"the loss was not finite from the first steps (min_lr={min_lr}); lower `min_lr`")
    min_loss_lr = usable_lrs[int(np.argmin(usable))]
    return LRFinderResult(learning_rates=lrs, losses=losses, smoothed_losses=smoothed,
                          suggested_lr=suggest(usable_lrs, usable, skip_start=max(2, len(usable) // 20)),
                          min_loss_lr=float(min_loss_lr),
                          stopped_early=stopped)

