"""What a grid expands to: its models, methods and cells, every one checked before any work.

:func:`make_plan` resolves every name through the registry, builds every model, the reference
sampler and every method from their options, checks that each method supports each model it
is crossed with and that each cell's arrays fit in memory, and reports **every** problem at
once (file, line, key, what is allowed) as one :class:`~spinbench._grid.GridError`. A run
touches its output folder only once the plan exists.

A grid has two kinds of cell: per model one *reference* cell (the reference sampler's
configurations: training data and Monte Carlo baseline) and one *method* cell per method
crossed with it. Each cell carries a digest of everything that decides its rows: the model
(name, canonical size, boundary, J), its temperatures, the method's resolved settings, the
reference sampler's resolved settings, the seed, the generated sample count and the result
format. A finished cell whose digest matches is reused; any change re-runs exactly the cells it
touches.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from ._errors import OptionError
from ._grid import GridSpec, MethodSpec, ModelSpec, raise_problems, toml_spelling
from ._methods import options_of
from ._registry import (
    RegistryError,
    get_generator,
    get_method,
    get_model,
    get_registry,
    get_sampler,
)
from ._resources import generator_memory, memory_problem, sampler_memory
from ._run_folder import CELL_FORMAT_VERSION
from .models._base import AbstractModel, ModelError

__all__ = ["Cell", "Plan", "digest", "make_plan"]

CellKind = Literal["reference", "method"]


def digest(payload: Any) -> str:
    """A stable hash of a JSON-friendly payload (keys sorted; unknown types as strings)."""
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Cell:
    """One unit of work: a model's reference sampling, or one method on one model."""

    model: ModelSpec
    method: MethodSpec | None  # None: the model's reference sampling
    digest: str = ""

    @property
    def kind(self) -> CellKind:
        """``"reference"`` or ``"method"``."""
        return "reference" if self.method is None else "method"

    @property
    def label(self) -> str:
        """The model's label (``ising2d-10``), as the grid spells it."""
        return self.model.label()

    @property
    def id(self) -> str:
        """A file-name-safe id: the model label, plus ``-<method>`` for a method cell."""
        return self.label if self.method is None else f"{self.label}-{self.method.name}"


@dataclass
class Plan:
    """A checked grid: the built models, reference sampler and methods, and every cell."""

    spec: GridSpec
    models: dict[str, AbstractModel]
    reference: Any
    methods: dict[str, Any]
    kinds: dict[str, str]
    cells: list[Cell] = field(default_factory=list)
    #: Optional methods of the grid that no installed plugin provides.
    left_out: list[str] = field(default_factory=list)

    def model(self, cell: Cell) -> AbstractModel:
        """The model instance of a cell."""
        return self.models[cell.label]

    def method(self, cell: Cell) -> Any:
        """The sampler or generator instance of a method cell."""
        assert cell.method is not None
        return self.methods[cell.method.name]

    def reuses_reference(self, cell: Cell) -> bool:
        """Whether a method cell is the reference sampler itself (its rows are the reference's
        configurations, analysed like any method's)."""
        if cell.method is None or self.kinds[cell.method.name] != "samplers":
            return False
        method = self.method(cell)
        return type(method) is type(self.reference) and method == self.reference

    def method_cells(self) -> list[Cell]:
        """The method cells, in grid order."""
        return [c for c in self.cells if c.kind == "method"]

    def reference_cell(self, label: str) -> Cell:
        """The reference cell of the model labelled ``label``."""
        return next(c for c in self.cells if c.kind == "reference" and c.label == label)


def _merged_sampler_options(
    cls: type, reference_options: dict[str, Any], own: dict[str, Any]
) -> dict[str, Any]:
    """A sampler method's options: the reference's run length (chains, sweeps, ...) where the
    sampler has such options, overridden by its own."""
    accepted = options_of(cls)
    return {**{k: v for k, v in reference_options.items() if k in accepted}, **own}


