"""Markdown tables of a run near T_c (the ``critical`` presets), as in docs/results-critical.md.

    python benchmarks/critical_tables.py RUN_FOLDER [--model ising2d] [--size 16]

Reads ``RUN_FOLDER/results.csv`` and prints, per lattice size:

* the energy per site of every method at every temperature: |z| against the exact value,
  τ_int (in measurements, or MCMC steps), ESS fraction (reweighting), acceptance (neural
  MCMC), ESS per second of wall time (training included) and the row's status;
* the free energy: the variational bound F_q of each raw generator with a density and the
  reweighted estimate, as relative errors |F_est - F| / |F| against Kaufman's exact F.
"""

from __future__ import annotations

import argparse
import math

import pandas as pd


def _number(value: float, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e4 or magnitude < 1e-2:
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}"


def energy_table(table: pd.DataFrame) -> str:
    rows = table[table["observable"] == "energy"].sort_values(["method", "T"])
    lines = [
        "| method | T | \\|z\\| | τ_int | ESS/n | acceptance | ESS/s | status |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for _, row in rows.iterrows():
        lines.append(
            f"| {row['method']} | {row['T']:.4g} | {_number(abs(row['z']))} | "
            f"{_number(row['tau_int'])} | {_number(row['ess_fraction'])} | "
            f"{_number(row['acceptance'])} | {_number(row['ess_per_second'])} | {row['status']} |"
        )
    return "\n".join(lines)


def free_energy_table(table: pd.DataFrame) -> str:
    rows = table[table["observable"] == "free_energy"]
    if rows.empty:
        return "(no free-energy rows)"
    pivot = rows.pivot_table(index="T", columns="method", values="rel_error", aggfunc="first")
    methods = list(pivot.columns)
    lines = [
        "| T | " + " | ".join(f"{m} \\|ΔF\\|/\\|F\\|" for m in methods) + " |",
        "|---|" + "---|" * len(methods),
    ]
    for T, values in pivot.iterrows():
        cells = " | ".join(_number(abs(values[m])) for m in methods)
        lines.append(f"| {T:.4g} | {cells} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a run folder (holding results.csv)")
    parser.add_argument("--model", default="ising2d")
    parser.add_argument("--size", default=None, help="one size (default: every size)")
    args = parser.parse_args()
    table = pd.read_csv(f"{args.run}/results.csv")
    table = table[table["model"] == args.model]
    sizes = [args.size] if args.size else sorted(table["size"].astype(str).unique())
    for size in sizes:
        part = table[table["size"].astype(str) == size]
        print(f"### {args.model} {size}: energy per site\n")
        print(energy_table(part))
        print(f"\n### {args.model} {size}: free energy, relative error against the exact F\n")
        print(free_energy_table(part))
        print()


if __name__ == "__main__":
    main()
