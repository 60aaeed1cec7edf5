"""What a search found: a JSON-ready summary of every trial and a PNG of the trial scores."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fmkeras.config import TuneRunConfig  # noqa: E402
from fmkeras.tune.hypermodel import objective_direction  # noqa: E402


def summarize_trials(oracle, cfg: TuneRunConfig) -> dict:
    """Every trial (in start order) with status, score and values, plus the best completed one."""
    trials = []
    for trial_id in sorted(oracle.trials):
        trial = oracle.trials[trial_id]
        trials.append({"trial_id": trial.trial_id, "status": trial.status, "score": trial.score,
                       "best_step": trial.best_step, "values": dict(trial.hyperparameters.values)})
    done = [t for t in trials if t["status"] == "COMPLETED" and t["score"] is not None]
    direction = objective_direction(cfg.tune.objective)
    best = (min if direction == "min" else max)(done, key=lambda t: t["score"]) if done else None
    return {"algorithm": cfg.tune.algorithm, "objective": cfg.tune.objective, "direction": direction,
            "space": cfg.tune.space, "num_trials": len(trials), "num_completed": len(done),
            "trials": trials, "best": best}


def plot_trial_scores(summary: dict, path: str) -> str:
    """Each completed trial's score in trial order, the best-so-far line and the best trial marked."""
    done = [t for t in summary["trials"] if t["status"] == "COMPLETED" and t["score"] is not None]
    fig, ax = plt.subplots(figsize=(7, 4))
    if done:
        xs, ys = [int(t["trial_id"]) for t in done], [t["score"] for t in done]
        pick = min if summary["direction"] == "min" else max
        running = [pick(ys[: i + 1]) for i in range(len(ys))]
        ax.plot(xs, ys, "o", label="trial")
        ax.step(xs, running, where="post", label="best so far")
        best = summary["best"]
        ax.plot([int(best["trial_id"])], [best["score"]], "*", markersize=14, label=f"best (trial {best['trial_id']})")
        ax.legend()
    ax.set_xlabel("trial")
    ax.set_ylabel(summary["objective"])
    ax.set_title(f"{summary['algorithm']} search: {len(done)} completed trial(s)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
