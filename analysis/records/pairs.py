"""The cells of one comparison come from what its two arms depend on, and each pair counts once.

A trial trains several arms; two of them compared (plain against dropout, dropout against a
comparator) depend only on the settings those arms read. Their identities are the arms'
own (``bench.results.plain_arm``, ``dropout_arm``, ``comparator_arm``: each resets the settings
its arm does not read), so a setting only another arm reads (a comparator's weight decay for
plain against dropout) splits no cell of this comparison, and the trials that differ only in
it repeat the same pair on the same seed. ``pair_trials`` keeps one copy of each pair per seed,
after checking that the copies' paired deltas are bit-identical (they are the same trained arms).

Input is the trials frame of ``analysis.records.frame.records_frame``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from bench import ConfigError, TrialConfig
from bench.config import STREAM_SEEDS, field_types
from bench.results import arm_of

from .frame import config_fields
from .outcomes import OUTCOMES

SEED_FIELDS = ("seed", *STREAM_SEEDS.values())   # what pairs the arms: never a cell's setting


class DuplicateMismatch(ValueError):
    """Two copies of the same pair of arms on the same seed disagree: the store holds a bug."""


@dataclass
class Pairs:
    """One comparison's trials: ``frame`` (one row per pair of arms and seed), its cell ``axes``,
    and ``dropped`` (copies removed: trials that differ only in settings neither arm reads)."""
    frame: pd.DataFrame
    axes: list[str]
    dropped: int


def row_config(row: Any) -> TrialConfig:
    """The TrialConfig of one trials-frame row (a mapping or namedtuple-like with the config fields)."""
    types = field_types()
    d: dict[str, Any] = {}
    for name in config_fields():
        v = row[name]
        if name in STREAM_SEEDS.values():
            d[name] = -1 if v is None or (isinstance(v, float) and math.isnan(v)) else int(v)
        elif types[name] == "tuple":
            d[name] = tuple(str(v).split(",")) if isinstance(v, str) else tuple(v)
        elif types[name] == "int":
            d[name] = int(v)
        elif types[name] == "float":
            d[name] = float(v)
        else:
            d[name] = v
    return TrialConfig.from_dict(d)


def _unseeded(cfg: TrialConfig) -> TrialConfig:
    return cfg.replace(seed=0, **{f: -1 for f in STREAM_SEEDS.values()})


def arm_keys(frame: pd.DataFrame, kind: str) -> pd.Series:
    """Per row, the identity of its ``kind`` arm without the seeds (an ``Arm``): equal keys, same arm."""
    if not len(frame):
        return pd.Series([], dtype=object, index=frame.index)
    settings = [f for f in config_fields() if f not in SEED_FIELDS]
    # rows with the same settings share one arm: work it out once per distinct row, not once per trial
    codes = frame[settings].astype(str).groupby(settings, sort=False, dropna=False).ngroup().to_numpy()
    _, first = np.unique(codes, return_index=True)              # the first row of each distinct setting
    keys = [arm_of(_unseeded(row_config(frame.iloc[i])), kind) for i in first]
    return pd.Series([keys[c] for c in codes], index=frame.index, dtype=object)


def reads(frame: pd.DataFrame, axis: str, kinds: Sequence[str]) -> bool:
    """Whether any arm of ``kinds`` reads ``axis``: changing it to another value of the frame
    changes that arm's identity in some configuration of the frame (invalid changes are skipped)."""
    settings = [f for f in config_fields() if f not in SEED_FIELDS]
    values = frame[axis].drop_duplicates().tolist()
    for label in frame[settings].astype(str).drop_duplicates().index:
        cfg = _unseeded(row_config(frame.loc[label]))
        for v in values:
            if getattr(cfg, axis) == v or (isinstance(v, float) and math.isnan(v)):
                continue
            try:
                other = row_config({**frame.loc[label].to_dict(), axis: v})
            except (ConfigError, TypeError, ValueError):
                continue
            if any(arm_of(cfg, k) != arm_of(_unseeded(other), k) for k in kinds):
                return True
    return False


def comparison_axes(frame: pd.DataFrame, axes: Sequence[str], a: str, b: str) -> list[str]:
    """The cell axes of the comparison of arms ``a`` and ``b``: those of ``axes`` either arm reads."""
    return [ax for ax in axes if reads(frame, ax, (a, b))]


def delta_columns(a: str, b: str) -> list[str]:
    """The trials frame's paired deltas of arms a and b, on every outcome."""
    if (a, b) == ("plain", "dropout"):
        return [f"delta_{o}" for o in OUTCOMES]
    if a == "dropout":
        return [f"delta_{o}_vs_{b}" for o in OUTCOMES]
    raise ValueError(f"no stored paired delta of {a!r} against {b!r}")


def pair_trials(frame: pd.DataFrame, axes: Sequence[str], a: str, b: str,
                deltas: Sequence[str] | None = None) -> Pairs:
    """The trials of the comparison of arms ``a`` and ``b``, each (seed, pair of arms) once.

    Copies are the rows whose two arms and seeds are equal; the first finished one ("ok", else
    "diverged", else the first) is kept. Raises ``DuplicateMismatch`` if the copies' paired
    deltas (``deltas``, default ``delta_columns(a, b)``) are not bit-identical (NaN equals NaN).
    """
    kept_axes = comparison_axes(frame, axes, a, b)
    if not len(frame):
        return Pairs(frame, kept_axes, 0)
    key = pd.Series(list(zip(arm_keys(frame, a), arm_keys(frame, b),
                             *(frame[f].fillna(-1).astype(int) for f in SEED_FIELDS))), index=frame.index)
    rank = frame["status"].map({"ok": 0, "diverged": 1}).fillna(2)
    order = np.lexsort((np.arange(len(frame)), rank.to_numpy()))   # finished first, then frame order
    ordered = frame.iloc[order]
    okey = key.iloc[order]
    first = ~okey.duplicated(keep="first")
    finished = ordered["status"].isin(["ok", "diverged"]).to_numpy()
    columns = [c for c in (deltas or delta_columns(a, b)) if c in frame]
    if (~first).any() and columns:
        kept_values = ordered.loc[first.to_numpy(), columns].set_axis(okey[first.to_numpy()].to_numpy(), axis=0)
        dup = (~first.to_numpy()) & finished
        for label, k in zip(ordered.index[dup], okey[dup]):
            mine = frame.loc[label, columns].to_numpy(dtype=float)
            theirs = kept_values.loc[[k]].iloc[0].to_numpy(dtype=float)
            same = (mine == theirs) | (np.isnan(mine) & np.isnan(theirs))
            if not same.all():
                col = columns[int(np.flatnonzero(~same)[0])]
                raise DuplicateMismatch(
                    f"trial {frame.loc[label, 'trial_id']} repeats the {a}-{b} pair of another trial on seed "
                    f"{frame.loc[label, 'seed']} but its {col} differs ({float(mine[~same][0])!r} against "
                    f"{float(theirs[~same][0])!r}): the same arms must give the same numbers")
    kept = ordered[first.to_numpy()].sort_index()
    return Pairs(kept, kept_axes, int((~first).sum()))
