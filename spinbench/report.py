"""The report of a run: a markdown summary and the figures, rebuilt from the output folder.

``spinbench report DIR`` calls :func:`write_report`; it reads ``results.csv`` (or the cell
records), ``grid.toml`` and the saved samples, and writes ``summary.md`` and ``figures/``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .grid import GridSpec, ModelSpec, parse_grid
from .samples import Samples

#: Observables whose |z| enters the summary.
Z_OBSERVABLES = ("energy", "correlation")


def load_table(out: Path) -> pd.DataFrame:
    """results.csv of an output folder, or the cell records if it has not been written."""
    if (out / "results.csv").exists():
        return pd.read_csv(out / "results.csv")
    from .runner import collect

    return collect(out)


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """One line per (model, size, method): |z| mean and worst, relative errors, distances."""
    lines = []
    for (model, size, method), group in table.groupby(["model", "size", "method"], sort=False):
        ok = group[group["status"].isin(["ok"])]
        zs = ok[ok["observable"].isin(Z_OBSERVABLES)]["z"].astype(float).abs().dropna()
        energy = ok[ok["observable"] == "energy"]["rel_error"].astype(float).dropna()
        correlation = ok[ok["observable"] == "correlation"]["rel_error"].astype(float).dropna()
        tv = ok[ok["observable"] == "energy_tv"]
        failures = group[~group["status"].isin(["ok"])]
        lines.append(
            {
                "model": model,
                "size": size,
                "method": method,
                "mean abs(z)": zs.mean() if len(zs) else np.nan,
                "worst abs(z)": zs.max() if len(zs) else np.nan,
                "energy rel. error": energy.mean() if len(energy) else np.nan,
                "correlation rel. error": correlation.mean() if len(correlation) else np.nan,
                "energy TV": tv["estimate"].astype(float).mean() if len(tv) else np.nan,
                "TV noise floor": tv["noise_floor"].astype(float).mean() if len(tv) else np.nan,
                "wall time (s)": float(group["wall_time"].astype(float).max()),
                "failures": "; ".join(
                    str(reason) if pd.isna(T) else f"T={T}: {reason}"
                    for T, reason in zip(failures["T"], failures["reason"], strict=True)
                ),
            }
        )
    return pd.DataFrame(lines)


def _markdown(frame: pd.DataFrame) -> str:
    columns = list(frame.columns)
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in frame.itertuples(index=False):
        cells = []
        for value in row:
            if isinstance(value, float):
                cells.append("–" if not np.isfinite(value) else f"{value:.3g}")
            else:
                cells.append(str(value) if value not in (None, "") else "")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def write_summary(out: Path, table: pd.DataFrame) -> Path:
    """summary.md: the one-line-per-method table and how to read it."""
    summary = summarise(table)
    text = [
        "# spinbench results",
        "",
        "One line per model and method. abs(z) = |estimate - exact| / stderr over energy and",
        "correlation rows (values below about 3 are consistent with the exact solution);",
        "relative errors against the exact solution; energy TV is the total-variation distance",
        "of the energy histogram from the exact distribution (or the Monte Carlo reference),",
        "beside the noise floor that sampling alone gives at the same sample size.",
        "",
        _markdown(summary),
        "",
        "Full table: `results.csv` / `results.json`; figures: `figures/`;",
        "provenance: `provenance.json`.",
        "",
    ]
    path = out / "summary.md"
    path.write_text("\n".join(text))
    return path


def _grid(out: Path) -> GridSpec | None:
    path = out / "grid.toml"
    return parse_grid(path.read_text(), str(path)) if path.exists() else None


def _model_of(spec: ModelSpec) -> Any:
    from .registry import get_model

    return get_model(spec.name).from_size(spec.size, boundary=spec.boundary, J=spec.J)  # type: ignore[attr-defined]


def write_figures(out: Path, table: pd.DataFrame) -> list[Path]:
    """Figure 2 (per model) and Figure 3 (2D configurations) as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    grid = _grid(out)
    if grid is None:
        return []
    folder = out / "figures"
    folder.mkdir(exist_ok=True)
    written = []
    for spec in grid.models:
        model = _model_of(spec)
        rows = table[(table["model"] == model.name) & (table["size"] == model.size)]
        if rows.empty:
            continue
        written.append(_figure2(folder, out, spec, model, rows))
        if len(model.shape) == 2 and model.is_discrete:
            figure3 = _figure3(folder, out, spec, model, rows)
            if figure3 is not None:
                written.append(figure3)
    return written


