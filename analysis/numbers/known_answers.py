"""Known answers on the same seeds' data: the oracle f, the least-squares fit and (diabetes) ridge.

Per task: toy1d, sine1d and friedman1 have a known truth f, so the oracle (predicting f) is a
row, and a linear least-squares fit on the inputs is the classical baseline (on toy1d it is
the correctly specified line, with the textbook values below; on sine1d and friedman1 it is
a biased linear model). diabetes has no known f: its rows are least squares and ridge
(scikit-learn's ``RidgeCV``, its penalty chosen by leave-one-out on the training rows only).

On the synthetic tasks the test set reuses the training x, so test MSE is the in-sample error of ESL section 7.4.
With noise variance sigma^2 and N points, a linear smoother with d parameters has
E[train MSE] = sigma^2 (1 - d/N), E[test MSE] = sigma^2 (1 + d/N), E[gap] = 2 d sigma^2 / N;
the oracle has sigma^2, sigma^2, 0. A harness whose data are right reproduces these.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from bench import TASKS, TrialConfig

from ..records.outcomes import LATER

PREDICTORS = ("oracle", "least_squares", "ridge")
DATA_FIELDS = ("task", "n_train", "noise_std", "n_features", "test_size")   # what a trial's data depend on, with its seed
RIDGE_ALPHAS = np.logspace(-3, 3, 13)
METRICS = ("train_mse", "test_mse", "gap", *LATER)


def textbook(noise_std: float, n_train: int, task: str = TrialConfig.task) -> pd.DataFrame:
    """Expected value of each metric per predictor (rows: oracle, least_squares, interpolator).

    At the training x (ESL 7.4): a linear smoother with d parameters has excess risk
    sigma^2 d / N. At fresh inputs uniform in [-1, 1] the line's excess risk is
    sigma^2 (1/N + E[x^2] / sum(x_i^2)) with E[x^2] = 1/3 (its design is orthogonal: sum(x_i) = 0);
    an interpolator has no defined value there (NaN). These hold where the task's truth is a
    line (``Task.linear``: toy1d); where f is known but curved (sine1d, friedman1) only the
    oracle's row holds (the others are NaN); without a known f (diabetes) none does.
    """
    kind, table = TASKS[task], _line_table(noise_std, n_train)
    if kind.linear:
        return table
    oracle = table.loc["oracle"]
    table = table * np.nan
    if kind.truth is not None and kind.noise_known:
        table.loc["oracle"] = oracle
    return table


def _line_table(noise_std: float, n_train: int) -> pd.DataFrame:
    """``textbook`` where the truth is a line: oracle, least-squares line and interpolator."""
    s2, n = noise_std ** 2, n_train
    d = 2  # intercept and slope
    x = np.linspace(-1.0, 1.0, n)
    line_new = s2 * (1 / n + (1 / 3) / float(np.sum(x ** 2)))
    return pd.DataFrame(
        {"train_mse": [s2, s2 * (1 - d / n), 0.0],
         "test_mse": [s2, s2 * (1 + d / n), 2 * s2],
         "gap": [0.0, 2 * d * s2 / n, 2 * s2],
         "excess_risk": [0.0, s2 * d / n, s2],
         "new_mse": [s2, s2 + line_new, np.nan],
         "new_excess_risk": [0.0, line_new, np.nan]},
        index=pd.Index(["oracle", "least_squares", "interpolator"], name="predictor"),
    )


def known_answer_trials(keys: Iterable[tuple]) -> pd.DataFrame:
    """The predictors of each task on the data of each key: (seed, n_train, noise_std) for toy1d, or
    (seed, n_train, noise_std, task, n_features, test_size).

    Returns one row per (key, predictor): seed, the ``DATA_FIELDS``, predictor, train_mse,
    test_mse, gap, excess_risk (against f at the training x), new_mse and new_excess_risk (at
    the fresh inputs; NaN without a known f). The data are ``bench.make_data`` of that key,
    exactly what the nets saw.
    """
    from bench import make_data  # torch: regenerating the nets' data needs its generator

    rows = []
    for key in sorted(set(_key(k) for k in keys)):
        seed, n, sd, task, nf, ts = key
        data = make_data(TrialConfig(seed=seed, n_train=n, noise_std=sd, task=task, n_features=nf, test_size=ts))
        for name, fits in _predictors(data, TASKS[task].predictor_labels).items():
            rows.append({"seed": seed, **dict(zip(DATA_FIELDS, (task, n, sd, nf, ts))), "predictor": name,
                         **_metrics(data, *fits)})
    columns = ["seed", *DATA_FIELDS, "predictor", *METRICS]
    return pd.DataFrame(rows, columns=columns)


def _key(k: tuple) -> tuple:
    """(seed, n_train, noise_std, task, n_features, test_size), toy1d's defaults filled in."""
    seed, n, sd, *rest = k
    task, nf, ts = (list(rest) + [TrialConfig.task, 0, 0][len(rest):])[:3]
    return int(seed), int(n), float(sd), str(task), int(nf), int(ts)


