"""The report of a run: a markdown summary, the figures and one self-contained HTML page,
rebuilt from the run folder.

``spinbench report DIR`` calls :func:`write_report`, as does every run. It reads the grid
(``grid.toml``) and the cell records whose digests match it (:mod:`spinbench._run_folder`),
renders the summary and every figure first, and only then replaces ``summary.md``,
``report.html`` and ``figures/``, so a report that cannot finish leaves the previous one in
place. A partial run is reported as such (how many cells are missing); a figure that cannot
be drawn is named with the reason, never silently left out.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import _html
from ._analysis import exact_where_known, measure
from ._atomic import atomic_directory, write_text_atomic
from ._errors import ReportError
from ._grid import GridError, GridSpec, ModelSpec, is_reconstructed, parse_grid
from ._plan import Plan, make_plan
from ._run_folder import FLAGGED_STATUSES, RunFolder, flagged_rows, rows_to_table
from ._samples import DamagedSamples, Samples

__all__ = ["Report", "ReportError", "load_run", "summarise", "write_report"]

#: Observables whose |z| enters the summary's "mean abs(z)" (its worst |z| takes every one).
Z_OBSERVABLES = ("energy", "correlation")
#: Most distinct energy levels drawn as one bin each in the histogram panels.
MAX_LEVEL_BINS = 200
#: Levels less probable than this fraction of the most probable one are left off a panel's
#: range (unless a sample fell there) when there are more than MAX_LEVEL_BINS of them.
PANEL_TAIL = 1e-6


@dataclass
class Report:
    """What :func:`write_report` wrote and what it could not."""

    summary: Path
    html: Path | None = None
    figures: list[Path] = field(default_factory=list)
    missing_cells: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def load_run(out: str | os.PathLike[str]) -> tuple[Plan, pd.DataFrame, list[str]]:
    """The plan of a run folder's grid, the rows of its cells that match it, and the ids of
    the method cells that are missing (not run yet, failed to be written or damaged)."""
    folder = RunFolder(out)
    if not folder.path.is_dir() or not folder.is_run():
        raise ReportError(
            f"{folder.path} holds no spinbench results (no grid.toml and cells/ of a run)"
        )
    text = folder.previous_grid()
    if text is None:
        raise ReportError(f"{folder.grid} is missing or unreadable: it names the run's cells")
    try:
        plan = make_plan(parse_grid(text, str(folder.grid)))
    except GridError as error:
        raise ReportError(f"{folder.grid} cannot be used: {error}") from error
    rows: list[dict[str, Any]] = []
    missing = []
    for cell in plan.method_cells():
        state = folder.read_cell(cell.id, cell.digest)
        if state.record is None:
            missing.append(cell.id)
        else:
            rows += state.record["rows"]
    return plan, rows_to_table(rows), missing


# ---------------------------------------------------------------------------- summary
def _abs_z(frame: pd.DataFrame) -> pd.Series:
    return frame["z"].astype(float).abs().dropna()


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """One line per (model, size, method): |z| (mean over energy and correlation rows, worst
    over every row), relative errors, distances, flagged rows, wall time and failures."""
    lines = []
    keys = ["model", "size", "boundary", "options", "method"]
    for (model, size, boundary, options, method), group in table.fillna({"options": ""}).groupby(
        keys, sort=False
    ):
        usable = group[group["status"].isin(["ok", *FLAGGED_STATUSES])]
        zs = _abs_z(usable[usable["observable"].isin(Z_OBSERVABLES)])
        every_z = _abs_z(usable)
        energy = usable[usable["observable"] == "energy"]["rel_error"].astype(float).dropna()
        correlation = usable[usable["observable"] == "correlation"]["rel_error"].dropna()
        tv = usable[usable["observable"] == "energy_tv"]
        failures = group[group["status"] == "failed"]
        energy_rows = usable[usable["observable"] == "energy"]
        ess_rate = energy_rows.get("ess_per_second", pd.Series(dtype=float)).astype(float).dropna()
        lines.append(
            {
                "model": model,
                "size": size,
                "boundary": boundary,
                "options": options,
                "method": method,
                "mean abs(z)": zs.mean() if len(zs) else np.nan,
                "worst abs(z)": every_z.max() if len(every_z) else np.nan,
                "energy rel. error": energy.mean() if len(energy) else np.nan,
                "correlation rel. error": correlation.astype(float).mean()
                if len(correlation)
                else np.nan,
                "energy TV": tv["estimate"].astype(float).mean() if len(tv) else np.nan,
                "TV noise floor": tv["noise_floor"].astype(float).mean() if len(tv) else np.nan,
                "median ESS/s": float(ess_rate.median()) if len(ess_rate) else np.nan,
                "flagged rows": int(group["status"].isin(FLAGGED_STATUSES).sum()),
                "wall time (s)": float(group["wall_time"].astype(float).max()),
                "failures": "; ".join(str(reason) for reason in failures["reason"]),
            }
        )
    return pd.DataFrame(lines)


#: |z| of the energy row below which a method counts as consistent with the exact value in
#: the efficiency ranking.
CONSISTENT_Z = 4.0


def efficiency(table: pd.DataFrame) -> pd.DataFrame:
    """Per model, size and temperature, the methods ranked by ESS of the energy per second
    (``ess_per_second``) among those whose energy is consistent with the exact value
    (|z| < :data:`CONSISTENT_Z`) and not flagged; the others listed apart with their |z| or
    their flag."""
    energy = table[(table["observable"] == "energy") & (table["status"] != "failed")]
    energy = energy[energy["z"].notna() & energy["ess_per_second"].notna()]
    energy = energy[~_reconstructed(energy)]  # diagnostics, not samplers
    lines = []
    keys = ["model", "size", "boundary", "options", "T"]
    for (model, size, boundary, options, T), group in energy.fillna({"options": ""}).groupby(
        keys, sort=False
    ):
        z = group["z"].astype(float).abs()
        trusted = (z < CONSISTENT_Z) & (group["status"] == "ok")
        good = group[trusted].sort_values("ess_per_second", ascending=False)
        bad = group[~trusted]
        lines.append(
            {
                "model": model,
                "size": size,
                "boundary": boundary,
                "options": options,
                "T": T,
                "ranked by ESS/s (|z| < 4)": ", ".join(
                    f"{m} {_format('ess', v)}"
                    for m, v in zip(good["method"], good["ess_per_second"], strict=True)
                )
                or "–",
                "not ranked (|z|, flag)": ", ".join(
                    f"{m} ({_format('z', abs(float(v)))}"
                    + ("" if status == "ok" else f", {status}")
                    + ")"
                    for m, v, status in zip(bad["method"], bad["z"], bad["status"], strict=True)
                ),
            }
        )
    return pd.DataFrame(lines)


def _reconstructed(table: pd.DataFrame) -> np.ndarray:
    """Boolean mask of a table's reconstructed rows (empty tables included)."""
    return np.array([is_reconstructed(str(m)) for m in table["method"]], bool)


