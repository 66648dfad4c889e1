"""The group-size tuner measures once per key, caches the choice, and says where it came from.

The timing function is replaced by fixed numbers here: no test times the machine.
"""
import json

import pytest
import torch

import perf.steppers as steppers
import perf.tune as tune
from bench import ConfigError, TrialConfig, dropout_arm, plain_arm

CFG = TrialConfig(width=8, n_train=6, steps=4)
FAKE = {1: 4e-4, 2: 3e-4, 4: 2e-4, 8: 2.01e-4, 16: 5e-4}   # 8 is within 2% of 4: the smaller wins


@pytest.fixture
def timer(tmp_path, monkeypatch):
    """A fake measurement that counts its calls; the cache in tmp_path; tuning on."""
    monkeypatch.setenv(tune.CACHE_ENV, str(tmp_path))
    monkeypatch.delenv(tune.TUNE_ENV, raising=False)
    calls = []

    def fake(cfg, dropout, sizes, seconds=tune.TUNE_SECONDS):
        calls.append((cfg.width, dropout, list(sizes)))
        return {n: FAKE.get(n, 1e-3) for n in sizes}
    monkeypatch.setattr(tune, "measure_candidates", fake)
    return calls


def test_first_use_measures_and_caches_then_the_cache_is_read(timer, tmp_path):
    first = tune.group_size_choice(CFG, dropout=True)
    assert first["source"] == "tuned now" and first["group_size"] == 4 and len(timer) == 1
    path = tmp_path / "group_size.json"
    assert first["cache_file"] == str(path)
    [entry] = json.loads(path.read_text())["entries"].values()
    assert entry["group_size"] == 4 and entry["key"] == tune.tuning_key(CFG, True)
    assert entry["seconds_per_arm_step"]["1"] == 4e-4 and entry["measured_at"]

    second = tune.group_size_choice(CFG, dropout=True)
    assert second["source"] == "cache" and second["group_size"] == 4 and second["cache_file"] == str(path)
    assert len(timer) == 1                                      # not measured again
    assert "cache " + str(path) in tune.describe(second)


def test_the_key_separates_dropout_and_shapes_and_buckets_nearby_widths(timer):
    tune.group_size_choice(CFG, dropout=True)
    tune.group_size_choice(CFG, dropout=False)                    # another key: a group without masks
    tune.group_size_choice(CFG.replace(width=9), dropout=True)    # width 9 rounds to 8 as well
    tune.group_size_choice(CFG.replace(width=32), dropout=True)   # another bucket
    assert [(w, d) for w, d, _ in timer] == [(8, True), (8, False), (32, True)]
    assert tune.tuning_key(TrialConfig(), True)["width_bucket"] == 256       # the seed's 300
    assert tune.tuning_key(TrialConfig(), True)["n_train_bucket"] == 16      # and its 20


def test_a_new_torch_version_cpu_model_or_engine_is_measured_again(timer, monkeypatch):
    old_torch, old_cpu = str(torch.__version__), tune.cpu_model()
    tune.group_size_choice(CFG)
    monkeypatch.setattr(torch, "__version__", "9.9.9")
    assert tune.group_size_choice(CFG)["source"] == "tuned now" and len(timer) == 2
    monkeypatch.setattr(tune, "cpu_model", lambda: "Another CPU 9000")
    assert tune.group_size_choice(CFG)["source"] == "tuned now" and len(timer) == 3
    assert tune.group_size_choice(CFG)["source"] == "cache" and len(timer) == 3
    monkeypatch.setattr(tune, "ENGINE_REVISION", tune.ENGINE_REVISION + 1)   # an engine whose step costs differ
    assert tune.group_size_choice(CFG)["source"] == "tuned now" and len(timer) == 4
    entries = json.loads(tune.cache_file().read_text())["entries"].values()
    assert {(e["key"]["torch"], e["key"]["hardware"]) for e in entries} == {
        (old_torch, old_cpu), ("9.9.9", old_cpu), ("9.9.9", "Another CPU 9000")}
    assert len(entries) == 4


