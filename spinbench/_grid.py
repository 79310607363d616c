"""Grid specifications: which models, methods and temperatures a run crosses.

A grid is a TOML file (``spinbench run --config FILE.toml``) or a preset shipped with the
package (``spinbench run --preset NAME``). Its shape is in DESIGN.md; in addition, a
``[[models]]`` entry may list ``methods = ["vae", ...]`` to restrict which of the grid's
methods run on it (the paper's panels use different methods per model). Errors name the key
and, where it can be found, the line.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import GridError
from .temperatures import parse_temps


@dataclass(frozen=True)
class ModelSpec:
    """One model of a grid: name, size, boundary, coupling, model options, temperatures and
    the methods that run on it."""

    name: str
    size: str
    temps: np.ndarray
    boundary: str | None = None
    J: float = 1.0
    methods: tuple[str, ...] | None = None
    histogram_temps: tuple[float, ...] = ()
    #: Position among the grid's [[models]] tables (for messages).
    index: int = 0
    #: The model's own options (keys of the table beyond the grid's own), e.g. {"h": 0.3}.
    options: dict[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        """A short readable id as the grid spells the model, e.g. ``ising2d-10`` or
        ``ising1d-6-free-h=0.3``: cell, sample and figure names, and the random stream."""
        boundary = f"-{self.boundary}" if self.boundary else ""
        options = "".join(f"-{k}={_label_value(v)}" for k, v in sorted(self.options.items()))
        return f"{self.name}-{self.size}{boundary}{options}"


#: Suffixes of the method labels of reconstructed rows (``reconstructed = true`` in a
#: generator's ``[[methods]]`` table): the observables of configurations passed through the
#: trained network (encode, then decode), the paper's red markers in Figure 2. ``train``:
#: the configurations it trained on; ``heldout``: an independent block of reference
#: configurations, drawn like the training data but from another random stream.
RECONSTRUCTED = ("reconstructed-train", "reconstructed-heldout")


def reconstructed_label(method: str, which: str) -> str:
    """The method label of ``method``'s reconstructed rows, ``which`` = "train" or
    "heldout": ``vae:reconstructed-train``."""
    return f"{method}:reconstructed-{which}"


def is_reconstructed(method: str) -> bool:
    """Whether a method label is that of reconstructed rows (diagnostics, not a sampler)."""
    return any(str(method).endswith(f":{suffix}") for suffix in RECONSTRUCTED)


#: The corrections a grid may ask of a generator with a density (``corrections = [...]`` in
#: its ``[[methods]]`` table): rows ``<name>+reweight`` and ``<name>+mcmc``.
CORRECTIONS = ("reweight", "mcmc")


@dataclass(frozen=True)
class MethodSpec:
    """One method (sampler or generator) with its options and the corrections asked of it."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    #: Position among the grid's [[methods]] tables (for messages).
    index: int = 0
    #: Corrections (of :data:`CORRECTIONS`) whose rows a generator adds beside its own.
    corrections: tuple[str, ...] = ()
    #: Run only where a plugin provides it (``optional = true``), else left out with a note.
    optional: bool = False
    #: Rows ``<name>:reconstructed-train`` and ``<name>:reconstructed-heldout``
    #: (``reconstructed = true``; generators with an encoder): see :data:`RECONSTRUCTED`.
    reconstructed: bool = False