def overfitting(table: pd.DataFrame) -> pd.DataFrame:
    """Per model and generator with reconstructed rows: the energy's mean |z| against the
    exact value and the mean ``reconstruction_error`` of the configurations it trained on and
    of held-out ones. A network that reconstructs its training configurations better than
    held-out ones has learnt them, not only their distribution."""
    rebuilt = table[_reconstructed(table) & (table["status"] != "failed").to_numpy()]
    if rebuilt.empty:
        return pd.DataFrame()
    lines = []
    keys = ["model", "size", "boundary", "options"]
    for (model, size, boundary, options), group in rebuilt.fillna({"options": ""}).groupby(
        keys, sort=False
    ):
        bases = dict.fromkeys(str(m).partition(":reconstructed-")[0] for m in group["method"])
        for base in bases:
            line: dict[str, Any] = {
                "model": model,
                "size": size,
                "boundary": boundary,
                "options": options,
                "generator": base,
            }
            sets = {
                which: group[group["method"] == f"{base}:reconstructed-{which}"]
                for which in ("train", "heldout")
            }
            for which, rows in sets.items():
                zs = _abs_z(rows[rows["observable"] == "energy"])
                line[f"energy abs(z), {which}"] = zs.mean() if len(zs) else np.nan
            errors = {
                which: rows[rows["observable"] == "reconstruction_error"]
                .set_index("T")[["estimate", "stderr"]]
                .astype(float)
                for which, rows in sets.items()
            }
            for which, error in errors.items():
                line[f"reconstruction error, {which}"] = (
                    error["estimate"].mean() if len(error) else np.nan
                )
            both = errors["train"].merge(
                errors["heldout"],
                left_index=True,
                right_index=True,
                suffixes=("_train", ""),
                how="inner",
            )
            gaps = np.asarray(
                (both["estimate"] - both["estimate_train"])
                / np.hypot(both["stderr"], both["stderr_train"]),
                float,
            )
            gap = gaps[np.isfinite(gaps)]
            line["gap / stderr"] = gap.mean() if len(gap) else np.nan
            lines.append(line)
    return pd.DataFrame(lines)