def test_retune_measures_again_and_replaces_the_entry(timer, monkeypatch):
    tune.group_size_choice(CFG)
    monkeypatch.setitem(FAKE, 1, 1e-5)                             # the machine changed its mind
    again = tune.group_size_choice(CFG, retune=True)
    assert again["source"] == "tuned now" and again["group_size"] == 1 and len(timer) == 2
    assert tune.group_size_choice(CFG)["group_size"] == 1 and len(timer) == 2


def test_speed_retune_flag_measures_again(timer, monkeypatch, capsys):
    import perf.speed
    from sweeps.cli import main

    tune.group_size_choice(CFG)
    seen = {}

    def fake_speed(cfg, **kwargs):
        seen.update(kwargs)
        return {"group_size_choice": tune.group_size_choice(cfg, group_size=kwargs["group_size"])}
    monkeypatch.setattr(perf.speed, "measure_speed", fake_speed)
    assert main(["speed", "--retune", "--json", "--width", "8", "--n-train", "6", "--steps", "4"]) == 0
    assert len(timer) == 2 and seen["group_size"] == "auto"
    report = json.loads(capsys.readouterr().out)
    assert report["retuned"] is True and report["group_size_choice"]["source"] == "cache"
    assert main(["speed", "--retune", "--group-size", "4", "--width", "8"]) == 2   # one or the other


def test_a_corrupt_cache_file_is_measured_over_without_a_crash(timer, tmp_path):
    path = tmp_path / "group_size.json"
    for junk in ("{not json", "[]", '{"format": 1, "entries": {"x": 3}}', '{"format": 99, "entries": {}}'):
        path.write_text(junk)
        choice = tune.group_size_choice(CFG)
        assert choice["source"] == "tuned now" and choice["group_size"] == 4
        assert json.loads(path.read_text())["format"] == tune.CACHE_FORMAT
    assert len(timer) == 4


def test_a_given_size_is_used_as_given_and_a_bad_one_refused(timer):
    assert tune.group_size_choice(CFG, group_size=3) == {"group_size": 3, "source": "given"}
    assert timer == []
    for bad in (0, -1, 2.5, True, "big"):
        with pytest.raises(ConfigError, match="group_size"):
            tune.group_size_choice(CFG, group_size=bad)


def test_tuning_off_falls_back_to_the_budget_rule_without_touching_the_cache(timer, tmp_path, monkeypatch):
    monkeypatch.setenv(tune.TUNE_ENV, "0")
    choice = tune.group_size_choice(TrialConfig())
    assert choice == {"group_size": 2, "source": "fallback", "reason": "DROPOUT_BENCH_TUNE=0"}
    assert timer == [] and not (tmp_path / "group_size.json").exists()


