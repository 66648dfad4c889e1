"""Known answers on the same seeds' data: the oracle y = x and the least-squares line.

The test set reuses the training x, so test MSE is the in-sample error of ESL section 7.4.
With noise variance sigma^2 and N points, a linear smoother with d parameters has
E[train MSE] = sigma^2 (1 - d/N), E[test MSE] = sigma^2 (1 + d/N), E[gap] = 2 d sigma^2 / N;
the oracle has sigma^2, sigma^2, 0. A harness whose data are right reproduces these.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from bench import TrialConfig

PREDICTORS = ("oracle", "least_squares")
METRICS = ("train_mse", "test_mse", "gap", "excess_risk", "new_mse", "new_excess_risk")


def textbook(noise_std: float, n_train: int) -> pd.DataFrame:
    """Expected value of each metric per predictor (rows: oracle, least_squares, interpolator).

    At the training x (ESL 7.4): a linear smoother with d parameters has excess risk
    sigma^2 d / N. At fresh inputs uniform in [-1, 1] the line's excess risk is
    sigma^2 (1/N + E[x^2] / sum(x_i^2)) with E[x^2] = 1/3 (its design is orthogonal: sum(x_i) = 0);
    an interpolator has no defined value there (NaN).
    """
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


def known_answer_trials(keys: Iterable[tuple[int, int, float]]) -> pd.DataFrame:
    """Oracle and least-squares train/test MSE on the data of each (seed, n_train, noise_std).

    Returns one row per (key, predictor): seed, n_train, noise_std, predictor, train_mse,
    test_mse, gap, excess_risk (against f at the training x), new_mse and new_excess_risk (at
    the fresh inputs). The data are ``bench.make_data`` of that key, exactly what the nets saw.
    """
    from bench import make_data  # torch: regenerating the nets' data needs its generator

    keys = sorted(set((int(s), int(n), float(sd)) for s, n, sd in keys))
    rows = []
    by_shape: dict[tuple[int, float], list[int]] = {}
    for seed, n, sd in keys:
        by_shape.setdefault((n, sd), []).append(seed)
    for (n, sd), seeds in by_shape.items():
        datas = [make_data(TrialConfig(seed=seed, n_train=n, noise_std=sd)) for seed in seeds]
        x = datas[0].x.squeeze(1).double().numpy()                                   # (n,) the same for all
        y = np.stack([d.y.squeeze(1).double().numpy() for d in datas])              # (seeds, n) train targets
        y_test = np.stack([d.y_test.squeeze(1).double().numpy() for d in datas])    # (seeds, n) same x
        x_new = np.stack([d.x_new.squeeze(1).double().numpy() for d in datas])      # (seeds, m) fresh inputs
        y_new = np.stack([d.y_new.squeeze(1).double().numpy() for d in datas])      # (seeds, m)
        coef = y @ np.linalg.pinv(np.stack([np.ones(n), x], axis=1)).T               # (seeds, 2) intercept, slope
        fits = {"oracle": (np.broadcast_to(x, y.shape), x_new),
                "least_squares": (coef[:, :1] + coef[:, 1:] * x, coef[:, :1] + coef[:, 1:] * x_new)}
        for name, (fit, fit_new) in fits.items():
            train = np.mean((y - fit) ** 2, axis=1)
            test = np.mean((y_test - fit) ** 2, axis=1)
            rows.append(pd.DataFrame({
                "seed": seeds, "n_train": n, "noise_std": sd, "predictor": name, "train_mse": train,
                "test_mse": test, "gap": test - train, "excess_risk": np.mean((fit - x) ** 2, axis=1),
                "new_mse": np.mean((y_new - fit_new) ** 2, axis=1),
                "new_excess_risk": np.mean((fit_new - x_new) ** 2, axis=1)}))
    columns = ["seed", "n_train", "noise_std", "predictor", *METRICS]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=columns)


def known_answer_table(trials: pd.DataFrame, *, seed: int = 0, n_resamples: int = 9_999,
                       method: str = "t") -> pd.DataFrame:
    """Per (n_train, noise_std, predictor): n seeds, mean and 95% interval (``analysis.stats.interval``) of each metric beside the textbook value.

    ``trials`` is ``known_answer_trials(...)``. Columns per metric m in ``METRICS``:
    m, m_ci_low, m_ci_high, m_expected, m_within (the textbook value lies inside the CI; None
    without an interval).
    """
    from .stats import interval

    out = []
    for (n, sd, pred), g in trials.groupby(["n_train", "noise_std", "predictor"], sort=True):
        row = {"n_train": n, "noise_std": sd, "predictor": pred, "n_seeds": len(g)}
        expected = textbook(sd, n).loc[pred]
        for j, metric in enumerate(m for m in METRICS if m in g):
            values = g[metric].to_numpy()
            low, high = interval(values, seed=np.random.SeedSequence([seed, j]),
                                     n_resamples=n_resamples, method=method)
            row.update({metric: values.mean(), f"{metric}_ci_low": low, f"{metric}_ci_high": high,
                        f"{metric}_expected": expected[metric],
                        f"{metric}_within": (bool(low <= expected[metric] <= high) if np.isfinite(low)
                                             else None)})   # no interval below 3 seeds: no check
        out.append(row)
    return pd.DataFrame(out)
