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


def textbook(noise_std: float, n_train: int) -> pd.DataFrame:
    """Expected train MSE, test MSE and gap of each predictor (rows: oracle, least_squares, interpolator)."""
    s2, n = noise_std ** 2, n_train
    d = 2  # intercept and slope
    return pd.DataFrame(
        {"train_mse": [s2, s2 * (1 - d / n), 0.0],
         "test_mse": [s2, s2 * (1 + d / n), 2 * s2],
         "gap": [0.0, 2 * d * s2 / n, 2 * s2]},
        index=pd.Index(["oracle", "least_squares", "interpolator"], name="predictor"),
    )


def known_answer_trials(keys: Iterable[tuple[int, int, float]]) -> pd.DataFrame:
    """Oracle and least-squares train/test MSE on the data of each (seed, n_train, noise_std).

    Returns one row per (key, predictor): seed, n_train, noise_std, predictor, train_mse,
    test_mse, gap. The data are ``bench.make_data`` of that key, exactly what the nets saw.
    """
    from bench import make_data  # torch: regenerating the nets' data needs its generator

    keys = sorted(set((int(s), int(n), float(sd)) for s, n, sd in keys))
    rows = []
    by_shape: dict[tuple[int, float], list[int]] = {}
    for seed, n, sd in keys:
        by_shape.setdefault((n, sd), []).append(seed)
    for (n, sd), seeds in by_shape.items():
        x = np.linspace(-1.0, 1.0, n)
        y = np.empty((len(seeds), n))       # (seeds, n) train targets
        y_test = np.empty((len(seeds), n))  # (seeds, n) test targets, same x
        for i, seed in enumerate(seeds):
            data = make_data(TrialConfig(seed=seed, n_train=n, noise_std=sd))
            x = data.x.squeeze(1).double().numpy()
            y[i] = data.y.squeeze(1).double().numpy()
            y_test[i] = data.y_test.squeeze(1).double().numpy()
        design = np.stack([np.ones(n), x], axis=1)         # (n, 2)
        hat = design @ np.linalg.pinv(design)               # (n, n) projection onto lines
        for name, fit in (("oracle", np.broadcast_to(x, y.shape)), ("least_squares", y @ hat.T)):
            train = np.mean((y - fit) ** 2, axis=1)
            test = np.mean((y_test - fit) ** 2, axis=1)
            rows.append(pd.DataFrame({"seed": seeds, "n_train": n, "noise_std": sd, "predictor": name,
                                      "train_mse": train, "test_mse": test, "gap": test - train}))
    columns = ["seed", "n_train", "noise_std", "predictor", "train_mse", "test_mse", "gap"]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=columns)


def known_answer_table(trials: pd.DataFrame, *, seed: int = 0, n_resamples: int = 9_999,
                       method: str = "t") -> pd.DataFrame:
    """Per (n_train, noise_std, predictor): n seeds, mean and 95% interval (``analysis.stats.interval``) of each metric beside the textbook value.

    ``trials`` is ``known_answer_trials(...)``. Columns per metric m in (train_mse, test_mse, gap):
    m, m_ci_low, m_ci_high, m_expected, m_within (the textbook value lies inside the CI; None
    without an interval).
    """
    from .stats import interval

    out = []
    for (n, sd, pred), g in trials.groupby(["n_train", "noise_std", "predictor"], sort=True):
        row = {"n_train": n, "noise_std": sd, "predictor": pred, "n_seeds": len(g)}
        expected = textbook(sd, n).loc[pred]
        for j, metric in enumerate(("train_mse", "test_mse", "gap")):
            values = g[metric].to_numpy()
            low, high = interval(values, seed=np.random.SeedSequence([seed, j]),
                                     n_resamples=n_resamples, method=method)
            row.update({metric: values.mean(), f"{metric}_ci_low": low, f"{metric}_ci_high": high,
                        f"{metric}_expected": expected[metric],
                        f"{metric}_within": (bool(low <= expected[metric] <= high) if np.isfinite(low)
                                             else None)})   # no interval below 3 seeds: no check
        out.append(row)
    return pd.DataFrame(out)