@dataclass(frozen=True)
class ReferenceSpec:
    """The sampler that makes training data and the Monte Carlo baseline."""

    sampler: str = "metropolis"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GridSpec:
    """A whole grid: seed, samples per temperature, reference sampler, models, methods."""

    seed: int
    samples: int
    reference: ReferenceSpec
    models: tuple[ModelSpec, ...]
    methods: tuple[MethodSpec, ...]
    source: str = ""
    text: str = ""

    def methods_for(self, model: ModelSpec) -> list[MethodSpec]:
        """The grid's methods that run on ``model``, in grid order."""
        if model.methods is None:
            return list(self.methods)
        return [m for m in self.methods if m.name in model.methods]

    def without_methods(self, names: set[str]) -> GridSpec:
        """The same grid without the methods ``names`` (optional ones not installed)."""
        models = tuple(
            m
            if m.methods is None
            else dataclasses.replace(m, methods=tuple(n for n in m.methods if n not in names))
            for m in self.models
        )
        methods = tuple(m for m in self.methods if m.name not in names)
        return dataclasses.replace(self, models=models, methods=methods)

    def with_seed(self, seed: int) -> GridSpec:
        """The same grid with another seed; its text says so too (it is saved with the run)."""
        if _line_of(self.text, "seed") is None:  # no top-level seed: state it first
            text = f"seed = {seed}\n{self.text}"
        else:  # the first seed line is the top-level one (it precedes every table)
            text = _SEED_LINE.sub(lambda match: f"{match.group(1)}{seed}", self.text, count=1)
        return dataclasses.replace(self, seed=seed, text=text)

    def locate(self, key: str, table: str | None = None, index: int | None = None) -> str:
        """Where ``key`` is in this grid's text, for messages (see :func:`locate`)."""
        return locate(self.source, self.text, key, table, index)


_TOP_KEYS = {"seed", "samples", "reference", "models", "methods", "description"}
_MODEL_KEYS = {"name", "size", "boundary", "J", "temps", "methods", "histogram_temps"}
_SEED_LINE = re.compile(r"^(\s*seed\s*=\s*)[^#\n]*", re.MULTILINE)


def _line_of(text: str, key: str, table: str | None = None, index: int = 0) -> int | None:
    """Best-effort line number of ``key`` inside the ``index``-th ``[[table]]`` (or top level)."""
    lines = text.splitlines()
    start, stop = 0, len(lines)
    headers = [i for i, line in enumerate(lines) if line.lstrip().startswith("[")]
    if table is not None:
        header = re.compile(rf"^\s*\[\[?\s*{re.escape(table)}\s*\]\]?\s*(#.*)?$")
        starts = [i for i, line in enumerate(lines) if header.match(line)]
        if index >= len(starts):
            return None
        start = starts[index]
        later = [i for i in headers if i > start]
        stop = later[0] if later else len(lines)
    elif headers:
        stop = headers[0]
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for i in range(start, stop):
        if pattern.match(lines[i]):
            return i + 1
    return start + 1 if table is not None else None


def locate(
    source: str, text: str, key: str, table: str | None = None, index: int | None = None
) -> str:
    """``"FILE, line N: key 'models[0].size'"``: where a key of a grid is, for messages.

    ``table`` names a ``[table]`` (``index`` None) or the ``index``-th ``[[table]]``."""
    line = _line_of(text, key, table, index or 0)
    where = f"{source}, line {line}" if line else source
    if table is None:
        path = key
    elif index is None:
        path = f"{table}.{key}"
    else:
        path = f"{table}[{index}].{key}"
    return f"{where}: key '{path}'"


def raise_problems(source: str, problems: list[str]) -> None:
    """Raise one :class:`GridError` listing every problem (nothing when there is none)."""
    if len(problems) == 1:
        raise GridError(problems[0])
    if problems:
        listed = "\n".join(f"  - {problem}" for problem in problems)
        raise GridError(f"{source} has {len(problems)} problems:\n{listed}")


