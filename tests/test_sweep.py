"""Sweeps end to end in-process: resume, growth, refusal, failures, parallel equality."""
import sqlite3
import subprocess
import sys

import pytest

from sweeps import StoreError, run_sweep, trial_id
from sweeps.spec import load_spec
from sweeps.store import FolderLock, Store
from tests.sweep_helpers import row_count, science, tiny_spec


def run(spec, out, **kw):
    kw.setdefault("workers", 1)
    return run_sweep(spec, out_dir=out, progress=False, **kw)


def test_sweep_stores_every_trial_once_and_resumes_as_a_no_op(tmp_path):
    spec = tiny_spec(tmp_path)
    s = run(spec, tmp_path / "out")
    assert (s.total, s.ran, s.ok) == (12, 12, 12)
    expected = {trial_id(c) for c in load_spec(spec).configs()}
    assert set(science(tmp_path / "out")) == expected
    again = run(spec, tmp_path / "out")
    assert again.ran == 0 and again.skipped == 12 and row_count(tmp_path / "out") == 12


def test_grown_spec_runs_only_what_is_new(tmp_path):
    run(tiny_spec(tmp_path), tmp_path / "out")
    grown = tiny_spec(tmp_path, seeds=4, grid={"dropout": [0.2, 0.5, 0.7], "n_train": [8, 12]})
    s = run(grown, tmp_path / "out")
    assert s.skipped == 12 and s.ran == 3 * 2 * 4 - 12 and row_count(tmp_path / "out") == 24


def test_changed_shared_settings_are_refused_unless_force_new(tmp_path):
    run(tiny_spec(tmp_path), tmp_path / "out")
    changed = tiny_spec(tmp_path, steps=41)
    with pytest.raises(StoreError, match=r"shared settings differ.*steps: 40 -> 41.*--force-new"):
        run(changed, tmp_path / "out")
    assert row_count(tmp_path / "out") == 12
    s = run(changed, tmp_path / "out", force_new=True)
    assert s.ran == 12
    archived = list((tmp_path / "out" / "archive").glob("*/store.sqlite"))
    assert len(archived) == 1  # the old trials are kept, not overwritten


def test_n_jobs_1_and_2_give_identical_trials(tmp_path):
    spec = tiny_spec(tmp_path)
    run(spec, tmp_path / "one", workers=1)
    two = run(spec, tmp_path / "two", workers=2)
    assert two.n_workers == 2
    assert science(tmp_path / "one") == science(tmp_path / "two")
    # the overhead's parts add up to it; fresh worker processes take time to start (torch is imported there)
    parts = two.overhead_parts
    assert list(parts) == ["start-up", "tail", "between units"] and all(v >= 0 for v in parts.values())
    assert sum(parts.values()) == pytest.approx(two.overhead) and parts["start-up"] > 0
    assert "(start-up " in two.line()


def test_overhead_parts_by_hand():
    from sweeps.run import SweepSummary, _idle_ends

    # 10 s on 2 workers (capacity 20 worker-s), 16 s of training: overhead 20%
    s = SweepSummary(out_dir="o", total=5, skipped=0, ran=5, wall_seconds=10.0, compute_seconds=16.0, n_workers=2)
    _idle_ends(s, {"a": [101.0, 109.5], "b": [101.5, 110.0]}, start=100.0, end=110.0)
    assert (s.startup_seconds, s.tail_seconds) == (2.5, 0.5)
    assert s.overhead_parts == pytest.approx({"start-up": 0.125, "tail": 0.025, "between units": 0.05})
    # a worker that got no unit idles for the whole run, in the tail
    _idle_ends(s, {"a": [101.0, 109.5]}, start=100.0, end=110.0)
    assert (s.startup_seconds, s.tail_seconds) == (1.0, 10.5)
    assert s.overhead_parts == pytest.approx({"start-up": 0.05, "tail": 0.15, "between units": 0.0})
    assert SweepSummary(out_dir="o", total=1, skipped=1).overhead_parts == {}   # nothing ran
    # a worker that died and was replaced: the two earliest starts and the two latest ends count
    _idle_ends(s, {"a": [101.0, 104.0], "b": [101.5, 110.0], "a2": [105.0, 109.0]}, start=100.0, end=110.0)
    assert (s.startup_seconds, s.tail_seconds) == (2.5, 1.0)
    # no split for an interrupted run (its abandoned units look idle), a negative overhead, or no spans
    s.interrupted = True
    assert s.overhead_parts == {}
    assert SweepSummary(out_dir="o", total=5, skipped=0, ran=5, wall_seconds=10.0, compute_seconds=21.0,
                        n_workers=2, startup_seconds=1.0).overhead_parts == {}
    assert SweepSummary(out_dir="o", total=5, skipped=0, ran=5, wall_seconds=10.0, compute_seconds=16.0,
                        n_workers=2).overhead_parts == {}      # Dask: spans on other clocks are not read


def test_nan_trial_is_stored_as_diverged_and_the_sweep_finishes(tmp_path):
    spec = tiny_spec(tmp_path, grid={"lr": [0.01, 1e6]}, seeds=2)
    s = run(spec, tmp_path / "out")
    assert (s.ok, s.diverged, s.failed) == (2, 2, 0)
    conn = sqlite3.connect(tmp_path / "out" / "store.sqlite")
    rows = conn.execute("SELECT lr, status, result_json FROM trials").fetchall()
    assert {(lr, st) for lr, st, _ in rows} == {(0.01, "ok"), (1e6, "diverged")}
    assert all('"diverged_at_step": ' in res for lr, st, res in rows if st == "diverged")


