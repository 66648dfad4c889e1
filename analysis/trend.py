"""One model across the grid: the paired delta regressed on the swept settings.

delta ~ p + p^2 + log N + (log N)^2 + log width + (log width)^2 + p:log N + p:log width, with
the terms whose settings the sweep varies (p = dropout rate; a square needs three values of
its setting), and a random intercept per
seed (every cell shares the seeds, so a seed's data draw moves all its cells together):
``statsmodels`` MixedLM. If the mixed model fails to converge, OLS with standard errors
clustered by seed takes its place, and the table says so.

From the fit: a coefficient table with 95% intervals; the rate with the largest predicted
benefit at each N (and width), p* = -(b_p + b_pN log N + b_pw log w) / (2 b_p2), with an
interval from 4,000 draws of the coefficients' normal approximation; and a lack-of-fit
F-test of the trend against one mean per cell (both with a fixed effect per seed, OLS),
which says when the model misses the pattern.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

MIN_CELLS = 3
DRAWS = 4_000


@dataclass
class Trend:
    formula: str
    method: str                          # "MixedLM (random intercept per seed)" or "OLS, seed-clustered SE"
    coefficients: pd.DataFrame           # term, estimate, ci_low, ci_high, p
    best_rate: pd.DataFrame              # per N (and width): p_star, ci_low, ci_high, note
    cell_fit: pd.DataFrame               # per cell: the axes, observed mean, its SE, fitted mean
    lack_of_fit_f: float                 # the trend against one mean per cell (seed effects in both)
    lack_of_fit_df: tuple[int, int]
    lack_of_fit_p: float
    n: int
    curves: pd.DataFrame = field(default_factory=pd.DataFrame)  # fitted delta over a fine grid of rates, band
    peak_n: Optional[dict] = None        # N with the largest predicted benefit at one rate: p, n, ci_low, ci_high
    notes: list[str] = field(default_factory=list)
    scope: str = ""                      # the trials it was fitted to, where not all ("task = toy1d only")

    @property
    def fits_badly(self) -> bool:
        return bool(np.isfinite(self.lack_of_fit_p) and self.lack_of_fit_p < 0.05)


def _design(frame: pd.DataFrame, axes: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """The model's columns (p, p2, logN, logw) from the swept axes, and its terms."""
    d = pd.DataFrame(index=frame.index)
    terms: list[str] = []
    if "dropout" in axes:
        d["p"] = frame["dropout"].astype(float)
        terms.append("p")
        if frame["dropout"].nunique() >= 3:
            d["p2"] = d["p"] ** 2
            terms.append("p2")
    for axis, name in (("n_train", "logN"), ("width", "logw")):
        if axis in axes:
            d[name] = np.log(frame[axis].astype(float))
            terms.append(name)
            if frame[axis].nunique() >= 3:       # a benefit that rises and then falls
                d[f"{name}2"] = d[name] ** 2
                terms.append(f"{name}2")
            if "p" in d:
                terms.append(f"p:{name}")
    return d, terms


def fit_trend(ok: pd.DataFrame, axes: Sequence[str], column: str) -> Optional[Trend]:
    """The trend model of ``column`` (a paired delta) over the swept axes of the finished trials ``ok``.

    None when fewer than 3 cells, or none of dropout, n_train, width is swept.
    """
    import statsmodels.formula.api as smf

    axes = [a for a in axes if a in ("dropout", "n_train", "width") and ok[a].nunique() > 1]
    live = ok.dropna(subset=[column])
    if not axes or live.groupby(axes).ngroups < MIN_CELLS:
        return None
    x, terms = _design(live, axes)
    data = pd.concat([x, live[[column, "seed", *axes]].rename(columns={column: "delta"})], axis=1)
    formula = "delta ~ " + " + ".join(terms)
    notes: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = smf.mixedlm(formula, data, groups=data["seed"]).fit(reml=True)
            ok_fit = bool(res.converged) and np.all(np.isfinite(res.bse.drop("Group Var", errors="ignore")))
        except Exception:  # noqa: BLE001 - singular or degenerate designs: fall back below
            ok_fit = False
        if ok_fit:
            method, params = "MixedLM (random intercept per seed)", res.fe_params
            cov = res.cov_params().loc[params.index, params.index]
        else:
            res = smf.ols(formula, data).fit(cov_type="cluster", cov_kwds={"groups": data["seed"]})
            method, params, cov = "OLS, seed-clustered SE", res.params, res.cov_params()
            notes.append("the mixed model did not converge; OLS with seed-clustered errors instead")
    coef = _coefficients(params, cov)
    draws = np.random.default_rng(0).multivariate_normal(params.to_numpy(), cov.to_numpy(), size=DRAWS)
    cell_fit, f, df1, df2, p = _lack_of_fit(data, axes, params, formula)
    return Trend(formula=formula, method=method, coefficients=coef,
                 best_rate=_best_rate(data, axes, params, draws), cell_fit=cell_fit, lack_of_fit_f=f,
                 lack_of_fit_df=(df1, df2), lack_of_fit_p=p,
                 n=len(data), curves=_curves(data, axes, params, draws), peak_n=_peak_n(data, params, draws),
                 notes=notes)


def _columns(p: np.ndarray, n_train: Optional[float], width: Optional[float]) -> dict[str, np.ndarray]:
    cols = {"p": p, "p2": p ** 2}
    for name, v in (("logN", n_train), ("logw", width)):
        if v is not None:
            cols[name] = np.full_like(p, np.log(v))
            cols[f"{name}2"] = cols[name] ** 2
    return cols


