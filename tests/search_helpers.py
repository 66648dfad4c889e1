"""Shared helpers for search tests: tiny specs, the CLI with the search command, a view of a study."""
from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

# The CLI with the search command registered (a no-op once sweeps.cli lists it itself).
BOOT = ("import sys\nfrom sweeps import cli\nfrom sweeps._cmd_search import add_search_command\n"
        "if add_search_command not in cli.COMMANDS:\n    cli.COMMANDS.append(add_search_command)\n"
        "sys.exit(cli.main(sys.argv[1:]))\n")
CLI = [sys.executable, "-c", BOOT]


TINY_SPACE = {"dropout": "{ low = 0.0, high = 0.8 }", "n_train": "{ low = 6, high = 24, log = true }"}


def tiny_search(tmp_path: Path, *, name="tiny", seeds=3, n_trials=5, steps=40, width=16, sampler="tpe",
                sampler_seed=0, objective="dropout_test_mse", pruner="none", confirm="top = 0",
                space=None, workers=None) -> Path:
    space = space or TINY_SPACE
    lines = [f'name = "{name}"', f'objective = "{objective}"', f"seeds = {seeds}", f"n_trials = {n_trials}",
             f'sampler = "{sampler}"', f"sampler_seed = {sampler_seed}", f'pruner = "{pruner}"',
             "[confirm]", confirm, "[base]", f"width = {width}", f"steps = {steps}", "eval_every = 10", "[space]"]
    lines += [f"{k} = {v}" for k, v in space.items()]
    if workers:
        lines += ["[execution]", f"workers = {workers}"]
    path = tmp_path / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def journal_study(out: Path, name: str):
    import optuna
    from sweeps.search import open_storage

    return optuna.load_study(study_name=name, storage=open_storage(out, None))


def store_ids(out: Path) -> list[str]:
    conn = sqlite3.connect(out / "store.sqlite")
    ids = [r[0] for r in conn.execute("SELECT trial_id FROM trials")]
    conn.close()
    return ids


def journal_seed_ids(study) -> set[str]:
    """Every seed-level trial_id that any Optuna trial recorded."""
    return {rec["trial_id"] for t in study.get_trials(deepcopy=False)
            for k, rec in t.user_attrs.items() if k.startswith("result_seed_")}


def course(study) -> list[tuple]:
    """(number, state, params, values) of every trial: what a reproducible search repeats exactly."""
    return [(t.number, t.state.name, json.dumps(t.params, sort_keys=True), t.values) for t in study.trials]