def _method_samples(out: Path, spec: ModelSpec, method: str) -> Samples | None:
    path = out / "samples" / f"{spec.label()}-{method}"
    return Samples.load(path) if (path / "samples.json").exists() else None


def _figure2(out_folder: Path, out: Path, spec: ModelSpec, model: Any, rows: pd.DataFrame) -> Path:
    import matplotlib.pyplot as plt

    from .analysis import measure

    methods = list(dict.fromkeys(rows["method"]))
    hist_temps = list(spec.histogram_temps) or [float(spec.temps[len(spec.temps) // 2])]
    figure, axes = plt.subplots(
        1, 2 + len(hist_temps), figsize=(4.2 * (2 + len(hist_temps)), 3.8), squeeze=False
    )
    energy_axis, correlation_axis = axes[0, 0], axes[0, 1]
    dense = np.linspace(float(spec.temps.min()), float(spec.temps.max()), 200)
    exact = model.exact(dense)
    if exact is not None and exact.energy is not None:
        energy_axis.plot(dense, exact.energy, "g-", label=f"exact ({model.size})")
    if hasattr(model, "exact_infinite"):
        infinite = model.exact_infinite(dense)
        energy_axis.plot(dense, infinite.energy, "k:", label="exact (infinite lattice)")
    markers = "osD^vx+*"
    for index, method in enumerate(methods):
        ok = rows[(rows["method"] == method) & (rows["status"] == "ok")]
        energy = ok[ok["observable"] == "energy"].sort_values("T")
        energy_axis.errorbar(
            energy["T"],
            energy["estimate"],
            yerr=energy["stderr"],
            fmt=markers[index % 8],
            ms=4,
            capsize=2,
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
                color=f"C{index}",
                alpha=1.0 - 0.25 * (r - 1),
            )
    if exact is not None and exact.correlation is not None and exact.distances is not None:
        for j in range(min(3, len(exact.distances))):
            correlation_axis.plot(dense, exact.correlation[:, j], "g-", lw=1)
    energy_axis.set(xlabel="T", ylabel="E / N", title=f"{model.name} {model.size}: energy")
    correlation_axis.set(xlabel="T", ylabel="<s_i s_i+r>", title="correlation, r = 1, 2, 3")
    energy_axis.legend(fontsize=7)
    correlation_axis.legend(fontsize=6)
    for axis, T in zip(axes[0, 2:], hist_temps, strict=True):
        index = int(np.argmin(np.abs(spec.temps - T)))
        T_used = float(spec.temps[index])
        for m_index, method in enumerate(methods):
            samples = _method_samples(out, spec, method)
            if samples is None:
                continue
            energies = np.asarray(measure(model, samples.states[index : index + 1])["energy"])
            axis.hist(
                energies.ravel(),
                bins=30,
                density=True,
                histtype="step",
                color=f"C{m_index}",
                label=method,
            )
        axis.set(xlabel="E / N", ylabel="density", title=f"energy histogram, T = {T_used:.3g}")
        axis.legend(fontsize=7)
    figure.tight_layout()
    path = out_folder / f"figure2-{spec.label()}.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _figure3(
    out_folder: Path, out: Path, spec: ModelSpec, model: Any, rows: pd.DataFrame
) -> Path | None:
    """Configurations at T_c and above, each with energy equal to its method's mean energy."""
    import matplotlib.pyplot as plt

    from .analysis import measure

    critical = model.critical_temperature or float(np.median(spec.temps))
    at_tc = int(np.argmin(np.abs(spec.temps - critical)))
    above = [i for i, T in enumerate(spec.temps) if critical * 1.15 < T]
    columns = [at_tc] + ([above[0]] if above else [])
    methods = [m for m in dict.fromkeys(rows["method"]) if _method_samples(out, spec, m)]
    if not methods:
        return None
    figure, axes = plt.subplots(
        len(methods),
        len(columns),
        figsize=(2.6 * len(columns), 2.6 * len(methods)),
        squeeze=False,
    )
    for i, method in enumerate(methods):
        samples = _method_samples(out, spec, method)
        assert samples is not None
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
    path = out_folder / f"figure3-{spec.label()}.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def write_report(out: str | os.PathLike[str]) -> dict[str, Any]:
    """Rebuild summary.md and figures/ of an output folder from its table and samples."""
    folder = Path(out)
    table = load_table(folder)
    summary = write_summary(folder, table)
    figures = write_figures(folder, table)
    return {"summary": summary, "figures": figures}
