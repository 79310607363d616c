"""Accuracy and statistical efficiency of the ``quick`` preset, tracked across commits.

The preset (Ising1D N=6 and Ising2D 4x4 against exact solutions; Metropolis, VAE, AVB) runs
once per benchmark process in ``setup_cache``; the ``track_*`` benchmarks read its table:
the largest energy |z| (``|estimate - exact| / stderr``) and relative error over the
temperatures of each (model, method) cell, and the effective samples of the energy per second
of the cell's wall time (all temperatures together; for a generator that includes training).
A change of sampler or generator that loses accuracy shows up here even when it gains speed.
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


def _energy(table: Any, cell: str) -> Any:
    model, size, method = cell.split()
    rows = table[
        (table["model"] == model)
        & (table["size"] == size)
        & (table["method"] == method)
        & (table["observable"] == "energy")
        & (table["status"] == "ok")
    ]
    if rows.empty:
        raise ValueError(f"the quick preset has no energy rows for {cell}")
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
