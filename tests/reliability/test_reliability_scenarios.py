"""reliability/: fast variants of the `make reliability` scenarios and the scoreboard itself."""
import json
import os
import signal

import pytest

from reliability import determinism, resume_chain, torn_files
from reliability.__main__ import main


def test_scoreboard_runs_scenarios_and_reports_not_run(capsys, tmp_path):
    assert main(["--fast", "--only=torn_files,weight_hashes", f"--workdir={tmp_path}"]) == 0
    board = json.loads(capsys.readouterr().out)
    assert board["scenarios_run"] == board["scenarios_passed"] == 2
    assert board["crashes"] == 0 and board["bytes_lost"] == 0
    assert board["torn_checkpoints_recovered"] == 50
    assert board["scenarios"]["weight_hashes"]["network_attempts"] == 0
    assert not set(board["not_run"]) & {"4", "5", "6"}


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