def _option_key(message: str, options: dict[str, Any]) -> str | None:
    """The option a validation message is about (it names it first), if any."""
    named = [k for k in options if message.startswith(k) or f" {k} " in f" {message} "]
    return named[0] if named else None


class _Checker:
    """Collects problems with their place in the grid file."""

    def __init__(self, spec: GridSpec) -> None:
        self.spec = spec
        self.problems: list[str] = []

    def fail(
        self, key: str, message: str, table: str | None = None, index: int | None = None
    ) -> None:
        problem = f"{self.spec.locate(key, table, index)}: {message}"
        if problem not in self.problems:
            self.problems.append(problem)


def _build_models(spec: GridSpec, check: _Checker) -> dict[str, AbstractModel]:
    models: dict[str, AbstractModel] = {}
    seen: dict[tuple[Any, ...], ModelSpec] = {}
    for entry in spec.models:
        where = ("models", entry.index)
        try:
            cls = get_model(entry.name)
        except RegistryError as error:
            check.fail("name", str(error), *where)
            continue
        boundaries = tuple(getattr(cls, "boundaries", ()))
        if entry.boundary is not None and entry.boundary not in boundaries:
            check.fail(
                "boundary",
                f"{entry.boundary!r} is not a boundary of {cls.name}; "  # type: ignore[attr-defined]
                f"choose one of: {', '.join(boundaries)}",
                *where,
            )
            continue
        try:
            model = cls.from_size(  # type: ignore[attr-defined]
                entry.size, boundary=entry.boundary, J=entry.J, **entry.options
            )
        except ModelError as error:
            unknown = [k for k in entry.options if repr(k) in str(error)]
            key = unknown[0] if unknown else _option_key(str(error), entry.options) or "size"
            check.fail(key, str(error), *where)
            continue
        except TypeError as error:  # a plugin's from_size that takes no options
            key = next(iter(entry.options), "name")
            check.fail(key, f"{cls.name} takes no model options ({error})", *where)  # type: ignore[attr-defined]
            continue
        except ValueError as error:  # a plugin's own validation
            check.fail("name", f"{cls.name} cannot be built: {error}", *where)  # type: ignore[attr-defined]
            continue
        system = (model.name, model.size, model.boundary, float(model.J), model.options_label())
        twin = seen.get(system)
        if twin is not None:
            check.fail(
                "size",
                f"the same system as models[{twin.index}] ({model.name} {model.size}, "
                f"{model.boundary}, J={toml_spelling(model.J)}"
                f"{', ' + model.options_label() if model.options_label() else ''}) spelled "
                "differently; put all its "
                "temperatures in one [[models]] table",
                *where,
            )
            continue
        seen[system] = entry
        models[entry.label()] = model
    return models


def _build_reference(spec: GridSpec, check: _Checker) -> Any:
    name, options = spec.reference.sampler, spec.reference.options
    try:
        cls = get_sampler(name)
    except RegistryError as error:
        check.fail("sampler", str(error), "reference")
        return None
    valid = options_of(cls)
    unknown = sorted(set(options) - set(valid))
    for key in unknown:
        hint = ""
        if key in ("seed", "samples", "models", "methods", "description"):
            hint = (
                f"; {key!r} is a top-level key: TOML puts every key written after the "
                "[reference] header into that table, so move it above the first table"
            )
        check.fail(
            key,
            f"not an option of the reference sampler {name!r}; valid keys: "
            f"{', '.join(['sampler', *sorted(valid)])}{hint}",
            "reference",
        )
    if unknown:
        return None
    try:
        return cls.from_options(**options)  # type: ignore[attr-defined]
    except OptionError as error:
        key = _option_key(str(error).split(": ", 1)[-1], options) or "sampler"
        check.fail(key, str(error), "reference")
        return None


def _builds(cls: type, options: dict[str, Any]) -> bool:
    try:
        cls.from_options(**options)  # type: ignore[attr-defined]
    except OptionError:
        return False
    return True


