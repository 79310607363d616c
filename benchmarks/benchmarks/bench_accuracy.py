"""Accuracy and statistical efficiency of the ``quick`` preset, tracked across commits.

The preset (Ising1D N=6 and Ising2D 4x4 against exact solutions; Metropolis, VAE, AVB) runs
once per benchmark process in ``setup_cache``; the ``track_*`` benchmarks read its table:
the largest energy |z| (``|estimate - exact| / stderr``) and relative error over the
temperatures of each (model, method) cell, and the effective samples of the energy per second
of the cell's wall time (all temperatures together; for a generator that includes training).
A change of sampler or generator that loses accuracy shows up here even when it gains speed.

``CorrectedAccuracy`` does the same for the corrected rows: a small grid (Ising1D N=6, the
VAE and AVB with a Bernoulli likelihood, raw, ``+reweight`` and ``+mcmc``) tracks each row
kind's energy |z|, relative error and median ESS of the energy per second (the table's
``ess_per_second``: training and the reference sampling that fed it included), so
``asv publish`` shows accuracy and efficiency beside speed.
"""

from __future__ import annotations

from typing import Any, ClassVar

#: (model size, method) cells of the quick preset.
CELLS = [
    "ising1d 6 metropolis",
    "ising1d 6 vae",
    "ising1d 6 avb",
    "ising2d 4x4 metropolis",
    "ising2d 4x4 vae",
]


def run_quick_preset() -> Any:
    """The quick preset's results table (pandas), run into a temporary folder."""
    import tempfile

    from spinbench.runner import Runner, load_preset

    with tempfile.TemporaryDirectory() as out:
        return Runner(load_preset("quick"), out, progress=False).run()


def _energy(table: Any, cell: str, *, flagged: bool = False) -> Any:
    """The energy rows of a (model size method) cell: trusted ones only, or (``flagged``)
    every row that was computed, flagged or not (a corrected row may be flagged for R-hat)."""
    model, size, method = cell.split()
    rows = table[
        (table["model"] == model)
        & (table["size"] == size)
        & (table["method"] == method)
        & (table["observable"] == "energy")
        & ((table["status"] != "failed") if flagged else (table["status"] == "ok"))
    ]
    if rows.empty:
        raise ValueError(f"the grid has no energy rows for {cell}")
    return rows


class QuickPresetAccuracy:
    """Energy accuracy and ESS per second of each cell of the quick preset."""

    params = (CELLS,)
    param_names: ClassVar[list[str]] = ["cell"]
    timeout = 900.0

    def setup_cache(self) -> Any:
        table = run_quick_preset()
        return table[table["observable"] == "energy"].reset_index(drop=True)

    def track_energy_max_abs_z(self, table: Any, cell: str) -> float:
        return float(_energy(table, cell)["z"].abs().max())

    track_energy_max_abs_z.unit = "|z| (stderr units)"  # type: ignore[attr-defined]

    def track_energy_max_rel_error(self, table: Any, cell: str) -> float:
        return float(_energy(table, cell)["rel_error"].abs().max())

    track_energy_max_rel_error.unit = "relative error"  # type: ignore[attr-defined]

    def track_energy_ess_per_second(self, table: Any, cell: str) -> float:
        rows = _energy(table, cell)
        return float(rows["ess"].sum() / rows["wall_time"].iloc[0])

    track_energy_ess_per_second.unit = "effective samples/s"  # type: ignore[attr-defined]

    def track_energy_median_ess_per_second(self, table: Any, cell: str) -> float:
        return float(_energy(table, cell)["ess_per_second"].median())

    track_energy_median_ess_per_second.unit = "effective samples/s"  # type: ignore[attr-defined]


#: A grid with corrected rows, small enough for a benchmark (about a minute on 2 cores).
CORRECTED_GRID = """
seed = 0
samples = 2000

[reference]
sampler = "metropolis"
chains = 10
warmup = 200
sweeps = 1000
every = 5

[[models]]
name = "ising1d"
size = "6"
boundary = "free"
temps = "0.5:3.5:4"
methods = ["metropolis", "vae", "avb"]

[[methods]]
name = "metropolis"

[[methods]]
name = "vae"
epochs = 60
likelihood = "bernoulli"
symmetrize = true
corrections = ["reweight", "mcmc"]

[[methods]]
name = "avb"
epochs = 150
likelihood = "bernoulli"
symmetrize = true
corrections = ["reweight", "mcmc"]
"""

#: (model size, method) cells of :data:`CORRECTED_GRID`, corrected rows included.
CORRECTED_CELLS = [
    "ising1d 6 metropolis",
    *(f"ising1d 6 {g}{c}" for g in ("vae", "avb") for c in ("", "+reweight", "+mcmc")),
]


class CorrectedAccuracy:
    """Energy accuracy and ESS per second of raw and corrected generator rows."""

    params = (CORRECTED_CELLS,)
    param_names: ClassVar[list[str]] = ["cell"]
    timeout = 900.0

    def setup_cache(self) -> Any:
        import tempfile

        from spinbench.runner import Runner, parse_grid

        with tempfile.TemporaryDirectory() as out:
            table = Runner(parse_grid(CORRECTED_GRID, "corrected"), out, progress=False).run()
        return table[table["observable"] == "energy"].reset_index(drop=True)

    def track_energy_max_abs_z(self, table: Any, cell: str) -> float:
        return float(_energy(table, cell, flagged=True)["z"].abs().max())

    track_energy_max_abs_z.unit = "|z| (stderr units)"  # type: ignore[attr-defined]

    def track_energy_max_rel_error(self, table: Any, cell: str) -> float:
        return float(_energy(table, cell, flagged=True)["rel_error"].abs().max())

    track_energy_max_rel_error.unit = "relative error"  # type: ignore[attr-defined]

    def track_energy_median_ess_per_second(self, table: Any, cell: str) -> float:
        return float(_energy(table, cell, flagged=True)["ess_per_second"].median())

    track_energy_median_ess_per_second.unit = "effective samples/s"  # type: ignore[attr-defined]


class QuickPresetRun:
    """The whole quick preset (every cell, report included): wall time and peak memory."""

    timeout = 900.0

    def peakmem_quick_preset(self) -> None:
        run_quick_preset()


class PaperPresetRun:
    """The whole ``paper`` preset (the README's main job): peak memory of the process.

    About 8 minutes on a 2-core CPU (most of it the Ising2D 10x10 VAE's training), so leave
    it out of quick runs with ``--bench "^(?!.*paper)"`` when in a hurry.
    """

    timeout = 3600.0

    def peakmem_paper_preset(self) -> None:
        import tempfile

        from spinbench.runner import Runner, load_preset

        with tempfile.TemporaryDirectory() as out:
            Runner(load_preset("paper"), out, progress=False).run()
