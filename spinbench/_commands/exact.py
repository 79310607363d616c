"""``spinbench exact``: exact reference values of a model at a temperature grid."""

from __future__ import annotations

from typing import Any

import click
import numpy as np

from .common import build_model, emit, format_option, model_options

COLUMNS = ("model", "size", "boundary", "options", "T", "observable", "r", "exact", "source")


def exact_records(model: Any, temps: np.ndarray) -> list[dict[str, Any]]:
    """One record per (T, observable, r) of the model's exact solution (every observable it
    has exact values for, its own ``extra`` ones included)."""
    result = model.exact(temps)
    if result is None:
        return []
    records: list[dict[str, Any]] = []
    base = {
        "model": model.name,
        "size": model.size,
        "boundary": model.boundary,
        "options": model.options_label(),
    }
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


@click.command("exact")
@click.argument("model_name", metavar="MODEL")
@model_options
@format_option()
def exact_command(
    model_name: str,
    size: str,
    temps: np.ndarray,
    boundary: str | None,
    J: float,
    model_option: dict[str, Any],
    output_format: str,
) -> None:
    """Exact energy, heat capacity, magnetisation and correlations of MODEL."""
    model = build_model(model_name, size, boundary, J, model_option)
    try:
        records = exact_records(model, temps)
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    if not records:
        raise click.ClickException(
            f"no exact solution is known for {model.name} of size {model.size}"
        )
    emit(records, output_format, COLUMNS)