def _build_methods(
    spec: GridSpec, check: _Checker, *, reference_failed: bool
) -> tuple[dict[str, Any], dict[str, str]]:
    methods: dict[str, Any] = {}
    kinds: dict[str, str] = {}
    for method in spec.methods:
        where = ("methods", method.index)
        try:
            entry = get_method(method.name)
        except RegistryError as error:
            check.fail("name", str(error), *where)
            continue
        valid = options_of(entry.cls)
        unknown = sorted(set(method.options) - set(valid))
        for key in unknown:
            check.fail(
                key,
                f"not an option of {entry.kind[:-1]} {method.name!r}; valid keys: "
                f"{', '.join(['name', *sorted(valid)]) if valid else 'name'}",
                *where,
            )
        if unknown:
            continue
        options = dict(method.options)
        if entry.kind == "samplers":
            options = _merged_sampler_options(entry.cls, spec.reference.options, options)
        try:
            methods[method.name] = entry.cls.from_options(**options)  # type: ignore[attr-defined]
            kinds[method.name] = entry.kind
        except OptionError as error:
            inherited = sorted(set(options) - set(method.options))
            if inherited and reference_failed and _builds(entry.cls, method.options):
                continue  # the [reference]'s own problem, reported there
            key = _option_key(str(error).split(": ", 1)[-1], method.options) or "name"
            note = (
                f" (with the [reference] options {', '.join(inherited)} it shares)"
                if inherited and key == "name"
                else ""
            )
            check.fail(key, f"{error}{note}", *where)
    return methods, kinds


def _check_crossings(
    spec: GridSpec,
    check: _Checker,
    models: dict[str, AbstractModel],
    reference: Any,
    methods: dict[str, Any],
    kinds: dict[str, str],
) -> None:
    """Memory first (``supports`` may build per-site tables), then ``supports`` of the
    reference sampler and of every method on every model it is crossed with."""
    for entry in spec.models:
        model = models.get(entry.label())
        if model is None:
            continue
        where = ("models", entry.index)
        n_temps = len(entry.temps)
        described = f"{model.name} {model.size}"
        reference_bytes = None if reference is None else sampler_memory(reference, model, n_temps)
        problem = memory_problem(reference_bytes, f"the reference samples of {described}")
        if problem is not None:
            check.fail("size", problem, *where)
            continue
        if reference is not None:
            reason = reference.supports(model)
            if reason is not None:
                check.fail(
                    "sampler",
                    f"the reference sampler {reference.name!r} cannot sample {described} "
                    f"(models[{entry.index}]): {reason}",
                    "reference",
                )
        for method_spec in spec.methods_for(entry):
            method = methods.get(method_spec.name)
            if method is None:
                continue
            if kinds[method_spec.name] == "samplers":
                estimate = sampler_memory(method, model, n_temps)
            else:
                n_training = _kept_per_temperature(reference) or spec.samples
                estimate = generator_memory(model, n_temps, n_training, spec.samples)
            problem = memory_problem(estimate, f"{method_spec.name} on {described}")
            if problem is not None:
                check.fail("size", problem, *where)
                continue
            reason = method.supports(model)
            if reason is not None:
                check.fail(
                    "methods",
                    f"{method_spec.name} cannot run on {described}: {reason}; leave it out "
                    "of this model's methods",
                    *where,
                )
            else:
                if method_spec.corrections:
                    _check_corrections(check, method_spec, method, kinds, model, described)
                if method_spec.reconstructed:
                    _check_reconstructed(check, method_spec, method, kinds, model, described)


def _check_corrections(
    check: _Checker,
    method_spec: MethodSpec,
    method: Any,
    kinds: dict[str, str],
    model: AbstractModel,
    described: str,
) -> None:
    """Corrections need a generator with a density on the model."""
    where = ("methods", method_spec.index)
    if kinds[method_spec.name] != "generators":
        check.fail(
            "corrections",
            f"corrections apply to generators with a density; {method_spec.name} is a sampler",
            *where,
        )
        return
    problem = method.density_problem(model)
    if problem is not None:
        check.fail(
            "corrections",
            f"{method_spec.name} has no density on {described}, so it cannot be corrected: "
            f"{problem}",
            *where,
        )


