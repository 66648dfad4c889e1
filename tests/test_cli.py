"""The command line as a user meets it: real subprocesses, exit codes, files."""
import json
import subprocess
import sys

import pytest


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "sweeps.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_help_shows_examples():
    for args in ((), ("trial",), ("sweep",), ("status",)):
        out = cli(*args, "--help")
        assert out.returncode == 0 and "example" in out.stdout


@pytest.mark.parametrize("flag, value, message", [
    ("--dropout", "1.0", "dropout=1.0: must be in [0, 1)"),
    ("--width", "0", "width=0: must be >= 1"),
    ("--depth", "0", "depth=0: must be >= 1"),
    ("--steps", "0", "steps=0: must be >= 1"),
    ("--n-train", "1", "n_train=1: must be >= 2"),
    ("--noise-std", "-1", "noise_std=-1.0: must be >= 0"),
    ("--lr", "nan", "lr=nan: must be a finite number"),
    ("--width", "3.5", "expected an integer"),
    ("--device", "cuda:x", "device='cuda:x'"),
])
def test_invalid_field_exit_code_2_one_line_nothing_written(tmp_path, flag, value, message):
    out = cli("trial", flag, value, "--plot", str(tmp_path / "fit.png"))
    assert out.returncode == 2
    assert message in out.stderr
    assert len([line for line in out.stderr.splitlines() if "error" in line]) == 1
    assert not (tmp_path / "fit.png").exists() and out.stdout == ""


def test_cuda_fails_clearly_without_cuda():
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = cli("trial", "--device", "cuda", "--steps", "2")
    assert out.returncode == 2 and "CUDA is not available" in out.stderr


def test_trial_json_and_plot_and_animation(tmp_path):
    png, gif = tmp_path / "fit.png", tmp_path / "fit.gif"
    out = cli("trial", "--width", "16", "--steps", "30", "--json", "--plot", str(png), "--animate", str(gif))
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["config"]["width"] == 16 and len(result["plain"]["curve_steps"]) == 4
    from PIL import Image
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 100
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames == 4


def test_trial_table_and_reference_loop():
    out = cli("trial", "--width", "16", "--steps", "20", "--reference")
    assert out.returncode == 0, out.stderr
    assert "plain" in out.stdout and "delta test MSE" in out.stdout