def test_exception_is_stored_as_failed_with_its_message_and_retried_on_request(tmp_path, monkeypatch):
    import bench

    real = bench.run_trials

    def flaky(cfgs, **kw):
        if any(c.seed == 1 for c in cfgs):
            raise RuntimeError("boom on seed 1")
        return real(cfgs, **kw)

    monkeypatch.setattr(bench, "run_trials", flaky)
    spec = tiny_spec(tmp_path)
    s = run(spec, tmp_path / "out")
    assert (s.ok, s.failed) == (8, 4)
    with Store.open(tmp_path / "out", readonly=True) as st:
        errors = {r["error"] for r in st.records(status=["failed"])}
    assert errors == {"RuntimeError: boom on seed 1"}
    assert run(spec, tmp_path / "out").ran == 0           # failures count as done...
    monkeypatch.setattr(bench, "run_trials", real)
    again = run(spec, tmp_path / "out", retry_failed=True)  # ...until asked to retry
    assert (again.ran, again.ok) == (4, 4) and row_count(tmp_path / "out") == 12


def test_foreign_or_corrupt_store_is_refused_not_overwritten(tmp_path):
    spec = tiny_spec(tmp_path)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    conn = sqlite3.connect(foreign / "store.sqlite")
    conn.execute("CREATE TABLE meta (key TEXT, value TEXT)")
    conn.execute("INSERT INTO meta VALUES ('format', 'something-else')")
    conn.commit()
    conn.close()
    before = (foreign / "store.sqlite").read_bytes()
    with pytest.raises(StoreError, match="not a dropout-bench store"):
        run(spec, foreign)
    assert (foreign / "store.sqlite").read_bytes() == before

    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "store.sqlite").write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not a"):
        run(spec, corrupt)
    assert (corrupt / "store.sqlite").read_bytes() == b"this is not sqlite at all" * 100

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="not empty and holds no dropout-bench store"):
        run(spec, other)
    assert [p.name for p in other.iterdir()] == ["notes.txt"]


def test_second_driver_on_the_same_folder_is_refused(tmp_path):
    spec = tiny_spec(tmp_path)
    run(spec, tmp_path / "out")
    holder = FolderLock(tmp_path / "out").acquire()
    try:
        proc = subprocess.run([sys.executable, "-m", "sweeps.cli", "sweep", str(spec), "--out",
                               str(tmp_path / "out"), "--quiet"], capture_output=True, text=True)
        assert proc.returncode == 2
        assert "in use by a running sweep or search (pid" in proc.stderr
    finally:
        holder.release()


def test_status_reports_progress_and_failures(tmp_path):
    from sweeps.status import sweep_status

    spec = tiny_spec(tmp_path, grid={"lr": [0.01, 1e6]}, seeds=2)
    run(spec, tmp_path / "out")
    st = sweep_status(tmp_path / "out")
    assert (st.total, st.done, st.counts.get("diverged")) == (4, 4, 2) and not st.running
    assert "finished, 4/4 trials" in st.text()


def test_export_writes_parquet_and_csv_matching_load_trials(tmp_path):
    import pandas as pd

    from sweeps import load_trials
    from sweeps.export import export_trials

    run(tiny_spec(tmp_path), tmp_path / "out")
    parquet, csv = export_trials(tmp_path / "out")
    frame = load_trials(tmp_path / "out")
    back = pd.read_parquet(parquet)
    assert len(back) == len(pd.read_csv(csv)) == 12
    assert list(back.columns) == list(frame.columns)
    assert back["delta_test_mse"].tolist() == frame["delta_test_mse"].tolist()
    assert {"trial_id", "status", "seed", "dropout", "test_mse_plain", "test_mse_dropout", "train_mse_plain",
            "train_mse_dropout", "gap_plain", "gap_dropout", "delta_test_mse"} <= set(back.columns)


def test_a_store_from_before_the_comparator_fields_resumes(tmp_path):
    """An older store has no column for a config field added since (arms, task settings): reopening it for
    writing adds them, and its trials keep their ids."""
    run(tiny_spec(tmp_path, seeds=2), tmp_path / "out")
    conn = sqlite3.connect(tmp_path / "out" / "store.sqlite")
    for name in ("arms", "weight_decay", "patience", "val_fraction", "n_features", "test_size"):
        conn.execute(f"ALTER TABLE trials DROP COLUMN {name}")
    conn.commit()
    conn.close()
    s = run(tiny_spec(tmp_path, seeds=4), tmp_path / "out")
    assert s.skipped == 8 and s.ran == 8 and row_count(tmp_path / "out") == 16
    arms = sqlite3.connect(tmp_path / "out" / "store.sqlite").execute("SELECT DISTINCT arms FROM trials").fetchall()
    assert set(arms) == {(None,), ("plain,dropout",)}


def test_loky_workers_watch_their_memory_with_psutil_instead_of_collecting_garbage_after_tasks():
    """Without psutil, loky runs a full gc.collect() in a worker after its tasks (about 70 ms each with
    torch loaded: 5.5% of worker time on the quick spec), so psutil is a dependency."""
    from joblib.externals.loky import process_executor

    assert process_executor._USE_PSUTIL
