"""Wall time of one 12-cell grid with the LocalExecutor and with Dask on 1 and 2 local
worker processes, side by side in one run (``python benchmarks/dask_grid.py``).

Four models (one reference cell and two method cells each: Metropolis, which reuses the
reference, and a briefly trained dense VAE). Each configuration runs into a fresh folder, in
the order local, dask-1, dask-2, local again (the repeat shows the machine's drift). The tables
are compared too: every row must be equal across executors (timings aside).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pandas as pd

from spinbench.runner import (
    TIMING_COLUMNS,
    DaskExecutor,
    LocalExecutor,
    Runner,
    make_plan,
    parse_grid,
    read_table,
)

GRID = """
seed = 0
samples = 2000

[reference]
chains = 8
warmup = 500
sweeps = 4000
every = 4

[[models]]
name = "ising1d"
size = "32"
temps = "0.5:3.5:8"

[[models]]
name = "ising2d"
size = "8"
temps = "1.5:3.5:8"

[[models]]
name = "ising2d"
size = "12"
temps = "1.5:3.5:8"

[[models]]
name = "xy1d"
size = "16"
temps = "0.5:3.5:8"

[[methods]]
name = "metropolis"

[[methods]]
name = "dense-vae"
epochs = 30
likelihood = "auto"
"""


def main() -> None:
    spec = parse_grid(GRID, "dask_grid.py")
    runs = [
        ("local", LocalExecutor),
        ("dask, 1 worker", lambda: DaskExecutor(workers=1)),
        ("dask, 2 workers", lambda: DaskExecutor(workers=2)),
        ("local (again)", LocalExecutor),
    ]
    times: dict[str, float] = {}
    tables: dict[str, pd.DataFrame] = {}
    with tempfile.TemporaryDirectory() as folder:
        for index, (name, make) in enumerate(runs):
            out = Path(folder) / f"run{index}"
            start = time.perf_counter()
            Runner(spec, out, executor=make(), progress=False).run()
            times[name] = time.perf_counter() - start
            tables[name] = read_table(out / "results.csv").drop(columns=list(TIMING_COLUMNS))
            print(f"{name}: {times[name]:.1f} s", flush=True)
    first = tables["local"]
    same = all(table.equals(first) for table in tables.values())
    cells = len(make_plan(spec).cells)
    print(f"\n{cells} cells; identical tables across executors: {same}")
    print("| executor | wall time (s) | vs local |")
    print("|---|---|---|")
    for name, seconds in times.items():
        print(f"| {name} | {seconds:.1f} | {times['local'] / seconds:.2f}x |")


if __name__ == "__main__":
    main()
