"""reliability/: fast variants of the `make reliability` scenarios and the scoreboard itself."""
import json
import os
import signal

import pytest

from reliability import corrupt_corpus, determinism, resume_chain, torn_files
from reliability.__main__ import main, scoreboard


def test_scoreboard_runs_scenarios_and_reports_not_run(capsys, tmp_path):
    assert main(["--fast", "--only=torn_files,weight_hashes", f"--workdir={tmp_path}"]) == 0
    board = json.loads(capsys.readouterr().out)
    assert board["scenarios_run"] == board["scenarios_passed"] == 2
    assert board["crashes"] == 0 and board["bytes_lost"] == 0
    assert board["torn_checkpoints_recovered"] == 50
    assert board["scenarios"]["weight_hashes"]["network_attempts"] == 0
    assert not board["not_run"]


def test_scoreboard_counts_come_from_the_scenarios_never_assumed():
    results = {"corrupt_corpus": {"ok": True, "crashes": 0, "skip": {"skipped_count": 12}},
               "serve_a": {"ok": True, "requests_sent": 700, "5xx_count": 0},
               "serve_b": {"ok": False, "requests_sent": 300, "5xx_count": 2, "crashes": 1, "bytes_lost": 5}}
    board = scoreboard(results, 1.0)
    assert (board["requests_sent"], board["5xx_count"], board["crashes"], board["bytes_lost"]) == (1000, 2, 1, 5)
    assert board["corrupt_files_refused"] == 12 and board["scenarios_run"] == 3 and board["scenarios_passed"] == 2


def test_torn_checkpoint_fuzz_always_loads_last_complete_state(tmp_path):
    entry = torn_files.run(str(tmp_path), rounds=25, seed=5)
    assert entry["recovered"] == 25 and entry["wrong_state_loaded"] == [], entry


@pytest.mark.slow
def test_sigkill_and_sigterm_chain_resumes_bit_identical(tmp_path):
    # Real processes: SIGKILL at a seeded random step (then the newest checkpoint is truncated),
    # SIGTERM at another (exit 143 with a checkpoint; then it is bit-flipped), then a clean restart.
    entry = resume_chain.run(str(tmp_path), kills=2, limit_train=192, epochs=2, every=2)
    assert entry["ok"], entry
    assert entry["bytes_lost"] == 0 and entry["optimizer_iterations"] == entry["total_steps"] == 12
    kinds = [(e["kind"], e["rc"]) for e in entry["events"]]
    assert kinds == [("kill", -signal.SIGKILL), ("term", 143)], kinds
    assert entry["sigterm_checkpoints"] == 1 and entry["corrupted_checkpoints"] == 2
    assert entry["final_run_corrupt_reported"] == 1  # metrics.json counts the file it skipped
    assert entry["history_identical"]


@pytest.mark.slow
def test_different_seed_changes_weights_and_savedmodel_matches_keras(tmp_path):
    entry = determinism.run(str(tmp_path), repeat_same_seed=False)
    assert entry["other_seed_changes_weights"] and entry["same_argmax"]
    assert entry["max_abs_diff_pixels"] <= 1e-6 and entry["max_abs_diff_png"] <= 1e-6, entry
    assert entry["max_abs_diff_rest_pixels"] <= 1e-6 and entry["max_abs_diff_rest_png"] <= 1e-6, entry
    assert os.path.isfile(os.path.join(str(tmp_path), "seed1_a", "model.keras.sha256"))


@pytest.mark.slow
def test_corrupt_corpus_strict_fails_up_front_and_skip_trains_on_exactly_the_valid_files(tmp_path):
    # Real `fmkeras train` processes over 2 classes x (12 real images + 6 bad + 3 convertible files).
    entry = corrupt_corpus.run(str(tmp_path), classes=2, per_class=12, epochs=1, timeout=120)
    assert entry["ok"], entry
    strict, skip = entry["strict"], entry["skip"]
    assert strict["rc"] == 2 and strict["error_lines"] == 1 and not strict["run_dir_created"]
    assert strict["bad_files_named"] == entry["files"]["bad"] == 2 * len(corrupt_corpus.BAD)
    assert strict["good_files_named"] == []
    assert skip["images_used"] == entry["expected_images_used"] == 2 * (12 + len(corrupt_corpus.CONVERTIBLE))
    assert skip["skipped_count"] == 12 and skip["skipped_match"] and skip["bombs_refused_from_header"] == 4
    assert entry["peak_rss_mb"] < entry["rss_limit_mb"] and not strict["hung"] and not skip["hung"]


def test_child_peak_rss_is_the_childs_own_not_the_harness(tmp_path):
    import numpy as np
    ballast = np.ones((300, 2 ** 20), np.uint8)  # the harness holds >= 300 MB, as it does after TF scenarios
    result = corrupt_corpus.run_child(["--helpfull"], timeout=60)
    assert result["rc"] == 1 and not result["hung"] and ballast.sum() > 0
    assert 5 < result["peak_rss_mb"] < 150, result["peak_rss_mb"]  # flags only: no TF imported
