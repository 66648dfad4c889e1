"""Flatten trial results into one pandas row per trial: the data contract of analysis/.

Columns: ``trial_id``, ``status`` ("ok", "diverged", "failed"), ``error``, every
TrialConfig field (``seed``, ``dropout``, ``width``, ``n_train``, ...; the stream seeds
``data_seed``, ``init_seed``, ``mask_seed`` are NaN where not set), ``data_stream`` (the seed
the data were drawn from: ``data_seed`` if set, else ``seed``), then per arm
(suffix ``_plain`` / ``_dropout``): ``test_mse``, ``train_mse`` (eval mode),
``train_loss_last`` (train mode), ``gap``, ``excess_risk``, ``new_mse``,
``new_excess_risk`` (NaN in records of result schema 1), ``diverged_at_step``,
``step_seconds_median``, ``step_seconds_iqr``, ``group_size``, ``engine``; and per
outcome o in ``OUTCOMES`` the paired ``delta_{o}`` = o_plain - o_dropout (> 0: dropout
helped). Comparator arms (``bench.arms.comparators()``: early_stop, weight_decay and any
added; NaN where a trial did not train them) get the same per-arm columns, plus what their
kind records (early_stop: ``best_step``, ``stopped_step``) and
``status_{c}`` (the arm's own "ok" or "diverged"; ``status`` is the plain-and-dropout pair's),
and per outcome ``delta_{o}_vs_{c}`` = o_c - o_dropout (> 0: dropout did better than c).
``arms`` is a comma-joined string ("plain,dropout,early_stop"); config fields a record
leaves out (those added after its schema) take their defaults.
Learning curves stay in the records (``curve_*`` lists), reached through
``curves_frame``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional

import pandas as pd

from bench.arms import PAIR, comparators, kinds_records
from bench.config import STREAM_SEEDS, TrialConfig, field_names

from .outcomes import LATER, OUTCOMES   # what a report can compare the arms on

ARM_METRICS = ("test_mse", "train_mse", "train_loss_last", "gap", *LATER,
               "diverged_at_step", "step_seconds_median", "step_seconds_iqr", "group_size", "engine")
ARMS = PAIR


def comparator_metrics() -> tuple[str, ...]:
    """A comparator's columns: every arm's metrics, what any kind records beyond them, its status."""
    return (*ARM_METRICS, *kinds_records(), "status")


def config_fields() -> tuple[str, ...]:
    """Every config setting, added arms' included (bench.config.field_names)."""
    return tuple(field_names())


def _defaults() -> dict:
    """Defaults of the fields a record leaves out (those added after its schema)."""
    base = TrialConfig()
    return {k: (",".join(v) if isinstance(v, tuple) else v) for k in config_fields()
            if k not in STREAM_SEEDS.values() for v in [getattr(base, k)]}


def paired_delta(frame: pd.DataFrame, a: str, b: str, outcome: str = "test_mse") -> pd.Series:
    """Per trial, outcome(a) - outcome(b): > 0 means arm b did better. Any two arms of bench.arms."""
    return frame[f"{outcome}_{a}"] - frame[f"{outcome}_{b}"]


@dataclass(frozen=True)
class _Layout:
    """What every row of one frame is made of: computed once per frame, not once per record
    (the config defaults build a TrialConfig; the arms ask the plugins)."""
    fields: tuple[str, ...]
    defaults: dict
    comparators: tuple[str, ...]
    comparator_metrics: tuple[str, ...]


def _layout() -> _Layout:
    return _Layout(config_fields(), _defaults(), comparators(), comparator_metrics())


def flatten_record(record: Mapping[str, Any], layout: Optional[_Layout] = None) -> dict[str, Any]:
    """One stored record (``trial_id``, ``status``, ``error``, ``result`` dict or None) -> one row."""
    lay = layout or _layout()
    row: dict[str, Any] = {"trial_id": record["trial_id"], "status": record["status"],
                           "error": record.get("error")}
    result = record.get("result")
    config = record.get("config") or (result or {}).get("config") or {}
    for name in lay.fields:
        row[name] = config.get(name, lay.defaults.get(name))
    if isinstance(row["arms"], (list, tuple)):
        row["arms"] = ",".join(row["arms"])
    for arm in ARMS:
        data = (result or {}).get(arm) or {}
        for metric in ARM_METRICS:
            row[f"{metric}_{arm}"] = data.get(metric)
    others = (result or {}).get("comparators") or {}
    for arm in lay.comparators:
        data = others.get(arm) or {}
        for metric in lay.comparator_metrics:
            row[f"{metric}_{arm}"] = data.get(metric)
    own = row.get("data_seed")
    row["data_stream"] = own if own is not None and own >= 0 else row["seed"]   # the seed of the data's draws
    row["delta_test_mse"] = (result or {}).get("delta_test_mse")
    for o in LATER:                                       # the record holds delta_test_mse itself
        a, b = row[f"{o}_plain"], row[f"{o}_dropout"]
        row[f"delta_{o}"] = a - b if a is not None and b is not None else None
    for c in lay.comparators:
        for o in OUTCOMES:
            a, b = row[f"{o}_{c}"], row[f"{o}_dropout"]
            row[f"delta_{o}_vs_{c}"] = a - b if a is not None and b is not None else None
    return row


def records_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    layout = _layout()
    columns = ["trial_id", "status", "error", *layout.fields, "data_stream",
               *[f"{m}_{a}" for a in ARMS for m in ARM_METRICS], *[f"delta_{o}" for o in OUTCOMES],
               *[f"{m}_{c}" for c in layout.comparators for m in layout.comparator_metrics],
               *[f"delta_{o}_vs_{c}" for c in layout.comparators for o in OUTCOMES]]
    # a list per row, not the row's dict: a dict of some 200 keys takes several times the memory
    # of the list, and a report may flatten 100,000 records at once
    rows = [[row.get(c) for c in columns] for row in (flatten_record(r, layout) for r in records)]
    frame = pd.DataFrame(rows, columns=columns)
    for col in frame.columns:
        if col.startswith((*OUTCOMES, "train_mse", "train_loss", "gap", "step_seconds", "delta", *kinds_records())):
            frame[col] = pd.to_numeric(frame[col], errors="coerce")
    return frame


def curves_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Long format: one row per (trial, arm, evaluation step) with train_mse and test_mse."""
    rows = []
    for r in records:
        result = r.get("result")
        if not result:
            continue
        for arm in (*ARMS, *comparators()):
            a = result[arm] if arm in ARMS else (result.get("comparators") or {}).get(arm)
            if not a:
                continue
            for step, tr, te in zip(a["curve_steps"], a["curve_train_mse"], a["curve_test_mse"]):
                rows.append({"trial_id": r["trial_id"], "arm": arm, "step": step,
                             "train_mse": tr, "test_mse": te, **result["config"]})
    return pd.DataFrame(rows)
