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


@pytest.mark.parametrize("command", ["sweep", "search"])
@pytest.mark.parametrize("content, message", [
    (b"\xff\xfe\x00garbage", "byte 0xff at offset 0 is not UTF-8"),
    (b"", "empty spec file"),
    (b"  \n\n", "empty spec file"),
    (b'name = "a"\x00\n', "holds a NUL byte"),
    (bytes(range(256)), "is not UTF-8"),
])
def test_bad_bytes_in_a_spec_are_one_line_exit_2_nothing_created(tmp_path, command, content, message):
    spec = tmp_path / "s.toml"
    spec.write_bytes(content)
    out = cli(command, str(spec), cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and str(spec) in out.stderr and message in out.stderr, out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]      # no results/ folder, no store


def test_global_threads_flag_reaches_the_command(tmp_path):
    from sweeps.cli import build_parser

    parse = build_parser().parse_args
    assert parse(["--threads", "4", "speed"]).threads == 4                # the global flag, not speed's default
    assert parse(["speed", "--threads", "3"]).threads == 3
    assert parse(["--threads", "2", "speed", "--threads", "5"]).threads == 5   # the nearer one wins
    assert parse(["speed"]).threads == 1 and parse(["trial"]).threads == 1
    assert parse(["--threads", "2", "trial"]).threads == 2
    out = cli("--threads", "2", "speed", "--width", "8", "--steps", "20", "--trials", "2",
              "--reference-trials", "1", "--single-trials", "1", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["threads"] == 2
    bad = cli("--threads", "0", "trial")
    assert bad.returncode == 2 and "--threads" in bad.stderr


@pytest.mark.parametrize("args", [("--help",), ("sweep", "--help"), ("status", "--help"), ("status", "{dir}"),
                                  ("export", "{dir}")])
def test_commands_that_do_not_train_do_not_import_torch(tmp_path, args):
    """``python -X importtime`` lists every module imported; torch must not be among them."""
    from sweeps import run_sweep
    from sweep_helpers import tiny_spec

    out_dir = tmp_path / "out"
    if "{dir}" in args:
        run_sweep(tiny_spec(tmp_path, seeds=1, steps=10), out_dir=out_dir, workers=1, progress=False)
    args = [a.replace("{dir}", str(out_dir)) for a in args]
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "sweeps.cli", *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    imported = [line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:") and "|" in line]
    assert "sweeps.cli" in imported or "sweeps" in imported          # the listing is real
    assert not [m for m in imported if m == "torch" or m.startswith("torch.")]
