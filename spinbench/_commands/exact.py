"""``spinbench exact``: exact reference values of a model at a temperature grid."""

from __future__ import annotations

from typing import Any

import click
import numpy as np

from .common import build_model, emit, format_option, model_options

COLUMNS = ("model", "size", "boundary", "options", "T", "observable", "r", "exact", "source")
#: Columns of ``--energy-distribution``: one row per temperature and energy level.
DISTRIBUTION_COLUMNS = (
    "model",
    "size",
    "boundary",
    "options",
    "T",
    "energy",
    "energy_per_site",
    "probability",
)


def _base(model: Any) -> dict[str, Any]:
    return {
        "model": model.name,
        "size": model.size,
        "boundary": model.boundary,
        "options": model.options_label(),
    }


def exact_records(model: Any, temps: np.ndarray) -> list[dict[str, Any]]:
    """One record per (T, observable, r) of the model's exact solution (every observable it
    has exact values for, its own ``extra`` ones included)."""
    result = model.exact(temps)
    if result is None:
        return []
    records: list[dict[str, Any]] = []
    base = _base(model)
    for i, T in enumerate(result.temps):
        scalars = ("energy", "heat_capacity", "abs_magnetization", *sorted(result.extra), "ln_z")
        for observable in scalars:
            values = result.observable(observable)
            if values is None or not np.isfinite(values[i]):
                continue
            records.append(
                {
                    **base,
                    "T": float(T),
                    "observable": observable,
                    "r": None,
                    "exact": float(values[i]),
                    "source": result.source,
                }
            )
        if result.correlation is not None and result.distances is not None:
            for j, r in enumerate(result.distances):
                value = float(result.correlation[i, j])
                if np.isfinite(value):
                    records.append(
                        {
                            **base,
                            "T": float(T),
                            "observable": "correlation",
                            "r": int(r),
                            "exact": value,
                            "source": result.source,
                        }
                    )
    return records


def distribution_records(model: Any, temps: np.ndarray) -> list[dict[str, Any]]:
    """One record per temperature and energy level of the model's exact energy distribution
    (levels whose probability underflows float64 left out); none if it has no exact one."""
    distribution = model.exact_energy_distribution(temps)
    if distribution is None:
        return []
    base = _base(model)
    levels = np.asarray(distribution.levels, np.float64)
    return [
        {
            **base,
            "T": float(T),
            "energy": float(level),
            "energy_per_site": float(level) / model.n_sites,
            "probability": float(p),
        }
        for T, row in zip(temps, np.asarray(distribution.probabilities), strict=True)
        for level, p in zip(levels, row, strict=True)
        if p > 0
    ]


@click.command("exact")
@click.argument("model_name", metavar="MODEL")
@model_options
@click.option(
    "--energy-distribution",
    is_flag=True,
    help="Print the exact distribution of the total energy instead (one row per T and level; "
    "the 2D torus up to 64x64 by its exact density of states, small lattices by enumeration).",
)
@format_option()
def exact_command(
    model_name: str,
    size: str,
    temps: np.ndarray,
    boundary: str | None,
    J: float,
    model_option: dict[str, Any],
    energy_distribution: bool,
    output_format: str,
) -> None:
    """Exact energy, heat capacity, magnetisation and correlations of MODEL, or its exact
    energy distribution."""
    model = build_model(model_name, size, boundary, J, model_option)
    what = "energy distribution" if energy_distribution else "solution"
    collect = distribution_records if energy_distribution else exact_records
    try:
        records = collect(model, temps)
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    if not records:
        raise click.ClickException(
            f"no exact {what} is known for {model.name} of size {model.size}"
            + (f" ({model.options_label()})" if model.options_label() else "")
        )
    emit(records, output_format, DISTRIBUTION_COLUMNS if energy_distribution else COLUMNS)
