"""The runner: crosses models x methods x temperatures and writes one tidy table.

For each model of a grid: the exact reference per temperature (where one exists), the
reference sampler's configurations (cached), then every method — a sampler samples, a
generator trains on the reference configurations and generates — and every method's samples
go through the same observables, statistics and distances. Each (model, method) is a *cell*:
one jitted program per cell, vectorised over temperatures, its records written atomically to
``cells/<cell>.json``. A restarted run skips finished cells; a failed cell is recorded with
its reason and the run goes on.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import jax
import numpy as np
import pandas as pd

from .analysis import analyse
from .grid import GridSpec, MethodSpec, ModelSpec
from .metrics import compare_energy_histograms, state_kl
from .models.base import AbstractModel
from .provenance import provenance
from .registry import get_method, get_model, get_sampler
from .samplers.base import options_of
from .samples import Samples, cached

#: Columns of results.csv / results.json, in order.
COLUMNS = (
    "model",
    "size",
    "boundary",
    "method",
    "T",
    "observable",
    "r",
    "estimate",
    "stderr",
    "tau_int",
    "ess",
    "rhat",
    "exact",
    "abs_error",
    "rel_error",
    "z",
    "reference",
    "noise_floor",
    "status",
    "reason",
    "wall_time",
)


@dataclass(frozen=True)
class Cell:
    """One (model, method) pair of a grid."""

    model: ModelSpec
    method: MethodSpec

    @property
    def id(self) -> str:
        """A file-name-safe id, e.g. ``ising2d-10-vae``."""
        return f"{self.model.label()}-{self.method.name}"


class Executor(Protocol):
    """Runs cells; local by default, a distributed engine for clusters."""

    def map(self, function: Callable[[Cell], Any], cells: Iterable[Cell]) -> Iterator[Any]:
        """Apply ``function`` to each cell, yielding results in order."""
        ...


class LocalExecutor:
    """Runs cells one after the other in this process (each cell is already vectorised)."""

    def map(self, function: Callable[[Cell], Any], cells: Iterable[Cell]) -> Iterator[Any]:
        for cell in cells:
            yield function(cell)


def plan(spec: GridSpec) -> list[Cell]:
    """Every cell of a grid, in grid order."""
    return [Cell(model, method) for model in spec.models for method in spec.methods_for(model)]


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def cell_key(seed: int, label: str) -> jax.Array:
    """A key fixed by the grid seed and a label, independent of run order and resumption."""
    return jax.random.fold_in(jax.random.key(seed), _stable_int(label))


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON so that readers see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(payload, stream, indent=1, default=_json_default, allow_nan=False)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


class Runner:
    """Runs a grid into an output folder (see the module docstring)."""

    def __init__(
        self,
        spec: GridSpec,
        out: str | os.PathLike[str],
        *,
        executor: Executor | None = None,
        progress: bool = True,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.spec = spec
        self.out = Path(out)
        self.executor = executor or LocalExecutor()
        self.progress = progress
        self.log = log or (lambda message: None)
        self._models: dict[str, AbstractModel] = {}
        self._references: dict[str, tuple[Samples, float]] = {}

    # ------------------------------------------------------------------ folders
    def cell_path(self, cell: Cell) -> Path:
        return self.out / "cells" / f"{cell.id}.json"

    def samples_path(self, cell: Cell) -> Path:
        return self.out / "samples" / cell.id

    # ------------------------------------------------------------------ pieces
    def model(self, spec: ModelSpec) -> AbstractModel:
        """The model instance of a grid entry (built once)."""
        if spec.label() not in self._models:
            cls = get_model(spec.name)
            self._models[spec.label()] = cls.from_size(  # type: ignore[attr-defined]
                spec.size, boundary=spec.boundary, J=spec.J
            )
        return self._models[spec.label()]

    def reference(self, spec: ModelSpec) -> tuple[Samples, float]:
        """The reference sampler's configurations for a model (cached on disk) and the
        wall time it took to make them (0 when they came from the cache)."""
        label = spec.label()
        if label not in self._references:
            model = self.model(spec)
            sampler_cls = get_sampler(self.spec.reference.sampler)
            sampler = sampler_cls.from_options(**self.spec.reference.options)  # type: ignore[attr-defined]
            key = cell_key(self.spec.seed, f"reference:{label}")
            start = time.perf_counter()

            def produce() -> Samples:
                return sampler.sample(
                    model, spec.temps, key=key, seed=self.spec.seed, progress=self.progress
                )

            samples, _ = cached(
                self.out / "cache",
                model.describe(),
                spec.temps,
                sampler.name,
                sampler.settings(),
                self.spec.seed,
                produce,
            )
            self._references[label] = (samples, time.perf_counter() - start)
        return self._references[label]

    def method_samples(self, cell: Cell) -> tuple[Samples, list[dict[str, Any]]]:
        """Samples of a cell's method and records of temperatures that failed (diverged)."""
        model = self.model(cell.model)
        entry = get_method(cell.method.name)
        key = cell_key(self.spec.seed, cell.id)
        reference, _ = self.reference(cell.model)
        if entry.kind == "samplers":
            reference_name = self.spec.reference.sampler
            if cell.method.name == reference_name and not cell.method.options:
                return reference, []
            # The reference's run length (chains, sweeps, ...) carries over where this
            # sampler has such options; options of the reference sampler alone do not.
            accepted = options_of(entry.cls)
            shared = {k: v for k, v in self.spec.reference.options.items() if k in accepted}
            sampler = entry.cls.from_options(**{**shared, **cell.method.options})  # type: ignore[attr-defined]
            reason = sampler.supports(model)
            if reason:
                raise ValueError(reason)
            samples = sampler.sample(
                model, cell.model.temps, key=key, seed=self.spec.seed, progress=self.progress
            )
            return samples, []
        generator = entry.cls.from_options(**cell.method.options)  # type: ignore[attr-defined]
        reason = generator.supports(model)
        if reason:
            raise ValueError(reason)
        fit_key, generate_key = jax.random.split(key)
        trained = generator.fit(model, reference, key=fit_key)
        samples = trained.generate(self.spec.samples, key=generate_key, seed=self.spec.seed)
        failures = [
            {"T": f["T"], "status": f["status"], "reason": f["reason"]}
            for f in trained.failure_records()
        ]
        return samples, failures

    # ------------------------------------------------------------------ one cell
    def run_cell(self, cell: Cell) -> dict[str, Any]:
        """Run one cell and write its records; returns the cell payload."""
        start = time.perf_counter()
        model = self.model(cell.model)
        base = {
            "model": model.name,
            "size": model.size,
            "boundary": model.boundary,
            "method": cell.method.name,
        }
        try:
            samples, failures = self.method_samples(cell)
            failed_temps = {f["T"] for f in failures}
            exact = model.exact(cell.model.temps)
            records = [
                r for r in analyse(model, samples, exact=exact) if float(r["T"]) not in failed_temps
            ]
            records += self.distance_records(cell, model, samples, failed_temps)
            wall = time.perf_counter() - start
            if cell.method.name == self.spec.reference.sampler and not cell.method.options:
                wall += self.reference(cell.model)[1]
            rows = [self._row(base, r, wall) for r in records]
            rows += [self._row(base, {"observable": "energy", **f}, wall) for f in failures]
            samples.save(self.samples_path(cell))
            payload = {"cell": cell.id, "status": "ok", "wall_time": wall, "rows": rows}
            if failures:
                payload["status"] = "partial" if records else "failed"
        except Exception as error:  # a failed cell is recorded, the run goes on
            wall = time.perf_counter() - start
            reason = f"{type(error).__name__}: {error}"
            self.log(f"cell {cell.id} failed: {reason}")
            row = self._row(
                base, {"T": None, "observable": None, "status": "failed", "reason": reason}, wall
            )
            payload = {
                "cell": cell.id,
                "status": "failed",
                "reason": reason,
                "traceback": traceback.format_exc(),
                "wall_time": wall,
                "rows": [row],
            }
        write_json_atomic(self.cell_path(cell), payload)
        return payload

    @staticmethod
    def _row(base: dict[str, Any], record: dict[str, Any], wall: float) -> dict[str, Any]:
        row: dict[str, Any] = dict.fromkeys(COLUMNS)
        row.update(base)
        row.update({k: _finite_or_none(v) for k, v in record.items() if k in COLUMNS})
        row["status"] = record.get("status", "ok")
        row["wall_time"] = wall
        exact, estimate = row.get("exact"), row.get("estimate")
        if row.get("reference") is None and exact is not None:
            row["reference"] = "exact"
        if exact is not None and estimate is not None:
            row["abs_error"] = abs(estimate - exact)
            row["rel_error"] = abs(estimate - exact) / abs(exact) if exact != 0 else None
        return row

    def distance_records(
        self, cell: Cell, model: AbstractModel, samples: Samples, skip: set[float]
    ) -> list[dict[str, Any]]:
        """Energy-histogram distances (TV, KL) against the exact distribution or the MC
        reference, with the reference's noise floor; exact state KL where enumerable."""
        temps = cell.model.temps
        energies = _energies(model, samples)
        exact_distribution = model.exact_energy_distribution(temps)
        is_reference = cell.method.name == self.spec.reference.sampler
        reference_energies = None
        if exact_distribution is None:
            if is_reference:
                return []  # the MC reference compared with itself says nothing
            reference_energies = _energies(model, self.reference(cell.model)[0])
        records: list[dict[str, Any]] = []
        comparison = compare_energy_histograms(
            energies, exact=exact_distribution, reference=reference_energies, n_sites=model.n_sites
        )
        kl = state_kl(model, samples, temps)
        for index, T in enumerate(temps):
            if float(T) in skip:
                continue
            for name in ("energy_tv", "energy_kl"):
                records.append(
                    {
                        "T": float(T),
                        "observable": name,
                        "estimate": comparison[name][index],
                        "noise_floor": comparison[f"{name}_floor"][index],
                        "reference": comparison["reference"],
                    }
                )
            if kl is not None:
                records.append(
                    {
                        "T": float(T),
                        "observable": "state_kl",
                        "estimate": kl["kl"][index],
                        "noise_floor": kl["floor"][index],
                        "reference": "exact",
                    }
                )
        return records

    # ------------------------------------------------------------------ the grid
    def run(self) -> pd.DataFrame:
        """Run every unfinished cell, then write the table, summary and figures."""
        from tqdm.auto import tqdm

        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "grid.toml").write_text(self.spec.text)
        cells = plan(self.spec)
        todo = [c for c in cells if not self.cell_path(c).exists()]
        if len(todo) < len(cells):
            self.log(f"resuming: {len(cells) - len(todo)} of {len(cells)} cells already done")
        start = time.perf_counter()
        bar = tqdm(total=len(todo), desc="cells", unit="cell", disable=not self.progress)
        with bar:
            for payload in self.executor.map(self._run_and_tick(bar, todo), todo):
                self.log(
                    f"cell {payload['cell']}: {payload['status']} ({payload['wall_time']:.1f} s)"
                )
        table = collect(self.out)
        self.write_results(table, time.perf_counter() - start)
        return table

    def _run_and_tick(self, bar: Any, todo: list[Cell]) -> Callable[[Cell], dict[str, Any]]:
        """Run a cell, tick the bar, and let go of a model's reference samples once its last
        cell is done (they stay in the on-disk cache), so a grid of many models holds one
        model's configurations at a time, not all of them."""
        pending = Counter(cell.model.label() for cell in todo)

        def run(cell: Cell) -> dict[str, Any]:
            bar.set_postfix_str(cell.id)
            payload = self.run_cell(cell)
            bar.update()
            label = cell.model.label()
            pending[label] -= 1
            if pending[label] <= 0:
                self._references.pop(label, None)
            return payload

        return run

    def write_results(self, table: pd.DataFrame, wall_time: float) -> None:
        """results.csv/json, provenance.json, summary.md and figures/."""
        from .report import write_report

        write_table(table, self.out)
        settings = {
            "grid": self.spec.source,
            "seed": self.spec.seed,
            "samples": self.spec.samples,
            "reference": {"sampler": self.spec.reference.sampler, **self.spec.reference.options},
            "models": [m.label() for m in self.spec.models],
            "methods": {m.name: m.options for m in self.spec.methods},
        }
        record = provenance(seed=self.spec.seed, settings=settings)
        record["wall_time_this_invocation"] = wall_time
        record["cell_wall_time_total"] = float(
            table.drop_duplicates(["model", "size", "method"])["wall_time"].sum()
        )
        write_json_atomic(self.out / "provenance.json", record)
        write_report(self.out)


def _energies(model: AbstractModel, samples: Samples) -> np.ndarray:
    """Total energies ``(temps, configurations)`` of a sample set, computed in chunks."""
    from .analysis import measure

    energy_per_site = measure(model, samples.states)["energy"]
    return np.asarray(energy_per_site, np.float64).reshape(energy_per_site.shape[0], -1) * (
        model.n_sites
    )


def collect(out: str | os.PathLike[str]) -> pd.DataFrame:
    """All cell records of an output folder as one tidy table."""
    rows: list[dict[str, Any]] = []
    for path in sorted((Path(out) / "cells").glob("*.json")):
        rows += json.loads(path.read_text())["rows"]
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    return table


def write_table(table: pd.DataFrame, out: str | os.PathLike[str]) -> None:
    """Write results.csv and results.json atomically (NaN as empty / null, never a number)."""
    out = Path(out)
    handle, staging = tempfile.mkstemp(prefix=".results.csv.", dir=out)
    os.close(handle)
    table.to_csv(staging, index=False)
    os.replace(staging, out / "results.csv")
    records = [
        {k: _finite_or_none(v) if not pd.isna(v) else None for k, v in row.items()}
        for row in table.to_dict(orient="records")
    ]
    write_json_atomic(out / "results.json", records)