def _np(t) -> np.ndarray | None:
    return None if t is None else t.double().numpy()


def _predictors(data, names: Iterable[str]) -> dict[str, tuple]:
    """Per predictor of ``names`` (the task's): its predictions at (training x, test x, fresh x); None where undefined."""
    x, y, x_test, x_new = _np(data.x), _np(data.y)[:, 0], _np(data.x_test), _np(data.x_new)
    out = {}
    if "oracle" in names and data.f_x is not None:
        out["oracle"] = (_np(data.f_x)[:, 0], _np(data.f_x)[:, 0], _np(data.f_new)[:, 0])
    design = lambda z: np.column_stack([np.ones(len(z)), z])   # noqa: E731 - intercept and inputs
    coef = np.linalg.pinv(design(x)) @ y                       # minimum-norm where n <= d + 1
    out["least_squares"] = tuple(None if z is None else design(z) @ coef for z in (x, x_test, x_new))
    if "ridge" in names:
        from sklearn.linear_model import RidgeCV

        ridge = RidgeCV(alphas=RIDGE_ALPHAS).fit(x, y)
        out["ridge"] = (ridge.predict(x), ridge.predict(x_test), None)
    return out


def _metrics(data, fit: np.ndarray, fit_test: np.ndarray, fit_new: np.ndarray | None) -> dict[str, float]:
    y, y_test = _np(data.y)[:, 0], _np(data.y_test)[:, 0]
    train, test = float(np.mean((y - fit) ** 2)), float(np.mean((y_test - fit_test) ** 2))
    known = data.f_x is not None and fit_new is not None
    return {"train_mse": train, "test_mse": test, "gap": test - train,
            "excess_risk": float(np.mean((fit - _np(data.f_x)[:, 0]) ** 2)) if known else np.nan,
            "new_mse": float(np.mean((_np(data.y_new)[:, 0] - fit_new) ** 2)) if known else np.nan,
            "new_excess_risk": float(np.mean((fit_new - _np(data.f_new)[:, 0]) ** 2)) if known else np.nan}


def known_answer_table(trials: pd.DataFrame, *, seed: int = 0, n_resamples: int = 9_999,
                       method: str = "t") -> pd.DataFrame:
    """Per (task, n_train, noise_std, predictor): n seeds, mean and 95% interval (``analysis.inference.stats.interval``) of each metric beside the textbook value.

    ``trials`` is ``known_answer_trials(...)``. Columns per metric m in ``METRICS``:
    m, m_ci_low, m_ci_high, m_expected, m_within (the textbook value lies inside the CI; None
    without an interval).
    """
    from ..inference.stats import interval

    out = []
    keys = ["task", "n_train", "noise_std", "n_features", "test_size", "predictor"]
    for (task, n, sd, nf, ts, pred), g in trials.groupby(keys, sort=True):
        row = {"task": task, "n_train": n, "noise_std": sd, "n_features": nf, "test_size": ts, "predictor": pred,
               "n_seeds": len(g)}
        book = textbook(sd, n, task)
        expected = book.loc[pred] if pred in book.index else pd.Series(np.nan, index=book.columns)
        for j, metric in enumerate(m for m in METRICS if m in g):
            values = g[metric].to_numpy()
            low, high = interval(values, seed=np.random.SeedSequence([seed, j]),
                                     n_resamples=n_resamples, method=method)
            row.update({metric: values.mean(), f"{metric}_ci_low": low, f"{metric}_ci_high": high,
                        f"{metric}_expected": expected[metric],
                        f"{metric}_within": (bool(low <= expected[metric] <= high)
                                             if np.isfinite(low) and np.isfinite(expected[metric])
                                             else None)})   # no interval below 3 seeds, or no textbook value
        out.append(row)
    return pd.DataFrame(out)