def _curves(data: pd.DataFrame, axes: list[str], params: pd.Series, draws: np.ndarray) -> pd.DataFrame:
    """The fitted delta against the rate, one curve per value of the other axes, with a 95% band."""
    if "p" not in params:
        return pd.DataFrame()
    others = [a for a in axes if a != "dropout"]
    combos = data[others].drop_duplicates().sort_values(others) if others else pd.DataFrame(index=[0])
    grid = np.linspace(float(data["p"].min()), float(data["p"].max()), 41)
    out = []
    for _, combo in combos.iterrows():
        cols = _columns(grid, combo.get("n_train"), combo.get("width"))
        fit = _predict(params, cols)
        band = np.stack([_predict(pd.Series(b, index=params.index), cols) for b in draws[:400]])
        out.append(pd.DataFrame({"dropout": grid, **{a: combo[a] for a in others}, "fitted": fit,
                                 "low": np.quantile(band, 0.025, axis=0), "high": np.quantile(band, 0.975, axis=0)}))
    return pd.concat(out, ignore_index=True)


def _peak_n(data: pd.DataFrame, params: pd.Series, draws: np.ndarray) -> Optional[dict]:
    """Where the predicted benefit peaks in N, at the median rate tried: exp(-(b_N + b_pN p) / (2 b_N2))."""
    if "logN2" not in params or float(params["logN2"]) >= 0:
        return None
    p = float(np.median(data["p"])) if "p" in data else 0.0
    names = list(params.index)

    def peak(b: np.ndarray) -> np.ndarray:
        get = dict(zip(names, b.T))
        return np.exp(-(get["logN"] + get.get("p:logN", 0.0) * p) / (2 * get["logN2"]))

    sample = peak(draws[draws[:, names.index("logN2")] < 0])
    return {"p": p, "n": float(peak(params.to_numpy()[None, :])[0]),
            "ci_low": float(np.quantile(sample, 0.025)), "ci_high": float(np.quantile(sample, 0.975))}


def _coefficients(params: pd.Series, cov: pd.DataFrame) -> pd.DataFrame:
    se = np.sqrt(np.diag(cov.to_numpy()))
    z = sps.norm.ppf(0.975)
    return pd.DataFrame({"term": params.index, "estimate": params.to_numpy(), "ci_low": params.to_numpy() - z * se,
                         "ci_high": params.to_numpy() + z * se,
                         "p": 2 * sps.norm.sf(np.abs(params.to_numpy() / se))})


def _predict(params: pd.Series, cols: dict[str, np.ndarray]) -> np.ndarray:
    out = np.full(len(next(iter(cols.values()))), float(params.get("Intercept", 0.0)))
    for term, b in params.items():
        if term == "Intercept":
            continue
        value = np.ones_like(out)
        for part in term.split(":"):
            value = value * cols[part]
        out = out + b * value
    return out


def _best_rate(data: pd.DataFrame, axes: list[str], params: pd.Series, draws: np.ndarray) -> pd.DataFrame:
    """p* per combination of the other axes, with a 95% interval over the coefficient draws."""
    if "p2" not in params:
        return pd.DataFrame()
    others = [a for a in axes if a != "dropout"]
    combos = data[others].drop_duplicates().sort_values(others) if others else pd.DataFrame(index=[0])
    lo_p, hi_p = float(data["p"].min()), float(data["p"].max())
    names = list(params.index)
    rows = []
    for _, combo in combos.iterrows():
        log = {"logN": np.log(float(combo["n_train"])) if "n_train" in combo else 0.0,
               "logw": np.log(float(combo["width"])) if "width" in combo else 0.0}

        def vertex(b: np.ndarray) -> np.ndarray:
            get = dict(zip(names, b.T))
            slope = get["p"] + sum(get.get(f"p:{k}", 0.0) * v for k, v in log.items())
            return -slope / (2 * get["p2"])

        star = float(vertex(params.to_numpy()[None, :])[0])
        sample = vertex(draws)
        concave = float(params["p2"]) < 0
        row = {a: combo[a] for a in others}
        row.update(p_star=star, ci_low=float(np.quantile(sample, 0.025)), ci_high=float(np.quantile(sample, 0.975)),
                   note=("" if concave and lo_p <= star <= hi_p else
                         "no interior best rate: the fitted curve is not a cap" if not concave else
                         f"outside the rates tried ({lo_p:g}-{hi_p:g})"))
        rows.append(row)
    return pd.DataFrame(rows)


def _lack_of_fit(data: pd.DataFrame, axes: list[str], params: pd.Series,
                 formula: str) -> tuple[pd.DataFrame, float, int, int, float]:
    """Observed cell means and their SEs beside the fitted means, and the classical lack-of-fit F-test:
    the trend's terms against one mean per cell, both with a fixed effect per seed (OLS)."""
    import statsmodels.formula.api as smf

    g = data.groupby(axes, sort=True)
    cells = g["delta"].agg(["mean", "std", "count"]).reset_index()
    cells["se"] = cells["std"] / np.sqrt(cells["count"])
    x, _ = _design(cells, axes)
    cells["fitted"] = _predict(params, {c: x[c].to_numpy() for c in x})
    frame = data.assign(cell=g.ngroup())
    full = smf.ols("delta ~ C(cell) + C(seed)", frame).fit()
    reduced = smf.ols(formula + " + C(seed)", frame).fit()
    if full.df_resid <= 0 or reduced.df_resid <= full.df_resid:
        return cells.drop(columns=["std"]), np.nan, 0, int(full.df_resid), np.nan
    f, p, df_diff = full.compare_f_test(reduced)
    return cells.drop(columns=["std"]), float(f), int(df_diff), int(full.df_resid), float(p)
