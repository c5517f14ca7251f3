"""The system effect on each criterion, with raters and examples as crossed random effects.

The field's standard for Likert ratings is a cumulative-link mixed model (R's
``ordinal::clmm``); Python has no maintained equivalent with crossed random effects, so the
primary model is a linear mixed model with crossed variance components for the rater, the
example and the scenario (one system's advice on one example: advice quality varies from
example to example, and leaving that out makes the tests too eager), in statsmodels
``MixedLM`` with one group holding them all as variance components, fitted by REML per
criterion (:func:`mixed_model`, which also gives the fitted standard deviations). The advisor is the reference: each other system's contrast is the
advisor minus that system, in scale points, with a Wald interval and a Holm-adjusted
p-value over every (system, criterion) contrast. Robustness checks beside it
(:func:`robustness`): an ordinal logit without random effects (statsmodels
``OrderedModel``), and paired nonparametric tests on per-example means (Wilcoxon for each
contrast, Friedman over all systems), Holm-adjusted too.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from anchormix_kedro.vocabulary import CRITERIA

REFERENCE = "advisor"
EFFECT_COLUMNS: tuple[str, ...] = ("system", "criterion", "estimate", "ci_low", "ci_high",
                                   "p_value", "p_adjusted", "n_ratings", "n_raters",
                                   "n_examples", "model", "note")  # fmt: skip
ROBUSTNESS_COLUMNS: tuple[str, ...] = ("system", "criterion", "test", "statistic", "p_value",
                                       "p_adjusted", "n")  # fmt: skip
COMPONENT_COLUMNS: tuple[str, ...] = ("criterion", "component", "variance", "sd")
#: The random effects, each fitted where its grouping has at least two levels and fewer
#: levels than ratings (a scenario rated once is inseparable from the noise).
COMPONENTS: dict[str, str] = {"rater": "rater", "example": "example_id", "scenario": "scenario_id"}
MODEL_NAME = "mixedlm (REML; crossed rater, example and scenario variance components)"


def long_ratings(ratings: pd.DataFrame, key: pd.DataFrame) -> pd.DataFrame:
    """One row per rater x scenario x criterion, with the scenario's example, system and
    genre (empty where the key has none)."""
    columns = ["rater", "scenario_id", "example_id", "system", "genre", "criterion", "rating"]
    if ratings.empty:
        return pd.DataFrame(columns=columns)
    key = key if "genre" in key else key.assign(genre="")
    wide = ratings.merge(key[["scenario_id", "example_id", "system", "genre"]], on="scenario_id")
    long = wide.melt(id_vars=["rater", "scenario_id", "example_id", "system", "genre"],
                     value_vars=list(CRITERIA), var_name="criterion", value_name="rating")  # fmt: skip
    long = long.dropna(subset=["rating"])
    long["rating"] = long["rating"].astype(float)
    return long[columns]


def _holm(p_values: Sequence[float]) -> list[float]:
    from statsmodels.stats.multitest import multipletests

    values = np.asarray(p_values, dtype=float)
    adjusted = np.full(values.shape, np.nan)
    finite = np.isfinite(values)
    if finite.any():
        adjusted[finite] = multipletests(values[finite], method="holm")[1]
    return adjusted.tolist()


def _mixed_fit(data: pd.DataFrame, reference: str):
    import statsmodels.formula.api as smf

    data = data.assign(group=1)
    components = {name: f"0 + C({column})" for name, column in COMPONENTS.items()
                  if 2 <= data[column].nunique() < len(data)}  # fmt: skip
    formula = f"rating ~ C(system, Treatment({reference!r}))"
    model = smf.mixedlm(formula, data, groups="group", re_formula="0", vc_formula=components)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter; a failed fit is reported below
        return model.fit(reml=True, method=["lbfgs", "powell"])


def mixed_contrasts(long: pd.DataFrame, reference: str = REFERENCE) -> pd.DataFrame:
    """Per criterion and other system: the advisor minus that system (columns
    :data:`EFFECT_COLUMNS`), from the crossed-effects linear mixed model."""
    return mixed_model(long, reference)[0]


def mixed_model(
    long: pd.DataFrame, reference: str = REFERENCE
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The contrasts of :func:`mixed_contrasts` and, per criterion, the fitted variance of
    each random effect and of the residual (columns :data:`COMPONENT_COLUMNS`): what a
    power analysis of the next study should assume."""
    rows, parts = [], []
    for criterion, data in long.groupby("criterion", sort=False):
        systems = sorted(set(data["system"]) - {reference})
        counts = {"n_ratings": len(data), "n_raters": data["rater"].nunique(),
                  "n_examples": data["example_id"].nunique()}  # fmt: skip
        if reference not in set(data["system"]) or not systems:
            continue
        try:
            fit = _mixed_fit(data, reference)
            intervals = fit.conf_int()
        except Exception as error:  # noqa: BLE001  (a degenerate design is reported, not fatal)
            rows += [{"system": s, "criterion": criterion, **counts, "model": MODEL_NAME,
                      "note": f"the model could not be fitted: {error}"} for s in systems]  # fmt: skip
            continue
        for system in systems:
            name = f"C(system, Treatment({reference!r}))[T.{system}]"
            coef = float(fit.params.get(name, math.nan))
            low, high = intervals.loc[name] if name in intervals.index else (math.nan,) * 2
            rows.append({"system": system, "criterion": criterion, "estimate": -coef,
                         "ci_low": -float(high), "ci_high": -float(low),
                         "p_value": float(fit.pvalues.get(name, math.nan)), **counts,
                         "model": MODEL_NAME,
                         "note": "" if fit.converged else "did not converge"})  # fmt: skip
        variances = dict(zip(fit.model.exog_vc.names, np.asarray(fit.vcomp, float), strict=True))
        variances["residual"] = float(fit.scale)
        parts += [{"criterion": criterion, "component": name, "variance": value,
                   "sd": math.sqrt(max(value, 0.0))} for name, value in variances.items()]  # fmt: skip
    table = pd.DataFrame(rows, columns=list(EFFECT_COLUMNS))
    table["p_adjusted"] = _holm(table["p_value"]) if len(table) else []
    return table, pd.DataFrame(parts, columns=list(COMPONENT_COLUMNS))