def _label_value(value: Any) -> str:
    """A model option's value in a label (a file name): ``0.3``, ``true``, ``name``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_grid(text: str, source: str = "<grid>") -> GridSpec:
    """Parse and validate a grid from TOML text; every problem is reported at once.

    This checks the grid's own shape and values. Whether names, sizes and options make sense
    for the registered models and methods is checked by :func:`spinbench._plan.make_plan`.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise GridError(f"{source}: not valid TOML: {error}") from error
    problems: list[str] = []

    def fail(key: str, message: str, table: str | None = None, index: int | None = None) -> None:
        problems.append(f"{locate(source, text, key, table, index)}: {message}")

    for key in sorted(set(data) - _TOP_KEYS):
        fail(key, f"unknown key; valid top-level keys: {', '.join(sorted(_TOP_KEYS))}")
    seed = data.get("seed", 0)
    if not _is_int(seed) or seed < 0:
        fail("seed", f"must be a non-negative integer, got {toml_spelling(seed)}")
    samples = data.get("samples", 10000)
    if not _is_int(samples) or samples < 2:
        fail("samples", f"must be an integer >= 2, got {toml_spelling(samples)}")

    reference_table = data.get("reference", {})
    reference = ReferenceSpec()
    if not isinstance(reference_table, dict):
        fail("reference", "must be a table [reference]")
    else:
        reference_options = dict(reference_table)
        sampler = reference_options.pop("sampler", "metropolis")
        if not isinstance(sampler, str) or not sampler:
            fail("sampler", "must be a sampler name", "reference")
        else:
            reference = ReferenceSpec(sampler.lower(), reference_options)

    raw_models = data.get("models")
    models: list[ModelSpec] = []
    if not isinstance(raw_models, list) or not raw_models:
        fail("models", "at least one [[models]] table is required")
        raw_models = []
    for index, entry in enumerate(raw_models):
        model = _parse_model(entry, index, fail)
        if model is None:
            continue
        twin = next((m for m in models if m.label() == model.label()), None)
        if twin is not None:  # cells, samples and references are named by the label
            fail(
                "name",
                f"a second [[models]] table for {model.label()!r}: results are keyed by name, "
                "size and boundary, so its cells would overwrite the first one's; put all its "
                "temperatures in one table (another J needs a grid and --out of its own)",
                "models",
                index,
            )
            continue
        models.append(model)

    raw_methods = data.get("methods")
    methods: list[MethodSpec] = []
    if raw_methods is None or raw_methods == []:
        fail("methods", 'at least one [[methods]] table is required (e.g. name = "metropolis")')
        raw_methods = []
    elif not isinstance(raw_methods, list):
        fail("methods", "must be [[methods]] tables")
        raw_methods = []
    for index, entry in enumerate(raw_methods):
        if not isinstance(entry, dict):
            fail("methods", "must be [[methods]] tables")
            continue
        options = dict(entry)
        name = options.pop("name", None)
        if not isinstance(name, str) or not name:
            fail("name", "every [[methods]] table needs a name", "methods", index)
            continue
        if any(m.name == name.lower() for m in methods):
            fail("name", f"method {name.lower()!r} is listed twice", "methods", index)
            continue
        corrections = options.pop("corrections", [])
        if not isinstance(corrections, list) or not all(
            isinstance(c, str) and c in CORRECTIONS for c in corrections
        ):
            fail(
                "corrections",
                f"must be a list of corrections from {', '.join(map(repr, CORRECTIONS))}, "
                f"got {toml_spelling(corrections)}",
                "methods",
                index,
            )
            continue
        if len(set(corrections)) != len(corrections):
            fail("corrections", "lists a correction twice", "methods", index)
            continue
        optional = options.pop("optional", False)
        if not isinstance(optional, bool):
            fail(
                "optional",
                f"must be true or false, got {toml_spelling(optional)}",
                "methods",
                index,
            )
            continue
        reconstructed = options.pop("reconstructed", False)
        if not isinstance(reconstructed, bool):
            fail(
                "reconstructed",
                f"must be true or false, got {toml_spelling(reconstructed)}",
                "methods",
                index,
            )
            continue
        methods.append(
            MethodSpec(name.lower(), options, index, tuple(corrections), optional, reconstructed)
        )
    names = [m.name for m in methods]
    for model in models:
        for wanted in model.methods or ():
            if wanted not in names:
                fail(
                    "methods",
                    f"method {wanted!r} is not one of the grid's [[methods]]: {', '.join(names)}",
                    "models",
                    model.index,
                )
    raise_problems(source, problems)
    return GridSpec(seed, samples, reference, tuple(models), tuple(methods), source, text)


