"""Shared helpers for search tests: tiny specs, the CLI with the search command, a view of a study."""
from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

# The CLI, in a fresh interpreter.
BOOT = "import sys\nfrom sweeps import cli\nsys.exit(cli.main(sys.argv[1:]))\n"
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


class JournalWatch:
    """Follows ``DIR/optuna.journal`` as a search writes it, cheaply enough to poll every few ms.

    Reads only the complete lines added since the last ``update()`` and keeps, per trial
    (in order of creation): ``state`` (Optuna's TrialState value), ``params`` (names
    drawn), ``seeds`` (seeds whose result was written), ``pid`` (its worker) and the
    ``time.monotonic()`` at which its parameters were all drawn and its first seed written.
    """
    RUNNING, COMPLETE, PRUNED, FAIL, WAITING = range(5)

    def __init__(self, out: Path, names=tuple(TINY_SPACE)) -> None:
        self.path = Path(out) / "optuna.journal"
        self.names = set(names)
        self.trials: list[dict] = []
        self.seed_writes = 0
        self._pos, self._tail = 0, b""

    def update(self) -> "JournalWatch":
        import time

        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._pos)
                data = fh.read()
        except FileNotFoundError:
            return self
        self._pos += len(data)
        *lines, self._tail = (self._tail + data).split(b"\n")
        now = time.monotonic()
        for line in lines:
            if line.strip():
                self._apply(json.loads(line), now)
        return self

    def _apply(self, op: dict, now: float) -> None:
        code = op["op_code"]
        if code == 4:                                         # CREATE_TRIAL
            self.trials.append({"state": op.get("state", self.RUNNING), "params": set(), "seeds": set(),
                                "pid": None, "drawn_at": None, "seed_at": None})
            return
        if code not in (5, 6, 8):
            return
        t = self.trials[op["trial_id"]]
        if t["state"] in (self.COMPLETE, self.PRUNED, self.FAIL):
            return                                            # Optuna ignores writes to finished trials
        if code == 5:                                         # SET_TRIAL_PARAM
            t["params"].add(op["param_name"])
            if t["params"] >= self.names and t["drawn_at"] is None:
                t["drawn_at"] = now
        elif code == 6:                                       # SET_TRIAL_STATE_VALUES
            t["state"] = op["state"]
        else:                                                 # SET_TRIAL_USER_ATTR
            for key, value in op["user_attr"].items():
                if key == "worker":
                    t["pid"] = value["pid"]
                elif key.startswith("result_seed_"):
                    t["seeds"].add(int(key[len("result_seed_"):]))
                    self.seed_writes += 1
                    if t["seed_at"] is None:
                        t["seed_at"] = now

    def training(self) -> list[dict]:
        """Trials running with all their parameters drawn and no seed written yet: they are training."""
        return [t for t in self.trials
                if t["state"] == self.RUNNING and t["params"] >= self.names and not t["seeds"]]

    def train_seconds(self) -> float | None:
        """How long the latest trial seen from its parameters to its first seed took to train."""
        seen = [t["seed_at"] - t["drawn_at"] for t in self.trials
                if t["drawn_at"] is not None and t["seed_at"] is not None]
        return seen[-1] if seen else None
