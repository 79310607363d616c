"""``spinbench compare RUN_A RUN_B``: did a change make a method better or worse?

The rows of two run folders' ``results.csv`` are matched by what names them: model, size,
boundary, options, method, T, observable and r. For each pair the comparison gives both
estimates, the difference ``B - A`` with its combined standard error
``S · sqrt(stderr_A² + stderr_B²)`` (``S``: see below) and a verdict:

* ``worse`` / ``better`` — B moved away from / towards the exact value, by more than
  :data:`THRESHOLD` combined errors, and the run that is further from it is inconsistent with
  it (|z| / S >= :data:`THRESHOLD`); where no exact value is known, a distance (``*_tv``, ``*_kl``:
  smaller is better) that grew / shrank by more than :data:`THRESHOLD` combined errors.
* ``changed`` — any other row that moved by more than :data:`THRESHOLD` combined errors with
  no exact value to say which way is better (not a regression);
* ``same`` — within noise;
* ``newly failed`` / ``newly flagged`` — B's row failed or cannot be trusted where A's was fine
  (both regressions); ``fixed`` — the other way round;
* ``only in A`` / ``only in B`` — rows the other run does not have.

The threshold matches the report's |z| < 4 rule for consistency with the exact value.

**Noise beyond the error bars.** A trained generator's error bar covers its sampling noise,
not its training's: two trainings from different seeds differ by far more than their error
bars while neither method changed. Each run's rows say how far a method's estimates stray from
the exact values: each (model, size, boundary, options, method) of a run gets the scale factor
``max(1, sqrt(mean z²))`` over its rows with an exact value (the Particle Data Group's scale
factor for data that scatter more than their errors allow), and ``S``, the smaller of the two
runs' factors, multiplies the combined error and divides both |z| before they are judged. A
Monte Carlo sampler has ``S`` near 1 and keeps the full sensitivity, as does any method that
agrees with the exact values in either run (a bias introduced or fixed is seen); a generator
that strays by 10 error bars in both runs must move by far more to count. The ``scale`` column
shows ``S``. Timings (``ess_per_second``) are compared as a ratio, never judged: they depend on the
machine's load.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import _html
from ._errors import ReportError
from ._run_folder import FLAGGED_STATUSES, read_table

__all__ = ["KEYS", "REGRESSIONS", "THRESHOLD", "Comparison", "compare_runs", "html_comparison"]

#: Significance threshold, in units of the combined standard error (and of |z| against the
#: exact value): the report's consistency rule.
THRESHOLD = 4.0
#: The columns that match a row of run A with one of run B.
KEYS = ("model", "size", "boundary", "options", "method", "T", "observable", "r")
#: Verdicts that make ``spinbench compare`` exit with status 1.
REGRESSIONS = ("worse", "newly failed", "newly flagged")
#: Observables whose smaller values are better where no exact value is known.
DISTANCE_SUFFIXES = ("_tv", "_kl")
#: Columns of the comparison, in order.
COLUMNS = (
    *KEYS,
    "exact",
    "estimate_a",
    "stderr_a",
    "estimate_b",
    "stderr_b",
    "difference",
    "combined_stderr",
    "scale",
    "z_difference",
    "z_a",
    "z_b",
    "status_a",
    "status_b",
    "ess_per_second_ratio",
    "verdict",
    "reason",
)


@dataclass
class Comparison:
    """The matched rows (:data:`COLUMNS`) of two runs, and the folders they came from."""

    a: Path
    b: Path
    rows: pd.DataFrame

    def counts(self) -> dict[str, int]:
        """How many rows got each verdict."""
        return {str(k): int(v) for k, v in self.rows["verdict"].value_counts().items()}

    @property
    def regressions(self) -> pd.DataFrame:
        """Rows that got significantly worse, newly failed or were newly flagged."""
        return self.rows[self.rows["verdict"].isin(REGRESSIONS)]


def _load(folder: Path) -> pd.DataFrame:
    path = folder / "results.csv"
    if not path.is_file():
        raise ReportError(
            f"{folder} holds no results.csv: give the folder of a finished `spinbench run`"
        )
    try:
        table = read_table(path)
    except (OSError, ValueError, KeyError) as error:
        raise ReportError(f"{path} cannot be read as a spinbench table: {error}") from error
    table = table.copy()
    table["options"] = table["options"].fillna("")
    # T as written to 12 significant digits (the same grid value read from two files), r of
    # rows without a distance as -1: both must match exactly.
    table["_T"] = table["T"].map(lambda t: float(f"{t:.12g}") if pd.notna(t) else math.nan)
    table["_r"] = table["r"].fillna(-1).astype(int)
    duplicated = table.duplicated(["model", "size", "boundary", "options", "method", "_T",
                                   "observable", "_r"])  # fmt: skip
    return table[~duplicated]


def _abs_z(estimate: float, stderr: float, exact: float) -> float:
    error = abs(estimate - exact)
    if stderr > 0:
        return error / stderr
    return 0.0 if error == 0 else math.inf


def _judge(row: dict[str, Any]) -> tuple[str, str]:
    """The verdict of one matched row, and why."""
    status_a, status_b = row["status_a"], row["status_b"]
    bad_a = status_a == "failed" or status_a in FLAGGED_STATUSES
    if status_b == "failed" and status_a != "failed":
        return "newly failed", str(row.get("reason_b") or "")
    if status_b in FLAGGED_STATUSES and not bad_a:
        return "newly flagged", f"{status_b}: {row.get('reason_b') or ''}"
    if status_b == "ok" and bad_a:
        return "fixed", f"A was {status_a}"
    a, b = row["estimate_a"], row["estimate_b"]
    se = row["combined_stderr"]
    if pd.isna(a) or pd.isna(b):
        return "same", "no estimate in one run"
    difference = b - a
    z_difference = row["z_difference"]
    if pd.isna(se) or not abs(z_difference) >= THRESHOLD:
        return "same", ""
    exact = row["exact"]
    if pd.notna(exact):
        error_a, error_b = abs(a - exact), abs(b - exact)
        z_a, z_b = row["z_a"], row["z_b"]
        scale = row["scale"]
        if error_b > error_a and z_b >= THRESHOLD * scale:
            return "worse", f"|z| against the exact value {z_a:.3g} -> {z_b:.3g}"
        if error_b < error_a and z_a >= THRESHOLD * scale:
            return "better", f"|z| against the exact value {z_a:.3g} -> {z_b:.3g}"
        return "same", f"moved, but both runs agree with the exact value (|z| / S < {THRESHOLD:g})"
    if str(row["observable"]).endswith(DISTANCE_SUFFIXES):
        verdict = "worse" if difference > 0 else "better"
        return verdict, f"distance {a:.3g} -> {b:.3g} ({z_difference:+.3g} combined errors)"
    return "changed", f"{z_difference:+.3g} combined errors; no exact value to judge by"


#: The columns that name a method of a run (its rows share one scale factor).
METHOD_KEYS = ["model", "size", "boundary", "options", "method"]


def scale_factors(table: pd.DataFrame) -> dict[tuple[Any, ...], float]:
    """``S = max(1, sqrt(mean z²))`` of each method's trusted rows with a finite z."""
    usable = table[(table["status"] == "ok") & np.isfinite(table["z"].astype(float))]
    factors = {}
    for key, group in usable.groupby(METHOD_KEYS, sort=False):
        z = group["z"].astype(float).to_numpy()
        factors[tuple(key)] = max(1.0, float(np.sqrt(np.mean(z**2))))
    return factors