def test_a_failed_measurement_falls_back(timer, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")
    monkeypatch.setattr(tune, "measure_candidates", broken)
    choice = tune.group_size_choice(CFG)
    assert choice["source"] == "fallback" and "out of memory" in choice["reason"]
    assert choice["group_size"] == tune.default_group_size("cpu", 8, 2)


def test_plan_groups_uses_the_tuned_size_and_a_lone_arm_is_not_tuned_for(timer):
    from bench.trial import plan_groups

    arms = [a for s in range(5) for a in (plain_arm(CFG.replace(seed=s)), dropout_arm(CFG.replace(seed=s)))]
    tuned = tune.tuned_group_size                   # bench measures nothing: the caller passes the rule
    assert [len(g) for g in plan_groups(arms, group_size=tuned)] == [4, 4, 2] and len(timer) == 1
    assert [len(g) for g in plan_groups(arms, group_size=tuned)] == [4, 4, 2] and len(timer) == 1
    assert [len(g) for g in plan_groups(arms, group_size=3)] == [3, 3, 3, 1]
    assert list(plan_groups([plain_arm(CFG.replace(width=64))], group_size=tuned)) == [[0]] and len(timer) == 1


def test_candidates_are_powers_of_two_within_memory():
    sizes = tune.candidate_sizes(TrialConfig())
    assert sizes[0] == 1 and sizes == [2**i for i in range(len(sizes))] and sizes[-1] <= tune.MAX_GROUP_SIZE["cpu"]


def test_the_real_measurement_returns_a_time_per_size_it_kept():
    """Runs the real timer on a tiny group with a tiny budget; checks its shape, never a time."""
    times = tune.measure_candidates(CFG, True, [1, 2, 4], seconds=0.05)
    assert list(times)[0] == 1 and set(times) <= {1, 2, 4}
    assert all(s > 0 for s in times.values())


def test_a_mixed_stepper_counts_its_arm_steps():
    run, arm_steps = steppers.mixed_stepper(steppers.group_stepper, CFG, 1, dropout=True, steps=3)
    assert arm_steps == 6 and run().shape == (2,)              # a plain and a dropout arm of one, in turn
    run, arm_steps = steppers.mixed_stepper(steppers.group_stepper, CFG, 4, dropout=True, steps=3)
    assert arm_steps == 12 and run().shape == (4,)


def test_sweeps_accept_auto_or_a_number_for_the_group_size():
    import argparse

    from sweeps.options import ExecutionOptions, group_size_arg
    from sweeps.spec import SpecError, parse_spec

    assert group_size_arg("auto") == "auto" and group_size_arg("AUTO") == "auto" and group_size_arg("4") == 4
    for bad in ("0", "-2", "big", "2.5"):
        with pytest.raises(argparse.ArgumentTypeError, match="'auto' or an integer"):
            group_size_arg(bad)
    assert ExecutionOptions(group_size="auto").resolve({}, default_workers=1).group_size == "auto"
    assert ExecutionOptions().resolve({"group_size": "auto"}, default_workers=1).group_size == "auto"
    assert ExecutionOptions().resolve({"group_size": 3}, default_workers=1).group_size == 3
    with pytest.raises(SpecError, match="--group-size 'big'"):
        ExecutionOptions(group_size="big").resolve({}, default_workers=1)
    spec = 'name = "s"\nseeds = 1\n[base]\nwidth = 8\n[execution]\ngroup_size = %s\n'
    assert parse_spec(spec % '"auto"').execution["group_size"] == "auto"
    with pytest.raises(SpecError, match="execution.group_size"):
        parse_spec(spec % '"big"')


def test_run_provenance_lists_each_shapes_choice_and_tunes_it_once(timer):
    from perf.choice import group_size_provenance

    cfgs = [CFG.replace(seed=s, dropout=r) for s in range(3) for r in (0.2, 0.5)] + [CFG.replace(width=64)]
    prov = group_size_provenance(cfgs)
    assert [(p["shape"]["width"], p["group_size"], p["source"]) for p in prov] == [(8, 4, "tuned now"), (64, 4, "tuned now")]
    assert len(timer) == 2 and {p["key"]["threads"] for p in prov} == {1}    # the workers' thread count
    assert [p["source"] for p in group_size_provenance(cfgs)] == ["cache", "cache"] and len(timer) == 2
    assert group_size_provenance(cfgs, group_size=5)[0] == {"shape": prov[0]["shape"], "group_size": 5, "source": "given"}
    assert group_size_provenance(cfgs, engine="single") == []


def test_workers_get_the_drivers_choice_per_shape_and_measure_nothing(timer):
    import pickle

    from bench.trial import default_group_size, plan_groups
    from perf.choice import group_size_provenance, worker_sizes

    sizes = worker_sizes("auto", group_size_provenance([CFG.replace(seed=s) for s in range(5)]))
    assert len(timer) == 1
    sizes = pickle.loads(pickle.dumps(sizes))                    # as it travels to a worker process
    arms = [a for s in range(5) for a in (plain_arm(CFG.replace(seed=s)), dropout_arm(CFG.replace(seed=s)))]
    assert [len(g) for g in plan_groups(arms, group_size=sizes)] == [4, 4, 2] and len(timer) == 1
    assert sizes(CFG.replace(width=64), True) == default_group_size("cpu", 64, 2) and len(timer) == 1
    assert worker_sizes(3, []) == 3 and worker_sizes("auto", []) is tune.tuned_group_size