def _check_reconstructed(
    check: _Checker,
    method_spec: MethodSpec,
    method: Any,
    kinds: dict[str, str],
    model: AbstractModel,
    described: str,
) -> None:
    """Reconstructed rows need a generator with an encoder on the model."""
    where = ("methods", method_spec.index)
    if kinds[method_spec.name] == "generators":
        problem = method.reconstruction_problem(model)
        if problem is None:
            return
        why = f"{method_spec.name} cannot reconstruct configurations of {described}: {problem}"
    else:
        why = f"{method_spec.name} is a sampler, with no network to pass configurations through"
    allowed = _encoder_generators(model)
    check.fail(
        "reconstructed",
        f"{why}; reconstructed = true needs a generator with an encoder"
        + (f" ({', '.join(allowed)} on {described})" if allowed else ""),
        *where,
    )


def _encoder_generators(model: AbstractModel) -> list[str]:
    """The registered generators that, with their default options, reconstruct ``model``."""
    names = []
    for name in get_registry().names("generators"):
        try:
            generator = get_generator(name).from_options()  # type: ignore[attr-defined]
            if generator.reconstruction_problem(model) is None:
                names.append(name)
        except Exception:  # a plugin generator that cannot be built bare is not listed
            continue
    return names


def _kept_per_temperature(sampler: Any) -> int | None:
    """Configurations per temperature a chain sampler keeps (None if it does not say)."""
    chains, n_samples = getattr(sampler, "chains", None), getattr(sampler, "n_samples", None)
    if isinstance(chains, int) and isinstance(n_samples, int):
        return chains * n_samples
    return None


def _cell_digests(plan: Plan) -> None:
    spec = plan.spec
    reference = {"sampler": spec.reference.sampler, "settings": plan.reference.settings()}
    for entry in spec.models:
        model = plan.models[entry.label()]
        common = {
            "format": CELL_FORMAT_VERSION,
            "model": model.describe(),
            "label": entry.label(),
            "temps": [float(t) for t in entry.temps],
            "seed": spec.seed,
            "reference": reference,
        }
        plan.cells.append(Cell(entry, None, digest({**common, "kind": "reference"})))
        for method_spec in spec.methods_for(entry):
            method = plan.methods[method_spec.name]
            kind = plan.kinds[method_spec.name]
            payload = {
                **common,
                "kind": "method",
                "method": {"name": method_spec.name, "kind": kind, "settings": method.settings()},
                "corrections": list(method_spec.corrections),
            }
            if method_spec.reconstructed:  # only when on: other grids keep their digests
                payload["reconstructed"] = True
            if kind == "generators":
                payload["samples"] = spec.samples
            plan.cells.append(Cell(entry, method_spec, digest(payload)))


def make_plan(spec: GridSpec) -> Plan:
    """Check a grid against the registry and this machine and expand it into cells.

    Raises :class:`~spinbench._grid.GridError` listing every problem found. Optional methods
    (``optional = true``) that no installed plugin provides are left out (``Plan.left_out``).
    """
    left_out = {m.name for m in spec.methods if m.optional and not _registered(m.name)}
    spec = spec.without_methods(left_out)
    check = _Checker(spec)
    models = _build_models(spec, check)
    reference = _build_reference(spec, check)
    methods, kinds = _build_methods(spec, check, reference_failed=reference is None)
    _check_crossings(spec, check, models, reference, methods, kinds)
    raise_problems(spec.source, check.problems)
    plan = Plan(spec, models, reference, methods, kinds, left_out=sorted(left_out))
    _cell_digests(plan)
    return plan


def _registered(name: str) -> bool:
    try:
        get_method(name)
    except RegistryError:
        return False
    return True