def compare_runs(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> Comparison:
    """Match the rows of run folders ``a`` and ``b`` and judge each (see the module's text).
    Raises :class:`~spinbench.ReportError` for a folder without a readable results.csv."""
    folder_a, folder_b = Path(a), Path(b)
    table_a, table_b = _load(folder_a), _load(folder_b)
    match = ["model", "size", "boundary", "options", "method", "_T", "observable", "_r"]
    kept = [*match, "T", "r", "estimate", "stderr", "exact", "status", "reason", "ess_per_second"]
    merged = table_a[kept].merge(
        table_b[kept], on=match, how="outer", suffixes=("_a", "_b"), indicator=True
    )
    factors_a, factors_b = scale_factors(table_a), scale_factors(table_b)
    records = []
    for row in merged.to_dict(orient="records"):
        record: dict[str, Any] = {k: row[k] for k in match}
        method = tuple(row[k] for k in METHOD_KEYS)
        record["scale"] = min(factors_a.get(method, 1.0), factors_b.get(method, 1.0))
        record["T"] = row["T_a"] if pd.notna(row["T_a"]) else row["T_b"]
        record["r"] = row["r_a"] if pd.notna(row["r_a"]) else row["r_b"]
        record["exact"] = row["exact_a"] if pd.notna(row["exact_a"]) else row["exact_b"]
        for side in ("a", "b"):
            for column in ("estimate", "stderr", "status"):
                record[f"{column}_{side}"] = row[f"{column}_{side}"]
            record[f"reason_{side}"] = row[f"reason_{side}"]
        a_value, b_value = row["estimate_a"], row["estimate_b"]
        se = math.hypot(row["stderr_a"], row["stderr_b"]) * record["scale"]
        record["difference"] = b_value - a_value
        record["combined_stderr"] = se
        if pd.isna(record["difference"]) or pd.isna(se):
            record["z_difference"] = math.nan
        elif se > 0:
            record["z_difference"] = record["difference"] / se
        else:
            record["z_difference"] = 0.0 if record["difference"] == 0 else math.inf
        for side in ("a", "b"):
            value, error = row[f"estimate_{side}"], row[f"stderr_{side}"]
            record[f"z_{side}"] = (
                _abs_z(value, error, record["exact"])
                if pd.notna(record["exact"]) and pd.notna(value) and pd.notna(error)
                else math.nan
            )
        rate_a, rate_b = row["ess_per_second_a"], row["ess_per_second_b"]
        record["ess_per_second_ratio"] = rate_b / rate_a if rate_a and rate_a > 0 else math.nan
        if row["_merge"] == "left_only":
            record["verdict"], record["reason"] = "only in A", ""
        elif row["_merge"] == "right_only":
            record["verdict"], record["reason"] = "only in B", ""
        else:
            record["verdict"], record["reason"] = _judge(record)
        records.append(record)
    rows = pd.DataFrame(records, columns=[*COLUMNS, "_T", "_r"])[list(COLUMNS)]
    order = rows["verdict"].map(_VERDICT_ORDER).fillna(len(_VERDICT_ORDER))
    rows = (
        rows.assign(_order=order)
        .sort_values(["_order", "model", "size", "method", "observable", "T", "r"], kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)
    )
    rows["options"] = rows["options"].replace("", None)
    return Comparison(folder_a, folder_b, rows)


#: Verdicts in the order they are listed: regressions first.
_VERDICT_ORDER = {
    v: i
    for i, v in enumerate(
        [*REGRESSIONS, "better", "fixed", "changed", "only in A", "only in B", "same"]
    )
}


def _row_class(row: Any) -> str:
    return str(row["verdict"]).replace(" ", "-")


def html_comparison(comparison: Comparison) -> str:
    """The comparison as one self-contained HTML page, in the report's style."""
    counts = comparison.counts()
    regressions = comparison.regressions
    shown = comparison.rows.drop(columns=["status_a", "status_b"])
    if not shown["options"].notna().any():
        shown = shown.drop(columns="options")
    blocks = [
        _html.facts([("run A", comparison.a), ("run B", comparison.b)]),
        _html.paragraph(
            f"Rows matched by {', '.join(KEYS)}. difference = B − A; combined stderr = "
            "S · sqrt(stderr_A² + stderr_B²), where the scale S, the smaller over the two runs "
            "of max(1, sqrt(mean z²)) of the method's rows, covers scatter beyond the error "
            "bars (a generator's training). worse / better: B moved away from / towards the "
            f"exact value by at least {THRESHOLD:g} combined errors and the run further from "
            f"it has |z| / S ≥ {THRESHOLD:g}; without an exact value, a distance (TV, KL) that "
            "grew / shrank so much. changed: moved with nothing to judge by. Timings are "
            "shown as a ratio (B / A), never judged."
        ),
        '<h2 id="verdicts">Verdicts</h2>',
        _html.facts([(k, counts.get(k, 0)) for k in _VERDICT_ORDER if counts.get(k)]),
        f'<p class="badge {"bad" if len(regressions) else "good"}">'
        + _html.escape(
            f"{len(regressions)} regressions (worse, newly failed or newly flagged)"
            if len(regressions)
            else "No significant regression"
        )
        + "</p>",
        '<h2 id="rows">Rows</h2>',
        _html.paragraph("Click a column header to sort. Red: regressions; green: improvements."),
        _html.table(shown, table_id="comparison-table", row_class=_row_class),
    ]
    return _html.page("spinbench compare", blocks, nav=[("verdicts", "Verdicts"), ("rows", "Rows")])