def toml_spelling(value: Any) -> str:
    """A value as a user wrote it in TOML (``true``, ``1.5``, ``"x"``), for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, np.generic):
        return str(value.item())
    return str(value)


def _parse_model(entry: Any, index: int, fail: Any) -> ModelSpec | None:
    if not isinstance(entry, dict):
        fail("models", "must be [[models]] tables")
        return None
    problems = 0

    def problem(key: str, message: str) -> None:
        nonlocal problems
        problems += 1
        fail(key, message, "models", index)

    options = {key: value for key, value in entry.items() if key not in _MODEL_KEYS}
    for key, value in sorted(options.items()):  # the model's options, checked by the plan
        if not isinstance(value, str | int | float | bool):
            problem(key, f"a model option must be a number, string or boolean, got {value!r}")
    for key in ("name", "size", "temps"):
        if key not in entry:
            close = difflib.get_close_matches(key, list(options), n=1)
            if close:  # a misspelling, which would otherwise pass for a model option
                problem(close[0], f"unknown key; did you mean {key!r}? ({key} is required)")
                options.pop(close[0])
            else:
                problem(key, "is required")
    name = entry.get("name")
    if "name" in entry and (not isinstance(name, str) or not name):
        problem("name", f"must be a model name, got {toml_spelling(name)}")
    size = entry.get("size")
    if "size" in entry and not (isinstance(size, str) or _is_int(size)):
        problem("size", f'must be a size like "6" or "10x12", got {toml_spelling(size)}')
    temps = np.zeros(0)
    if "temps" in entry:
        temps_value = entry["temps"]
        try:
            if isinstance(temps_value, list):
                if not all(_is_number(t) for t in temps_value):
                    listed = toml_spelling(temps_value)
                    raise ValueError(f"a list of temperatures must hold numbers, got {listed}")
                temps = parse_temps(",".join(repr(float(t)) for t in temps_value))
            elif isinstance(temps_value, str):
                temps = parse_temps(temps_value)
            else:
                raise ValueError(
                    f'must be a list of numbers or a string like "0.5:4.0:8", '
                    f"got {toml_spelling(temps_value)}"
                )
        except ValueError as error:
            problem("temps", str(error))
    boundary = entry.get("boundary")
    if boundary is not None and not isinstance(boundary, str):
        problem("boundary", f"must be a string, got {toml_spelling(boundary)}")
    J = entry.get("J", 1.0)
    if not _is_number(J) or not math.isfinite(J) or J == 0:
        problem("J", f"must be a finite non-zero number, got {toml_spelling(J)}")
    methods = entry.get("methods")
    if methods is not None and (
        not isinstance(methods, list) or not all(isinstance(m, str) for m in methods)
    ):
        problem("methods", "must be a list of method names")
    histogram_temps = entry.get("histogram_temps", [])
    if not isinstance(histogram_temps, list) or not all(_is_number(t) for t in histogram_temps):
        problem("histogram_temps", "must be a list of temperatures")
    if problems:
        return None
    return ModelSpec(
        name=str(name).lower(),
        size=str(size),
        temps=temps,
        boundary=boundary,
        J=float(J),
        methods=tuple(m.lower() for m in methods) if methods is not None else None,
        histogram_temps=tuple(float(t) for t in histogram_temps),
        index=index,
        options=options,
    )


def load_grid(path: str | Path) -> GridSpec:
    """Read and validate a grid file (UTF-8 TOML)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise GridError(f"cannot read grid file {path}: {error.strerror}") from error
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise GridError(
            f"{path} is not UTF-8 text (byte 0x{raw[error.start]:02x} at offset {error.start}); "
            "save the grid file as UTF-8"
        ) from error
    return parse_grid(text, str(path))
