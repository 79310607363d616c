"""The runner: crosses models x methods x temperatures into one tidy table in a run folder.

:func:`~spinbench._plan.make_plan` checks the whole grid first; nothing is written before it
passes. Then, per model, the *reference cell* makes the reference sampler's configurations
(cached: the training data and the Monte Carlo baseline) and checks that they converged, and
every *method cell* runs its method — a sampler samples, a generator trains on the reference
configurations and generates — through the same observables, statistics and distances. One
jitted program per cell, vectorised over temperatures; each cell's record is written
atomically to the run folder (:mod:`spinbench._run_folder`), which decides what a restarted run
reuses: a cell whose digest is unchanged and that did not fail.

A cell that raises is recorded as ``failed`` with its reason and the run goes on; rows that
cannot be trusted carry a status other than ``ok`` (:func:`spinbench._analysis.flag`).
:class:`RunOutcome` says what went wrong, for the command's exit status.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import os
import shutil
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import jax
import numpy as np
import pandas as pd

from . import stats
from ._analysis import analyse, exact_where_known, measure, records_of, relative_error
from ._atomic import write_json_atomic
from ._grid import CORRECTIONS, GridSpec, is_reconstructed, parse_grid, reconstructed_label
from ._metrics import compare_energy_histograms, state_kl
from ._plan import Cell, Plan, make_plan
from ._report import write_report
from ._run_folder import CELL_FORMAT_VERSION, COLUMNS, RunFolder, flagged_rows
from ._samples import Samples, cached
from .corrections import NeuralMCMC, reweighted, variational_free_energy
from .exact import ExactResult
from .generators import TrainedGenerator
from .models._base import AbstractModel
from .provenance import provenance

__all__ = [
    "COLUMNS",
    "Cell",
    "CellJob",
    "Executor",
    "LocalExecutor",
    "MethodRun",
    "RunOutcome",
    "Runner",
    "cell_key",
]


class Executor(Protocol):
    """Runs cells; local by default (:class:`LocalExecutor`), Dask for clusters
    (:class:`~spinbench._dask.DaskExecutor`).

    ``cells`` come with each model's reference cell before its method cells; records are
    yielded as cells finish (in any order). An executor with ``in_process = False`` runs
    cells in other processes and gets a picklable ``function`` (a :class:`CellJob`), called
    with a cell id; one that runs them here gets
    a function of the cell.
    """

    def map(self, function: Callable[..., Any], cells: Iterable[Cell]) -> Iterator[Any]:
        """Apply ``function`` to each cell, yielding the records."""
        ...


class LocalExecutor:
    """Runs cells one after the other in this process (each cell is already vectorised)."""

    in_process = True

    def map(self, function: Callable[[Cell], Any], cells: Iterable[Cell]) -> Iterator[Any]:
        for cell in cells:
            yield function(cell)

    def describe(self) -> dict[str, Any]:
        """The executor, for provenance."""
        return {"executor": "local"}


@dataclass(frozen=True)
class CellJob:
    """What a worker process needs to run any cell of a grid: the grid's text and source and
    the output folder (small and picklable: arrays travel through the folder's cache)."""

    grid_text: str
    grid_source: str
    out: str

    def __call__(self, cell_id: str, reference: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run the cell ``cell_id`` in this process and write its record. ``reference`` is the
        record of its model's reference cell: a failed one makes the method cell fail with
        its reason, without sampling the reference again."""
        runner = runner_for(self)
        cell = next(c for c in runner.plan.cells if c.id == cell_id)
        if cell.kind == "reference":
            try:
                return runner.run_reference(cell)
            finally:
                runner._references.pop(cell.label, None)
        if reference is not None and reference.get("status") == "failed":
            runner._reference_failures[cell.label] = str(reference.get("reason"))
        else:  # a worker serves many runs: an earlier run's failure is not this one's
            runner._reference_failures.pop(cell.label, None)
        try:
            return runner.run_cell(cell)
        finally:
            runner._references.pop(cell.label, None)  # kept on disk, not in the worker


@functools.lru_cache(maxsize=4)
def runner_for(job: CellJob) -> Runner:
    """One Runner (its checked plan) per grid and process."""
    return Runner(parse_grid(job.grid_text, job.grid_source), job.out, progress=False)


def run_job(job: CellJob, cell_id: str, reference: dict[str, Any] | None = None) -> dict[str, Any]:
    """``job(cell_id, reference)``: a module-level function, for task graphs."""
    return job(cell_id, reference)


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def cell_key(seed: int, label: str) -> jax.Array:
    """A key fixed by the grid seed and a label, independent of run order and resumption."""
    return jax.random.fold_in(jax.random.key(seed), _stable_int(label))


@dataclass
class MethodRun:
    """What a method cell's method made: its samples, failed temperatures' records, the
    trained generator (generators only) and the seconds spent training (the reference
    sampling that made the training data included, unless it trained without data) and
    sampling."""

    samples: Samples
    failures: list[dict[str, Any]] = field(default_factory=list)
    trained: TrainedGenerator | None = None
    train_time: float = 0.0
    sample_time: float = 0.0

    @property
    def failed_temps(self) -> set[float]:
        """Temperatures whose training failed (their rows are the failure records)."""
        return {f["T"] for f in self.failures}


def mcmc_run_length(spec: GridSpec) -> dict[str, int]:
    """The neural MCMC's run length in a grid: ``samples`` configurations per temperature,
    as 10 chains of ``samples // 10`` steps after a tenth as many warm-up steps."""
    chains = 10
    sweeps = max(1, spec.samples // chains)
    return {"chains": chains, "warmup": max(10, sweeps // 10), "sweeps": sweeps, "every": 1}


def _ess_per_second(rows: list[dict[str, Any]], n_temps: int) -> None:
    """Set ``ess_per_second`` on a method label's rows: at each temperature, the ESS of its
    energy row over that temperature's share (1 / n_temps: one program serves them all) of
    the training and sampling time."""
    seconds = {
        row["T"]: ((row["train_time"] or 0.0) + (row["sample_time"] or 0.0)) / n_temps
        for row in rows
    }
    ess = {row["T"]: row["ess"] for row in rows if row["observable"] == "energy" and row["ess"]}
    for row in rows:
        if row["T"] in ess and seconds[row["T"]] > 0:
            row["ess_per_second"] = float(ess[row["T"]]) / seconds[row["T"]]


@dataclass
class RunOutcome:
    """What a finished run found: cells that failed to run, models whose Monte Carlo
    reference cannot be trusted, and rows flagged as results that cannot be trusted."""

    failed: list[str] = field(default_factory=list)
    reference_flags: list[str] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)

    def exit_code(self, *, strict: bool = False) -> int:
        """1 when a cell failed or a reference is flagged (or, with ``strict``, any row is
        flagged), else 0."""
        if self.failed or self.reference_flags or (strict and self.flagged):
            return 1
        return 0


def _number(value: Any) -> Any:
    """A plain number for a table cell: numpy scalars as Python ones, NaN as None (blank);
    infinities stay (written ``inf``)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def _accepts(function: Callable[..., Any], keyword: str) -> bool:
    parameters = inspect.signature(function).parameters.values()
    return any(p.name == keyword or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


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
        force: bool = False,
    ) -> None:
        self.spec = spec
        self.folder = RunFolder(out)
        self.out = self.folder.path
        self.executor = executor or LocalExecutor()
        self.progress = progress
        self.log = log or (lambda message: None)
        self.force = force
        self.outcome = RunOutcome()
        self._plan: Plan | None = None
        self._references: dict[str, Samples] = {}
        self._reference_failures: dict[str, str] = {}

    @property
    def plan(self) -> Plan:
        """The checked grid (built on first use; raises GridError listing every problem)."""
        if self._plan is None:
            self._plan = make_plan(self.spec)
        return self._plan

    # ------------------------------------------------------------------ references
    def reference(self, label: str) -> Samples:
        """The reference configurations of the model labelled ``label`` (cached on disk)."""
        if label in self._reference_failures:
            raise RuntimeError(
                f"the reference samples could not be made: {self._reference_failures[label]}"
            )
        if label not in self._references:
            self._references[label] = self._sample_reference(label, f"reference:{label}")
        return self._references[label]

    def run_reference(self, cell: Cell) -> dict[str, Any]:
        """Make (or load) a model's reference configurations and check their convergence."""
        start = time.perf_counter()
        model = self.plan.model(cell)
        record: dict[str, Any] = {
            "format": CELL_FORMAT_VERSION,
            "cell": cell.id,
            "kind": "reference",
            "digest": cell.digest,
        }
        try:
            samples = self.reference(cell.label)
            flagged = [
                r
                for r in analyse(model, samples, exact=exact_where_known(model, cell.model.temps))
                if r["status"] != "ok"
            ]
            record["status"] = "flagged" if flagged else "ok"
            record["reason"] = (
                None
                if not flagged
                else "; ".join(
                    f"T={r['T']:g} {r['observable']}{'' if r['r'] is None else ' r=' + str(r['r'])}"
                    f": {r['reason']}"
                    for r in flagged[:3]
                )
                + (f"; and {len(flagged) - 3} more rows" if len(flagged) > 3 else "")
            )
        except Exception as error:  # recorded; the cells that need it fail with the reason
            reason = f"{type(error).__name__}: {error}"
            self._reference_failures[cell.label] = reason
            self.log(f"reference of {cell.label} failed: {reason}")
            record.update(status="failed", reason=reason, traceback=traceback.format_exc())
        record["wall_time"] = time.perf_counter() - start
        self.folder.write_cell(cell.id, record, reference=True)
        return record

    # ------------------------------------------------------------------ method cells
    def method_samples(self, cell: Cell) -> MethodRun:
        """Run a cell's method: its samples, the records of temperatures that failed
        (diverged), the trained generator (for corrections) and what it cost."""
        plan = self.plan
        model = plan.model(cell)
        method = plan.method(cell)
        key = cell_key(self.spec.seed, cell.id)
        if plan.reuses_reference(cell):
            return MethodRun(self.reference(cell.label), sample_time=self._reference_wall(cell))
        if plan.kinds[method.name] == "samplers":
            start = time.perf_counter()
            samples = method.sample(
                model, cell.model.temps, key=key, seed=self.spec.seed, progress=self.progress
            )
            return MethodRun(samples, sample_time=time.perf_counter() - start)
        reference = self.reference(cell.label)
        fit_key, generate_key = jax.random.split(key)
        extra = {"progress": self.progress} if _accepts(method.fit, "progress") else {}
        start = time.perf_counter()
        trained = method.fit(model, reference, key=fit_key, **extra)
        jax.block_until_ready(trained.params)
        fitted = time.perf_counter()
        density = method.density_problem(model) is None
        samples = trained.generate(
            self.spec.samples, key=generate_key, seed=self.spec.seed, density=density
        )
        failures = [
            {"T": f["T"], "status": f["status"], "reason": f["reason"]}
            for f in trained.failure_records()
        ]
        # Data-free (variational) training did not need the reference configurations.
        variational = trained.info.get("training") == "variational"
        data_time = 0.0 if variational else self._reference_wall(cell)
        return MethodRun(
            samples,
            failures,
            trained,
            train_time=data_time + fitted - start,
            sample_time=time.perf_counter() - fitted,
        )

    def run_cell(self, cell: Cell) -> dict[str, Any]:
        """Run one method cell and write its record; returns the record."""
        start = time.perf_counter()
        plan = self.plan
        model = plan.model(cell)
        assert cell.method is not None
        base = _row_base(model, cell.method.name)
        record: dict[str, Any] = {
            "format": CELL_FORMAT_VERSION,
            "cell": cell.id,
            "kind": "method",
            "digest": cell.digest,
        }
        extra_samples: dict[str, Samples] = {}
        run: MethodRun | None = None
        try:
            run = self.method_samples(cell)
            samples = run.samples
            failed_temps = run.failed_temps
            exact = exact_where_known(model, cell.model.temps)
            records = analyse(model, samples, exact=exact)
            if "log_q" in samples.info:
                records += variational_free_energy(model, samples, exact)
            records += self.distance_records(cell, model, samples, failed_temps)
            labelled = {cell.method.name: (records, run.train_time, run.sample_time)}
            if run.trained is not None:
                labelled.update(self.corrections(cell, model, run, exact, extra_samples))
                if cell.method.reconstructed:
                    labelled.update(self.reconstructions(cell, model, run, exact))
            wall = time.perf_counter() - start
            if plan.reuses_reference(cell):
                wall += run.sample_time
            rows = []
            for label, (label_records, train_time, sample_time) in labelled.items():
                kept = [r for r in label_records if r.get("T") not in failed_temps]
                costs = {"train_time": train_time, "sample_time": sample_time}
                label_rows = [
                    self._row({**base, "method": label}, {**r, **costs}, wall, model.J)
                    for r in kept
                ]
                if not is_reconstructed(label):  # diagnostics: never ranked by ESS/s
                    _ess_per_second(label_rows, len(cell.model.temps))
                rows += label_rows
                rows += [
                    self._row(
                        {**base, "method": label}, {"observable": "energy", **f}, wall, model.J
                    )
                    for f in run.failures
                ]
            flagged = any(row["status"] != "ok" for row in rows)
            record.update(status="flagged" if flagged else "ok", wall_time=wall, rows=rows)
        except Exception as error:  # a failed cell is recorded, the run goes on
            wall = time.perf_counter() - start
            reason = f"{type(error).__name__}: {error}"
            self.log(f"cell {cell.id} failed: {reason}")
            failure = {"T": None, "observable": None, "status": "failed", "reason": reason}
            record.update(
                status="failed",
                reason=reason,
                traceback=traceback.format_exc(),
                wall_time=wall,
                rows=[self._row(base, failure, wall, model.J)],
            )
            run = None
        # Outside the try: a file-system error stops the run (the folder stays resumable).
        if run is not None:
            run.samples.save(self.folder.samples_path(cell.id))
        else:
            shutil.rmtree(self.folder.samples_path(cell.id), ignore_errors=True)
        for correction in CORRECTIONS:
            path = self.folder.samples_path(f"{cell.id}+{correction}")
            if correction in extra_samples:
                extra_samples[correction].save(path)
            else:
                shutil.rmtree(path, ignore_errors=True)
        self.folder.write_cell(cell.id, record)
        return record

    def corrections(
        self,
        cell: Cell,
        model: AbstractModel,
        run: MethodRun,
        exact: ExactResult | None,
        samples_out: dict[str, Samples],
    ) -> dict[str, tuple[list[dict[str, Any]], float, float]]:
        """Records of the corrections the grid asks of a cell's generator, by method label,
        with their training and sampling times: ``+reweight`` from the cell's own draws,
        ``+mcmc`` from an independence sampler with the trained generator as proposal
        (its samples go into ``samples_out``). A correction that fails gives one failed
        record with the reason; the other rows stand."""
        assert cell.method is not None and run.trained is not None
        out: dict[str, tuple[list[dict[str, Any]], float, float]] = {}
        for correction in cell.method.corrections:
            label = f"{cell.method.name}+{correction}"
            start = time.perf_counter()
            try:
                if correction == "reweight":
                    records = reweighted(model, run.samples, exact)
                    sample_time = run.sample_time + time.perf_counter() - start
                else:
                    sampler = NeuralMCMC.with_proposal(run.trained, **mcmc_run_length(self.spec))
                    key = cell_key(self.spec.seed, f"{cell.id}+mcmc")
                    chain = sampler.sample(
                        model, cell.model.temps, key=key, seed=self.spec.seed, progress=False
                    )
                    chain = dataclasses.replace(chain, method=label)
                    samples_out[correction] = chain
                    records = analyse(model, chain, exact=exact)
                    records += self.distance_records(cell, model, chain, run.failed_temps)
                    sample_time = time.perf_counter() - start
            except Exception as error:  # this correction's failure, recorded in its rows
                reason = f"{correction} failed: {type(error).__name__}: {error}"
                self.log(f"cell {cell.id}: {reason}")
                records = [{"T": None, "observable": None, "status": "failed", "reason": reason}]
                sample_time = time.perf_counter() - start
            for record in records:
                record["method"] = label
            out[label] = (records, run.train_time, sample_time)
        return out

    def heldout(self, label: str) -> Samples:
        """Held-out configurations of the model labelled ``label``: the reference sampler run
        again, with the same settings, from its own random stream (``heldout:<label>``), so no
        network of the grid trained on them. Cached like the reference; made only for grids
        that ask for reconstructed rows, so the other rows of a grid never change."""
        return self._sample_reference(label, f"heldout:{label}")

    def _sample_reference(self, label: str, stream: str) -> Samples:
        """The reference sampler's configurations of model ``label`` from random stream
        ``stream``, made once and cached on disk."""
        plan = self.plan
        cell = plan.reference_cell(label)
        model = plan.models[label]
        sampler = plan.reference
        key = cell_key(self.spec.seed, stream)

        def produce() -> Samples:
            return sampler.sample(
                model, cell.model.temps, key=key, seed=self.spec.seed, progress=self.progress
            )

        samples, _ = cached(
            self.folder.cache,
            model.describe(),
            cell.model.temps,
            sampler.name,
            sampler.settings(),
            self.spec.seed,
            produce,
            stream=stream,
            report=self.log,
        )
        return samples

    def reconstructions(
        self, cell: Cell, model: AbstractModel, run: MethodRun, exact: ExactResult | None
    ) -> dict[str, tuple[list[dict[str, Any]], float, float]]:
        """Records of a generator's reconstructed rows, by method label, with their training
        and reconstruction times: the reference configurations it trained on
        (``<name>:reconstructed-train``) and held-out ones (``<name>:reconstructed-heldout``,
        :meth:`heldout`) passed through its networks (encode, then decode), analysed like any
        samples (the chain layout kept: the Γ-method sees the reference chains'
        autocorrelation), plus ``reconstruction_error``, the mean share of each
        configuration's spins the network changes. A failure gives one failed record."""
        assert cell.method is not None and run.trained is not None
        out: dict[str, tuple[list[dict[str, Any]], float, float]] = {}
        for which in ("train", "heldout"):
            label = reconstructed_label(cell.method.name, which)
            start = time.perf_counter()
            try:
                data = self.reference(cell.label) if which == "train" else self.heldout(cell.label)
                start = time.perf_counter()
                key = cell_key(self.spec.seed, f"{cell.id}:{which}")
                rebuilt = run.trained.reconstruct(data, key=key, method=label)
                records = analyse(model, rebuilt, exact=exact)
                records += _reconstruction_error(model, data, rebuilt, label)
                records += self.distance_records(cell, model, rebuilt, run.failed_temps)
            except Exception as error:  # this diagnostic's failure, recorded in its rows
                reason = f"reconstruction failed: {type(error).__name__}: {error}"
                self.log(f"cell {cell.id}: {label}: {reason}")
                records = [{"T": None, "observable": None, "status": "failed", "reason": reason}]
            for record in records:
                record["method"] = label
            out[label] = (records, run.train_time, time.perf_counter() - start)
        return out

    def _reference_wall(self, cell: Cell) -> float:
        state = self.folder.read_cell(
            cell.label, self.plan.reference_cell(cell.label).digest, reference=True
        )
        return float(state.record["wall_time"]) if state.record is not None else 0.0

    @staticmethod
    def _row(base: dict[str, Any], record: dict[str, Any], wall: float, J: float) -> dict[str, Any]:
        row: dict[str, Any] = dict.fromkeys(COLUMNS)
        row.update(base)
        row.update({k: _number(v) for k, v in record.items() if k in COLUMNS})
        row["status"] = record.get("status") or "ok"
        row["wall_time"] = wall
        exact, estimate = row.get("exact"), row.get("estimate")
        if row.get("reference") is None and exact is not None:
            row["reference"] = "exact"
        if exact is not None and estimate is not None:
            row["abs_error"] = abs(estimate - exact)
            row["rel_error"] = relative_error(estimate, exact, row["observable"], J)
        return row

    def distance_records(
        self, cell: Cell, model: AbstractModel, samples: Samples, skip: set[float]
    ) -> list[dict[str, Any]]:
        """Energy-histogram distances (TV, KL) against the exact distribution or the MC
        reference, with the reference's noise floor; exact state KL where enumerable."""
        temps = cell.model.temps
        energies = _energies(model, samples)
        try:
            exact_distribution = model.exact_energy_distribution(temps)
        except ValueError:  # a temperature below the solver's limit: compare with the MC
            exact_distribution = None
        reference_energies = None
        if exact_distribution is None:
            if self.plan.reuses_reference(cell):
                return []  # the MC reference compared with itself says nothing
            reference_energies = _energies(model, self.reference(cell.label))
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
        """Run every cell that is not done, then write the table, summary and figures.

        Raises GridError (nothing written) when the grid has problems, RunFolderError when
        the folder is someone else's or in use, OSError when the file system refuses.
        """
        from tqdm.auto import tqdm

        plan = self.plan
        if plan.left_out:
            self.log(
                f"left out optional method(s) that no installed plugin provides: "
                f"{', '.join(plan.left_out)}"
            )
        folder = self.folder
        folder.claim(force=self.force)
        with folder.lock(self.log):
            folder.start(self.spec.text)
            method_cells = plan.method_cells()
            references = [c for c in plan.cells if c.kind == "reference"]
            removed = folder.remove_others([c.id for c in method_cells], [c.id for c in references])
            if removed:
                self.log(f"removed {len(removed)} cells that are not in this grid")
            todo = []
            for cell in plan.cells:
                state = folder.read_cell(cell.id, cell.digest, reference=cell.kind == "reference")
                if state.problem is not None:
                    self.log(f"re-running a cell whose file is damaged: {state.problem}")
                if not state.done:
                    todo.append(cell)
            finished = len(plan.cells) - len(todo)
            if finished:
                self.log(f"resuming: {finished} of {len(plan.cells)} cells already done")
            start = time.perf_counter()
            bar = tqdm(total=len(todo), desc="cells", unit="cell", disable=not self.progress)
            if getattr(self.executor, "in_process", True):
                function: Callable[..., Any] = self._run_locally(bar, todo)
            else:
                function = CellJob(self.spec.text, self.spec.source, str(self.out))
            with bar:
                for record in self.executor.map(function, todo):
                    bar.update()
                    self.log(
                        f"cell {record['cell']}: {record['status']} ({record['wall_time']:.1f} s)"
                    )
            table = folder.collect([c.id for c in method_cells])
            self.outcome = self._outcome(table)
            self.write_results(table, time.perf_counter() - start)
        return table

    def _run_locally(self, bar: Any, todo: list[Cell]) -> Callable[[Cell], dict[str, Any]]:
        """Run a cell here, and let go of a model's reference samples once its last cell is
        done (they stay in the on-disk cache), so a grid of many models holds one model's
        configurations at a time, not all of them."""
        pending = Counter(cell.label for cell in todo)

        def run(cell: Cell) -> dict[str, Any]:
            bar.set_postfix_str(cell.id if cell.kind == "method" else f"{cell.id} reference")
            record = self.run_reference(cell) if cell.kind == "reference" else self.run_cell(cell)
            pending[cell.label] -= 1
            if pending[cell.label] <= 0:
                self._references.pop(cell.label, None)
            return record

        return run

    def record_failure(self, cell: Cell, reason: str) -> dict[str, Any]:
        """Write (and return) the record of a cell that could not run at all, e.g. whose
        worker kept dying: failed, with ``reason``."""
        model = self.plan.model(cell)
        record: dict[str, Any] = {
            "format": CELL_FORMAT_VERSION,
            "cell": cell.id,
            "kind": cell.kind,
            "digest": cell.digest,
            "status": "failed",
            "reason": reason,
            "wall_time": 0.0,
        }
        if cell.kind == "reference":
            self.folder.write_cell(cell.id, record, reference=True)
            return record
        assert cell.method is not None
        base = _row_base(model, cell.method.name)
        failure = {"T": None, "observable": None, "status": "failed", "reason": reason}
        record["rows"] = [self._row(base, failure, 0.0, model.J)]
        self.folder.write_cell(cell.id, record)
        return record

    def _outcome(self, table: pd.DataFrame) -> RunOutcome:
        outcome = RunOutcome()
        for cell in self.plan.cells:
            state = self.folder.read_cell(cell.id, cell.digest, reference=cell.kind == "reference")
            record = state.record or {"status": "failed", "reason": "its record is missing"}
            if cell.kind == "method":
                if record["status"] == "failed":
                    outcome.failed.append(f"{cell.id}: {record['reason']}")
            elif record["status"] == "failed":
                outcome.reference_flags.append(
                    f"{cell.label}: the reference sampling failed: {record['reason']}"
                )
            elif record["status"] == "flagged":
                outcome.reference_flags.append(
                    f"{cell.label}: the Monte Carlo reference is flagged: {record['reason']}"
                )
        outcome.flagged = flagged_rows(table)
        return outcome

    def write_results(self, table: pd.DataFrame, wall_time: float) -> None:
        """results.csv/json, provenance.json, summary.md and figures/."""
        self.folder.write_table(table)
        settings = {
            "grid": self.spec.source,
            "grid_sha256": hashlib.sha256(self.spec.text.encode()).hexdigest(),
            "seed": self.spec.seed,
            "samples": self.spec.samples,
            "reference": {"sampler": self.spec.reference.sampler, **self.spec.reference.options},
            "models": [m.label() for m in self.spec.models],
            "methods": {m.name: m.options for m in self.plan.spec.methods},
            "corrections": {m.name: list(m.corrections) for m in self.plan.spec.methods},
            "left_out": self.plan.left_out,
            "executor": _describe(self.executor),
        }
        record = provenance(seed=self.spec.seed, settings=settings)
        record["wall_time_this_invocation"] = wall_time
        record["cell_wall_time_total"] = float(
            table.drop_duplicates(["model", "size", "method"])["wall_time"].sum()
        )
        record["failed_cells"] = self.outcome.failed
        record["reference_flags"] = self.outcome.reference_flags
        write_json_atomic(self.out / "provenance.json", record)
        write_report(self.out, plan=self.plan, table=table)


def _row_base(model: AbstractModel, method: str) -> dict[str, Any]:
    """The columns that name a row's model and method."""
    return {
        "model": model.name,
        "size": model.size,
        "boundary": model.boundary,
        "options": model.options_label(),
        "method": method,
    }


def _reconstruction_error(
    model: AbstractModel, data: Samples, rebuilt: Samples, label: str
) -> list[dict[str, Any]]:
    """Records of ``reconstruction_error``: per configuration, the mean over sites of
    ``(1 - s . s') / 2`` between a configuration and its reconstruction (the share of Ising
    spins flipped; ``(1 - cos(theta - theta')) / 2`` for angles), with Γ-method errors over
    the chains."""
    a, b = np.asarray(data.states), np.asarray(rebuilt.states)
    sites = tuple(range(3, a.ndim))
    if model.spin_values is not None:
        per_site = (a != b).mean(axis=sites)
    else:
        diff = a.astype(np.float64) - b.astype(np.float64)
        per_site = ((1.0 - np.cos(diff)) / 2).mean(axis=sites)
    estimates = {"reconstruction_error": stats.estimate(per_site)}
    return records_of(model, np.asarray(data.temps, np.float64), estimates, label)


def _describe(executor: Any) -> Any:
    """An executor's own description (workers, devices), or its class name."""
    describe = getattr(executor, "describe", None)
    return describe() if callable(describe) else type(executor).__name__


def _energies(model: AbstractModel, samples: Samples) -> np.ndarray:
    """Total energies ``(temps, configurations)`` of a sample set, computed in chunks."""
    energy_per_site = measure(model, samples.states)["energy"]
    return np.asarray(energy_per_site, np.float64).reshape(energy_per_site.shape[0], -1) * (
        model.n_sites
    )