def _format(column: str, value: Any) -> str:
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return "–"
        if math.isinf(value):
            return "inf"
        if column.startswith("wall time"):
            return f"{value:.1f}"
        return f"{value:.3g}"
    return "" if value is None else str(value).replace("|", "/")


def _markdown(frame: pd.DataFrame) -> str:
    columns = list(frame.columns)
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in frame.itertuples(index=False):
        out.append(
            "| " + " | ".join(_format(c, v) for c, v in zip(columns, row, strict=True)) + " |"
        )
    return "\n".join(out)


def _shown(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary without an options column when no model has options."""
    if "options" in summary and not summary["options"].astype(bool).any():
        return summary.drop(columns="options")
    return summary


def summary_text(table: pd.DataFrame, missing: list[str], total: int, problems: list[str]) -> str:
    """The whole summary.md."""
    text = [
        "# spinbench results",
        "",
    ]
    if missing:
        text += [
            f"**Partial run: {len(missing)} of {total} cells are missing** "
            f"({', '.join(missing)}); run the grid again with the same --out to finish it.",
            "",
        ]
    text += [
        "One line per model and method. abs(z) = |estimate - exact| / stderr; the mean is over",
        "energy and correlation rows, the worst over every row (values below about 3 are",
        "consistent with the exact solution; inf: a zero error bar on a wrong value). Relative",
        "errors are against the exact solution, only where it is not near zero. Energy TV is the",
        "total-variation distance of the energy histogram from the exact distribution (or the",
        "Monte Carlo reference), beside the noise floor that sampling alone gives at the same",
        "sample size. Flagged rows are results that cannot be trusted (unconverged chains, a",
        "degenerate sample, diverged training); they are listed below the table.",
        "",
        _markdown(_shown(summarise(table))) if len(table) else "(no finished cells)",
        "",
    ]
    ranked = efficiency(table) if len(table) and "ess_per_second" in table else pd.DataFrame()
    if len(ranked):
        text += [
            "## Efficiency: ESS of the energy per second",
            "",
            "Per temperature, the methods whose energy is consistent with the exact value",
            "(|z| < 4) and not flagged, best first, by effective samples of the energy per",
            "second of everything the row needed (training and the reference sampling that fed",
            "it included; the temperatures of a grid share one program, so each gets an equal",
            "share of the time).",
            "",
            _markdown(_shown(ranked.sort_values(["model", "size", "T"], kind="stable"))),
            "",
        ]
    rebuilt = overfitting(table) if len(table) else pd.DataFrame()
    if len(rebuilt):
        text += [
            "## The networks at training time: reconstructed configurations",
            "",
            "Reference configurations passed through each network (encode, then decode): those",
            "it trained on and held-out ones it never saw (rows `<generator>:reconstructed-train`",
            "and `:reconstructed-heldout`; the paper's red markers). Mean abs(z) of the energy",
            "against the exact value; the mean share of sites the reconstruction changes, and",
            "the held-out minus train difference of that share in units of its combined",
            "standard error, averaged over temperatures (over-fitting: well above 4).",
            "Diagnostics, not samplers: they are left out of the efficiency ranking.",
            "",
            _markdown(_shown(rebuilt)),
            "",
        ]
    flagged = [f"- {line}" for line in flagged_rows(table)]
    if flagged:
        text += [f"## Flagged rows ({len(flagged)})", "", *flagged, ""]
    if problems:
        text += ["## Not drawn", "", *(f"- {p}" for p in problems), ""]
    text += [
        "Full table: `results.csv` / `results.json`; figures: `figures/`;",
        "provenance: `provenance.json`.",
        "",
    ]
    return "\n".join(text)


# ---------------------------------------------------------------------------- figures
def _method_samples(out: Path, spec: ModelSpec, method: str) -> Samples | None:
    path = out / "samples" / f"{spec.label()}-{method}"
    return Samples.load(path) if path.exists() else None


def _level_edges(levels: np.ndarray) -> np.ndarray:
    """Bin edges halfway between consecutive energy levels (one bin per level)."""
    levels = np.unique(levels)
    if len(levels) == 1:
        return np.array([levels[0] - 0.5, levels[0] + 0.5])
    middle = (levels[1:] + levels[:-1]) / 2
    return np.concatenate(
        [[levels[0] - (middle[0] - levels[0])], middle, [levels[-1] + (levels[-1] - middle[-1])]]
    )


def _histogram_bins(model: Any, T: float, energies: list[np.ndarray]) -> Any:
    """The bins of a histogram panel (see :func:`_histogram_panel`)."""
    return _histogram_panel(model, T, energies)[0]


def _histogram_panel(
    model: Any, T: float, energies: list[np.ndarray]
) -> tuple[Any, np.ndarray | None]:
    """Bins of an energy-histogram panel (E/N) and the exact density over them, or None.

    A discrete model with an exact distribution gets one bin per level when it has at most
    :data:`MAX_LEVEL_BINS` levels; with more (a 16x16 torus has 255, 64x64 4095), the levels
    that carry the distribution (probability above :data:`PANEL_TAIL` of the largest) and every
    energy seen are grouped a whole number of levels per bin, at most MAX_LEVEL_BINS bins. The
    exact density is each bin's probability over its width, as ``hist(density=True)`` draws the
    samples. Without an exact distribution: one bin per level seen when few, else 30 equal bins.
    """
    if not model.is_discrete:
        return 30, None
    try:
        exact = model.exact_energy_distribution(np.asarray([T]))
    except ValueError:  # below the solver's temperature limit: bin what was seen
        exact = None
    if exact is None:
        seen = np.unique(np.round(np.concatenate(energies), 6)) if energies else np.zeros(0)
        if 0 < len(seen) <= MAX_LEVEL_BINS:
            return _level_edges(seen), None
        return 30, None
    levels = np.asarray(exact.levels, np.float64) / model.n_sites
    p = np.asarray(exact.probabilities, np.float64)[0]
    edges = _level_edges(levels)
    if len(levels) > MAX_LEVEL_BINS:
        shown = levels[p >= PANEL_TAIL * p.max()]
        seen = np.concatenate(energies) if energies else shown
        lo, hi = min(shown.min(), seen.min()), max(shown.max(), seen.max())
        first, last = np.clip(
            np.searchsorted(edges, [lo, hi], side="right") - 1, 0, len(levels) - 1
        )
        group = math.ceil((last - first + 1) / MAX_LEVEL_BINS)
        grouped = edges[first : last + 2 : group]
        if grouped[-1] != edges[last + 1]:  # the last bin has fewer levels
            grouped = np.append(grouped, edges[last + 1])
        edges = grouped
    mass, _ = np.histogram(levels, bins=edges, weights=p)
    return edges, mass / np.diff(edges)


def _colour(index: int) -> str:
    """The ``index``-th method's colour: matplotlib's cycle without its red, which marks
    reconstructed rows."""
    return [f"C{i}" for i in range(10) if i != 3][index % 9]


def _legend(axis: Any, size: int) -> None:
    """A legend where the panel has labelled artists (an empty one only warns)."""
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=size)


class _Figures:
    """Draws Figure 2 (per model) and Figure 3 (2D configurations) into a folder, recording
    what it could not draw."""

    def __init__(self, out: Path, folder: Path) -> None:
        self.out, self.folder = out, folder
        self.problems: list[str] = []

    def samples(self, spec: ModelSpec, method: str, figure: str) -> Samples | None:
        if method.endswith("+reweight"):  # weighted draws: no configurations of their own
            return None
        try:
            samples = _method_samples(self.out, spec, method)
        except DamagedSamples as error:
            self.problems.append(f"{figure}: {method} left out: {error}")
            return None
        if samples is None:
            self.problems.append(
                f"{figure}: {method} left out: its samples (samples/{spec.label()}-{method}) "
                "are missing"
            )
        return samples

    def figure2(self, spec: ModelSpec, model: Any, rows: pd.DataFrame) -> Path:
        import matplotlib.pyplot as plt

        name = f"figure2-{spec.label()}.png"
        every = list(dict.fromkeys(map(str, rows["method"])))
        methods = [m for m in every if not is_reconstructed(m)]
        rebuilt = [m for m in every if is_reconstructed(m)]
        hist_temps = list(spec.histogram_temps) or [float(spec.temps[len(spec.temps) // 2])]
        figure, axes = plt.subplots(
            1, 2 + len(hist_temps), figsize=(4.2 * (2 + len(hist_temps)), 3.8), squeeze=False
        )
        energy_axis, correlation_axis = axes[0, 0], axes[0, 1]
        dense = np.linspace(float(spec.temps.min()), float(spec.temps.max()), 200)
        exact = exact_where_known(model, dense)
        if exact is not None and exact.energy is not None:
            energy_axis.plot(dense, exact.energy, "g-", label=f"exact ({model.size})")
        if hasattr(model, "exact_infinite"):
            infinite = model.exact_infinite(dense)
            energy_axis.plot(dense, infinite.energy, "k:", label="exact (infinite lattice)")
        markers = "osD^vx+*"
        for index, method in enumerate(methods):
            ok = rows[(rows["method"] == method) & (rows["status"] != "failed")]
            energy = ok[ok["observable"] == "energy"].sort_values("T")
            energy_axis.errorbar(
                energy["T"],
                energy["estimate"],
                yerr=energy["stderr"],
                fmt=markers[index % 8],
                ms=4,
                capsize=2,
                color=_colour(index),
                label=method,
            )
            correlation = ok[(ok["observable"] == "correlation")]
            for r in (1, 2, 3):
                at_r = correlation[correlation["r"] == r].sort_values("T")
                if at_r.empty:
                    continue
                correlation_axis.errorbar(
                    at_r["T"],
                    at_r["estimate"],
                    yerr=at_r["stderr"],
                    fmt=markers[index % 8],
                    ms=3,
                    capsize=2,
                    label=f"{method} r={r}" if index == 0 or r == 1 else None,
                    color=_colour(index),
                    alpha=1.0 - 0.25 * (r - 1),
                )
        # The paper's red markers (the networks at training time), train and held-out set a
        # little apart in T so that both show.
        shift = 0.006 * float(np.ptp(spec.temps))
        for method in rebuilt:
            base, _, which = method.partition(":reconstructed-")
            index = methods.index(base) if base in methods else len(methods)
            ok = rows[(rows["method"] == method) & (rows["status"] != "failed")]
            energy = ok[ok["observable"] == "energy"].sort_values("T")
            energy_axis.errorbar(
                energy["T"] + (-shift if which == "train" else shift),
                energy["estimate"],
                yerr=energy["stderr"],
                fmt=markers[index % 8],
                ms=5 if which == "train" else 6,
                capsize=2,
                color="red",
                mfc="red" if which == "train" else "none",
                label=f"{base}, reconstructed ({'train' if which == 'train' else 'held-out'})",
            )
        if exact is not None and exact.correlation is not None and exact.distances is not None:
            for j in range(min(3, len(exact.distances))):
                correlation_axis.plot(dense, exact.correlation[:, j], "g-", lw=1)
        energy_axis.set(xlabel="T", ylabel="E / N", title=f"{model.name} {model.size}: energy")
        pair = (
            r"$\langle s_i s_{i+r} \rangle$"
            if model.is_discrete
            else (r"$\langle \cos(\theta_i - \theta_{i+r}) \rangle$")
        )
        correlation_axis.set(
            xlabel="T", ylabel=pair, title="correlation at distance r = 1, 2, 3 (lines: exact)"
        )
        _legend(energy_axis, 6 if rebuilt else 7)
        _legend(correlation_axis, 6)
        loaded = {m: self.samples(spec, m, name) for m in methods}
        for axis, T in zip(axes[0, 2:], hist_temps, strict=True):
            index = int(np.argmin(np.abs(spec.temps - T)))
            T_used = float(spec.temps[index])
            energies = {
                m: np.asarray(measure(model, s.states[index : index + 1])["energy"]).ravel()
                for m, s in loaded.items()
                if s is not None
            }
            bins, exact_density = _histogram_panel(model, T_used, list(energies.values()))
            for m_index, method in enumerate(methods):
                if method in energies:
                    axis.hist(
                        energies[method],
                        bins=bins,
                        density=True,
                        histtype="step",
                        color=_colour(m_index),
                        label=method,
                    )
            if exact_density is not None:
                axis.stairs(exact_density, bins, color="k", linewidth=1.0, label="exact")
            axis.set(
                xlabel="E / N",
                ylabel="probability density",
                title=f"energy histogram, T = {T_used:.3g}",
            )
            _legend(axis, 7)
        figure.tight_layout()
        path = self.folder / name
        figure.savefig(path, dpi=110)
        plt.close(figure)
        return path

    def figure3(self, spec: ModelSpec, model: Any, rows: pd.DataFrame) -> Path | None:
        """Configurations at T_c and above, each with energy equal to its method's mean."""
        import matplotlib.pyplot as plt

        name = f"figure3-{spec.label()}.png"
        critical = model.critical_temperature or float(np.median(spec.temps))
        at_tc = int(np.argmin(np.abs(spec.temps - critical)))
        above = [i for i, T in enumerate(spec.temps) if critical * 1.15 < T]
        columns = [at_tc] + ([above[0]] if above else [])
        shown = [m for m in dict.fromkeys(map(str, rows["method"])) if not is_reconstructed(m)]
        loaded = [(m, self.samples(spec, m, name)) for m in shown]
        methods = [(m, s) for m, s in loaded if s is not None]
        if not methods:
            self.problems.append(f"{name}: not drawn: no method's samples are there")
            return None
        figure, axes = plt.subplots(
            len(methods),
            len(columns),
            figsize=(2.6 * len(columns), 2.6 * len(methods)),
            squeeze=False,
        )
        for i, (method, samples) in enumerate(methods):
            for j, t_index in enumerate(columns):
                states = samples.states[t_index].reshape(-1, *model.shape)
                energies = np.asarray(measure(model, states[None, None])["energy"]).ravel()
                pick = int(np.argmin(np.abs(energies - energies.mean())))
                axes[i, j].imshow(states[pick], cmap="gray", vmin=-1, vmax=1)
                axes[i, j].set_xticks([])
                axes[i, j].set_yticks([])
                axes[i, j].set_title(
                    f"{method}, T={spec.temps[t_index]:.3g}\nE/N={energies[pick]:.3f}", fontsize=8
                )
        figure.tight_layout()
        path = self.folder / name
        figure.savefig(path, dpi=110)
        plt.close(figure)
        return path

    def efficiency(self, spec: ModelSpec, model: Any, rows: pd.DataFrame) -> Path | None:
        """Generators corrected and costed (drawn where a generator has a density): the
        variational free energy against the exact one, the ESS fraction of reweighting and the
        acceptance of neural MCMC, ESS per second of every method, and the energy's |z|
        before and after correction. One colour per generator; solid raw, dashed
        ``+reweight``, dotted ``+mcmc``."""
        import matplotlib.pyplot as plt

        rows = rows[~_reconstructed(rows)]  # diagnostics, not samplers
        energy = rows[(rows["observable"] == "energy") & (rows["status"] != "failed")]
        free = rows[(rows["observable"] == "free_energy") & (rows["status"] != "failed")]
        if free.empty:
            return None
        bases = list(dict.fromkeys(str(m).split("+")[0] for m in rows["method"]))
        colours = {base: f"C{i % 10}" for i, base in enumerate(bases)}
        styles = {"": ("o", "-"), "reweight": ("s", "--"), "mcmc": ("^", ":")}

        def look(method: str) -> dict[str, Any]:
            base, _, correction = method.partition("+")
            marker, line = styles.get(correction, ("o", "-"))
            return {"color": colours[base], "marker": marker, "ls": line, "ms": 3.5, "lw": 1.2}

        name = f"efficiency-{spec.label()}.png"
        figure, axes = plt.subplots(1, 4, figsize=(19, 4.6), squeeze=False)
        bound_axis, share_axis, rate_axis, z_axis = axes[0]
        exact = free.drop_duplicates("T").sort_values("T")
        if exact["exact"].notna().any():
            bound_axis.plot(exact["T"], exact["exact"], "k-", lw=2, alpha=0.4, label="exact F/N")
        for method in map(str, dict.fromkeys(free["method"])):
            group = free[free["method"] == method].sort_values("T")
            label = f"{method}: -T ln Z/N" if "+" in method else f"{method}: F_q (bound)"
            bound_axis.errorbar(
                group["T"], group["estimate"], yerr=group["stderr"], label=label, **look(method)
            )
        bound_axis.set(xlabel="T", ylabel="F / N", title="free energy: bound F_q >= F, and ln Z")
        for method in map(str, dict.fromkeys(energy["method"])):
            group = energy[energy["method"] == method].sort_values("T")
            style = look(method)
            if method.endswith("+reweight") and group["ess_fraction"].notna().any():
                share_axis.plot(
                    group["T"], group["ess_fraction"], label=f"{method}: ESS/n", **style
                )
            if method.endswith("+mcmc") and group["acceptance"].notna().any():
                share_axis.plot(
                    group["T"], group["acceptance"], label=f"{method}: acceptance", **style
                )
            if group["ess_per_second"].notna().any():
                rate_axis.plot(group["T"], group["ess_per_second"], label=method, **style)
            if group["z"].notna().any():
                z_axis.plot(group["T"], group["z"].astype(float).abs(), label=method, **style)
        share_axis.set(
            xlabel="T",
            ylabel="fraction",
            ylim=(0, 1.05),
            title="reweighting ESS/n; MCMC acceptance",
        )
        rate_axis.set(
            xlabel="T",
            ylabel="ESS of E per second",
            yscale="log",
            title="efficiency (training included)",
        )
        z_axis.axhline(4, color="grey", lw=0.8, ls="-.")
        z_axis.set(
            xlabel="T",
            ylabel="|z| of E / N",
            yscale="log",
            title="energy bias before/after correction (|z| = 4 dash-dot)",
        )
        for axis in axes[0]:
            _legend(axis, 6)
        figure.suptitle(
            f"{model.name} {model.size}: generators corrected and costed "
            "(solid raw, dashed +reweight, dotted +mcmc)",
            fontsize=10,
        )
        figure.tight_layout()
        path = self.folder / name
        figure.savefig(path, dpi=110)
        plt.close(figure)
        return path


def _draw(out: Path, folder: Path, grid: GridSpec, plan: Plan, table: pd.DataFrame) -> _Figures:
    import matplotlib

    matplotlib.use("Agg")
    figures = _Figures(out, folder)
    for spec in grid.models:
        model = plan.models[spec.label()]
        rows = table[
            (table["model"] == model.name)
            & (table["size"] == model.size)
            & (table["boundary"] == model.boundary)
            & (table["options"].fillna("") == model.options_label())
        ]
        if rows.empty:
            figures.problems.append(f"figure2-{spec.label()}.png: not drawn: no finished cells")
            continue
        figures.figure2(spec, model, rows)
        if len(model.shape) == 2 and model.is_discrete:
            figures.figure3(spec, model, rows)
        if "free_energy" in set(rows["observable"]):
            figures.efficiency(spec, model, rows)
    return figures


# ---------------------------------------------------------------------------- report.html
#: Provenance fields shown at the top of the HTML page's provenance section (all are in the
#: folded JSON below them).
PROVENANCE_FACTS = (
    ("spinbench", "spinbench"),
    ("created (UTC)", "created"),
    ("grid", "grid"),
    ("seed", "seed"),
    ("device", "device"),
    ("platform", "platform"),
    ("executor", "executor"),
    ("jax", "jax"),
    ("equinox", "equinox"),
    ("numpy", "numpy"),
    ("python", "python"),
    ("machine", "machine"),
    ("wall time of this invocation (s)", "wall_time_this_invocation"),
)


def _summary_class(row: Any) -> str:
    if row.get("failures"):
        return "failed"
    return "flagged" if row.get("flagged rows") else ""


def _provenance_facts(record: dict[str, Any]) -> list[tuple[str, Any]]:
    pairs = []
    for label, key in PROVENANCE_FACTS:
        value = record.get(key)
        if value is None:
            value = (record.get("settings") or {}).get(key)
        if value is not None and value != "":
            pairs.append((label, value))
    return pairs


def html_report(
    table: pd.DataFrame,
    figures: dict[str, list[tuple[Path, str]]],
    *,
    missing: list[str],
    total: int,
    problems: list[str],
    provenance: dict[str, Any] | None,
    title: str = "spinbench results",
) -> str:
    """The whole report.html: the sortable summary, failures and flagged rows with their
    reasons, the efficiency ranking, one section per model with its figures (``figures``:
    model label to ``(png, caption)`` pairs), and the provenance."""
    blocks: list[str] = []
    nav = [("summary", "Summary")]
    if missing:
        blocks.append(
            '<p class="badge bad">'
            + _html.escape(
                f"Partial run: {len(missing)} of {total} cells are missing "
                f"({', '.join(missing)}); run the grid again with the same --out to finish it."
            )
            + "</p>"
        )
    summary = _shown(summarise(table)) if len(table) else pd.DataFrame()
    blocks += [
        '<h2 id="summary">Summary</h2>',
        _html.paragraph(
            "One line per model and method; click a column header to sort. abs(z) = "
            "|estimate − exact| / stderr (mean over energy and correlation rows, worst over "
            "every row): below about 3 is consistent with the exact solution, inf is a zero "
            "error bar on a wrong value. Energy TV: total-variation distance of the energy "
            "histogram from the exact one (or the Monte Carlo reference), beside the noise "
            "floor of sampling alone. Red lines failed to run, yellow lines have flagged rows "
            "(listed below)."
        ),
        _html.table(summary, table_id="summary-table", row_class=_summary_class)
        if len(summary)
        else _html.paragraph("No finished cells."),
    ]
    failed = table[table["status"] == "failed"].drop_duplicates(
        ["model", "size", "boundary", "options", "method", "reason"]
    )
    flagged = flagged_rows(table)
    if len(failed) or flagged:
        nav.append(("problems", "Failures and flags"))
        blocks.append('<h2 id="problems">Failures and flagged rows</h2>')
    if len(failed):
        blocks += [
            f"<h3>Failed cells ({len(failed)})</h3>",
            _html.items(
                f"{row['model']} {row['size']} {row['method']}: {row['reason']}"
                for row in failed.to_dict(orient="records")
            ),
        ]
    if flagged:
        blocks += [
            f"<h3>Flagged rows ({len(flagged)}): results that cannot be trusted</h3>",
            _html.items(flagged),
        ]
    ranked = efficiency(table) if len(table) and "ess_per_second" in table else pd.DataFrame()
    if len(ranked):
        nav.append(("efficiency", "Efficiency"))
        blocks += [
            '<h2 id="efficiency">Efficiency: ESS of the energy per second</h2>',
            _html.paragraph(
                "Per temperature, the methods whose energy is consistent with the exact value "
                "(|z| < 4) and not flagged, best first, by effective samples of the energy per "
                "second of everything the row needed (training and the reference sampling that "
                "fed it included)."
            ),
            _html.table(
                _shown(ranked.sort_values(["model", "size", "T"], kind="stable")),
                table_id="efficiency-table",
            ),
        ]
    for index, (label, drawn) in enumerate(figures.items()):
        anchor = f"model-{index}"
        nav.append((anchor, label))
        blocks.append(f'<section class="model"><h2 id="{anchor}">{_html.escape(label)}</h2>')
        blocks += [_html.figure(path, caption) for path, caption in drawn]
        if not drawn:
            blocks.append(_html.paragraph("No figure drawn (see below)."))
        blocks.append("</section>")
    if problems:
        blocks += ["<h2>Not drawn</h2>", _html.items(problems)]
    nav.append(("provenance", "Provenance"))
    blocks.append('<h2 id="provenance">Provenance</h2>')
    if provenance is None:
        blocks.append(_html.paragraph("provenance.json is missing or unreadable."))
    else:
        blocks += [
            _html.facts(_provenance_facts(provenance)),
            _html.json_block("provenance.json (everything)", provenance),
        ]
    blocks.append(
        _html.paragraph(
            "Full table: results.csv / results.json; figures: figures/; summary.md: the same "
            "summary as text."
        )
    )
    return _html.page(title, blocks, nav=nav)


#: Captions of the figures of a model, by the start of their file name.
CAPTIONS = {
    "figure2": "Figure 2: energy per site and correlations against T, with the exact solution "
    "(lines); energy histograms at chosen temperatures.",
    "figure3": "Figure 3: one configuration per method, at T_c and above, whose energy is its "
    "method's mean energy.",
    "efficiency": "Generators corrected and costed: variational free energy against the exact "
    "one, reweighting ESS fraction and neural-MCMC acceptance, ESS per second, and the "
    "energy's |z| before and after correction.",
}


def _figures_by_model(grid: GridSpec, folder: Path) -> dict[str, list[tuple[Path, str]]]:
    by_model: dict[str, list[tuple[Path, str]]] = {}
    for spec in grid.models:
        drawn = []
        for prefix, caption in CAPTIONS.items():
            path = folder / f"{prefix}-{spec.label()}.png"
            if path.exists():
                drawn.append((path, caption))
        by_model[spec.label()] = drawn
    return by_model


def _read_provenance(folder: Path) -> dict[str, Any] | None:
    try:
        record = json.loads((folder / "provenance.json").read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def write_report(
    out: str | os.PathLike[str], *, plan: Plan | None = None, table: pd.DataFrame | None = None
) -> Report:
    """Rebuild summary.md, report.html and figures/ of a run folder from its cells and samples.

    A run passes its ``plan`` and ``table`` (every cell done); otherwise both are read from
    the folder. Raises :class:`ReportError` for a folder that is not a run or whose grid is
    damaged.
    """
    folder = Path(out)
    missing: list[str] = []
    if plan is None or table is None:
        plan, table, missing = load_run(folder)
    total = len(plan.method_cells())
    with atomic_directory(folder / "figures") as staging:
        figures = _draw(folder, staging, plan.spec, plan, table)
        names = sorted(p.name for p in staging.iterdir())
        page = html_report(
            table,
            _figures_by_model(plan.spec, staging),
            missing=missing,
            total=total,
            problems=figures.problems,
            provenance=_read_provenance(folder),
        )
    summary = write_text_atomic(
        folder / "summary.md", summary_text(table, missing, total, figures.problems)
    )
    html = write_text_atomic(folder / "report.html", page)
    return Report(
        summary=summary,
        html=html,
        figures=[folder / "figures" / name for name in names],
        missing_cells=missing,
        problems=figures.problems,
    )
