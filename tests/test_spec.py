"""Bad specs: one line naming the file, key and problem; exit code 2; nothing created."""
import subprocess
import sys
import textwrap

import pytest

from sweeps.spec import SpecError, load_spec, parse_spec

GOOD = """
name = "t"
seeds = 3
[base]
width = 16
[grid]
dropout = [0.1, 0.5]
n_train = [10, 20]
"""


def test_good_spec_expands_to_cells_times_seeds():
    spec = parse_spec(GOOD, "good.toml")
    cfgs = spec.configs()
    assert len(cfgs) == 2 * 2 * 3 and len(set(cfgs)) == 12
    assert {c.width for c in cfgs} == {16} and {c.seed for c in cfgs} == {0, 1, 2}
    assert parse_spec(GOOD.replace("seeds = 3", "seeds = [4, 9]")).seeds == (4, 9)
    assert spec.report == {} and spec.to_dict()["report"] == {}
    crossed = parse_spec(GOOD.replace("seeds = 3", "seeds = { data = 3, init = 2, masks = 2 }"))
    cfgs = crossed.configs()
    assert len(cfgs) == 4 * 12 and crossed.seeds == tuple(range(12))
    streams = [(c.data_seed, c.init_seed, c.mask_seed) for c in cfgs[:12]]
    assert len(set(streams)) == 12 and streams[:3] == [(0, 0, 0), (0, 0, 1), (0, 1, 0)]
    assert crossed.to_dict()["crossed"] == {"data": 3, "init": 2, "masks": 2}
    assert "crossed" not in spec.to_dict()             # a plain spec, and its identity, are unchanged
    judged = parse_spec(GOOD + "[report]\nsmallest_effect = 0.01\n")
    assert judged.to_dict()["report"] == {"smallest_effect": 0.01}


BAD = [
    ("widht = 3\n" + GOOD, "widht: unknown key"),
    (GOOD.replace('name = "t"', ""), "name: required"),
    (GOOD.replace("seeds = 3", "seeds = 0"), "seeds: count must be >= 1"),
    (GOOD.replace("seeds = 3", "seeds = [1, 1]"), "seeds: duplicate seed 1"),
    (GOOD.replace("seeds = 3", 'seeds = "3"'), "seeds: must be a count or a list of integers"),
    (GOOD.replace("dropout = [0.1, 0.5]", "dropout = []"), "grid.dropout: empty axis"),
    (GOOD.replace("dropout = [0.1, 0.5]", "dropout = [0.1, 0.1]"), "grid.dropout: duplicate value 0.1"),
    (GOOD.replace("dropout = [0.1, 0.5]", "dropout = [0.1, 1.5]"), "grid.dropout[1]: dropout=1.5: must be in [0, 1)"),
    (GOOD.replace("n_train = [10, 20]", 'n_train = [10, "x"]'), "grid.n_train[1]: n_train='x': expected int"),
    (GOOD.replace("n_train = [10, 20]", "n_train = 10"), "grid.n_train: must be a list of values"),
    (GOOD.replace("n_train = [10, 20]", "widht = [10]"), "grid.widht: unknown config field"),
    (GOOD.replace("n_train = [10, 20]", "width = [10, 20]"), "grid.width: also set in [base]"),
    (GOOD.replace("width = 16", "width = 0"), "base: width=0: must be >= 1"),
    (GOOD.replace("width = 16", "seed = 1"), "base.seed: not allowed here; use the top-level 'seeds'"),
    (GOOD + "[execution]\nn_jobs = 0\n", "execution.n_jobs: 0 must be a positive integer"),
    (GOOD + "[execution]\nengine = 'fast'\n", "execution.engine: 'fast' must be one of auto, single, batched"),
    (GOOD + "[report]\nsmallest_effect = 0\n", "report.smallest_effect: 0 must be a positive number"),
    (GOOD + "[report]\nsmallest_effect = 'big'\n", "report.smallest_effect: 'big' must be a positive number"),
    (GOOD + "[report]\nalpha = 0.1\n", "report.alpha: unknown key; valid keys: smallest_effect, outcome"),
    (GOOD + "[report]\noutcome = 'ood'\n", "report.outcome: 'ood' must be one of test_mse, excess_risk"),
    (GOOD.replace("seeds = 3", "seeds = { data = 2, weights = 2 }"), "seeds.weights: unknown source"),
    (GOOD.replace("seeds = 3", "seeds = { data = 0 }"), "seeds.data: 0 must be a count >= 1"),
    (GOOD.replace("width = 16", "width = 16\nmask_seed = 2"), "base.mask_seed: not allowed here"),
    ("name = ", "not valid TOML"),
]


@pytest.mark.parametrize("text, message", BAD, ids=[m for _, m in BAD])
def test_bad_spec_names_file_key_and_problem(text, message):
    with pytest.raises(SpecError) as err:
        parse_spec(text, "bad.toml")
    assert str(err.value).startswith("bad.toml: ") and message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_file():
    with pytest.raises(SpecError, match="no such spec file"):
        load_spec("/nonexistent/x.toml")


@pytest.mark.parametrize("text, message", BAD[:3] + BAD[7:9], ids=[m for _, m in BAD[:3] + BAD[7:9]])
def test_cli_exit_code_2_and_nothing_created(tmp_path, text, message):
    spec = tmp_path / "bad.toml"
    spec.write_text(textwrap.dedent(text))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "sweeps.cli", "sweep", str(spec), "--out", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_bundled_specs_load():
    from pathlib import Path

    import sweeps
    for name in ("quick.toml", "overnight.toml"):
        spec = load_spec(Path(sweeps.__file__).parent / name)
        assert len(spec.seeds) >= 30 and spec.configs()