def robustness(long: pd.DataFrame, reference: str = REFERENCE) -> pd.DataFrame:
    """Ordinal logit without random effects, and Wilcoxon and Friedman tests on per-example
    means (columns :data:`ROBUSTNESS_COLUMNS`), Holm-adjusted within each test."""
    from scipy import stats

    rows = []
    for criterion, data in long.groupby("criterion", sort=False):
        means = data.groupby(["example_id", "system"])["rating"].mean().unstack("system")
        if reference not in means:
            continue
        others = sorted(set(means.columns) - {reference})
        for system in others:
            pair = means[[reference, system]].dropna()
            if len(pair) >= 2 and (pair[reference] != pair[system]).any():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    result = stats.wilcoxon(pair[reference], pair[system])
                rows.append({"system": system, "criterion": criterion, "test": "wilcoxon",
                             "statistic": float(result.statistic),
                             "p_value": float(result.pvalue), "n": len(pair)})  # fmt: skip
        complete = means.dropna()
        if len(complete) >= 2 and complete.shape[1] >= 3:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = stats.friedmanchisquare(*(complete[c] for c in complete.columns))
            rows.append({"system": "all", "criterion": criterion, "test": "friedman",
                         "statistic": float(result.statistic), "p_value": float(result.pvalue),
                         "n": len(complete)})  # fmt: skip
        rows += _ordinal(data, criterion, reference, others)
    table = pd.DataFrame(rows, columns=list(ROBUSTNESS_COLUMNS))
    for _test, part in table.groupby("test"):
        table.loc[part.index, "p_adjusted"] = _holm(part["p_value"])
    return table


def _ordinal(data: pd.DataFrame, criterion: str, reference: str, others: list[str]) -> list:
    from statsmodels.miscmodels.ordinal_model import OrderedModel

    if data["rating"].nunique() < 3 or not others:
        return []
    dummies = pd.DataFrame({f"is_{s}": (data["system"] == s).astype(float) for s in others})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = OrderedModel(data["rating"].astype(int).to_numpy(), dummies.to_numpy(),
                               distr="logit").fit(method="bfgs", disp=False)  # fmt: skip
    except Exception:  # noqa: BLE001  (a degenerate design leaves this check out)
        return []
    return [{"system": s, "criterion": criterion, "test": "ordinal logit (advisor minus system)",
             "statistic": -float(fit.params[i]), "p_value": float(fit.pvalues[i]),
             "n": len(data)} for i, s in enumerate(others)]  # fmt: skip
