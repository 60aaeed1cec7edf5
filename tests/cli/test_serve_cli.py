"""`fmkeras serve`: starts from the command line, answers TF Serving requests, stops on Ctrl-C."""
import os
import signal
import subprocess
import sys

import pytest

from tests.cli.test_cli import ROOT, _error_lines, run_in_process


@pytest.fixture(scope="module")
def base_path(tmp_path_factory, fashion):
    from fmkeras.config import ModelConfig
    from fmkeras.export import export_saved_model
    from fmkeras.transfer import build_classifier
    model = build_classifier(ModelConfig(backbone_options={"filters": (4, 8)}), (28, 28, 1), 10)
    base = str(tmp_path_factory.mktemp("saved_models") / "fashion")
    for _ in range(2):
        export_saved_model(model, base, fashion.class_names, (28, 28, 1))
    return base


@pytest.mark.parametrize("args,message", [
    ([], "serve needs --model_base_path=saved_models/<name>"),
    (["--model_base_path=/no/such/dir"], "model base path not found: /no/such/dir"),
    (["--model_base_path=.", "--versions=1,x"], "--versions needs positive integer versions. Received: 'x'"),
    (["--model_base_path=.", "--version_labels=stable"], "--version_labels needs label=version items"),
    (["--model_base_path=.", "--batch_max_size=0"], "`serve.batch_max_size` must be >= 1"),
    (["--model_base_path=.", "--max_inflight=0"], "`serve.max_inflight` must be >= 1"),
    (["--model_base_path=.", "--read_timeout_seconds=0"], "`serve.read_timeout_seconds` must be > 0"),
    (["--model_base_path=.", "--shutdown_grace_seconds=-1"], "`serve.shutdown_grace_seconds` must be > 0"),
    (["--model_base_path=.", "--auth_token_file=/no/such/token"], "auth token file not found: /no/such/token"),
    (["--model_base_path=.", "--set=serve.max_inflight=0"], "`serve.max_inflight` must be >= 1"),
    (["--model_base_path=.", "--set=train.epochs=3"],
     "train.epochs is a setting of `fmkeras train`, not of `fmkeras serve`"),
])
def test_serve_user_errors(capsys, args, message):
    assert run_in_process("serve", *args) == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and message in lines[0], lines


def _interrupt(proc):
    """Ctrl-C, as a user stops the server; killed if it does not exit within 30 s."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_serve_command_serves_and_stops(base_path, fashion):
    from fmkeras.serve.client import model_status, predict
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    proc = subprocess.Popen([sys.executable, "-m", "fmkeras.cli.main", "serve", f"--model_base_path={base_path}",
                             "--port=0", "--model_name=fm", "--versions=1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()  # "serving model 'fm' versions [1] from ... at http://127.0.0.1:PORT/..."
        assert "serving model 'fm' versions [1]" in line, (line, proc.stderr.read() if proc.poll() else "")
        url = line.split(" at ")[1].split("/v1/")[0]
        assert [s["version"] for s in model_status(url, "fm")] == ["1"]
        assert predict(url, "fm", pixels=fashion.x_test[:2])["probabilities"].shape == (2, 10)
    finally:
        _interrupt(proc)
    assert proc.returncode == 0


def test_serve_beyond_loopback_warns_and_enforces_the_token(base_path, tmp_path):
    import http.client
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    proc = subprocess.Popen([sys.executable, "-m", "fmkeras.cli.main", "serve", f"--model_base_path={base_path}",
                             "--host=0.0.0.0", "--port=0", f"--auth_token_file={token}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert "serving model 'fashion'" in line, (line, proc.stderr.read() if proc.poll() else "")
        port = int(line.split(" at ")[1].split("/v1/")[0].rsplit(":", 1)[1])
        statuses = []
        for headers in ({}, {"Authorization": "Bearer t0ken"}):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/v1/models/fashion", headers=headers)
            statuses.append(conn.getresponse().status)
            conn.close()
        assert statuses == [401, 200]
    finally:
        _interrupt(proc)
    err = proc.stderr.read()
    assert "warning: listening on 0.0.0.0, reachable from other machines" in err, err[-2000:]
