"""Grid specifications: which models, methods and temperatures a run crosses.

A grid is a TOML file (``spinbench run --config FILE.toml``) or a preset shipped with the
package (``spinbench run --preset NAME``). Its shape is in DESIGN.md; in addition, a
``[[models]]`` entry may list ``methods = ["vae", ...]`` to restrict which of the grid's
methods run on it (the paper's panels use different methods per model). Errors name the key
and, where it can be found, the line.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .temperatures import parse_temps


class GridError(ValueError):
    """A malformed grid file; the message names the key and line."""


@dataclass(frozen=True)
class ModelSpec:
    """One model of a grid: name, size, boundary, coupling, temperatures, methods."""

    name: str
    size: str
    temps: np.ndarray
    boundary: str | None = None
    J: float = 1.0
    methods: tuple[str, ...] | None = None
    histogram_temps: tuple[float, ...] = ()

    def label(self) -> str:
        """A short readable id, e.g. ``ising2d-10x10-periodic``."""
        return f"{self.name}-{self.size}" + (f"-{self.boundary}" if self.boundary else "")


@dataclass(frozen=True)
class MethodSpec:
    """One method (sampler or generator) with its options."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)


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

    def with_seed(self, seed: int) -> GridSpec:
        """The same grid with another seed."""
        return GridSpec(
            seed, self.samples, self.reference, self.models, self.methods, self.source, self.text
        )


_TOP_KEYS = {"seed", "samples", "reference", "models", "methods", "description"}
_MODEL_KEYS = {"name", "size", "boundary", "J", "temps", "methods", "histogram_temps"}


def _line_of(text: str, key: str, table: str | None = None, index: int = 0) -> int | None:
    """Best-effort line number of ``key`` inside the ``index``-th ``[[table]]`` (or top level)."""
    lines = text.splitlines()
    start, stop = 0, len(lines)
    if table is not None:
        header = re.compile(rf"^\s*\[\[?\s*{re.escape(table)}\s*\]\]?\s*(#.*)?$")
        starts = [i for i, line in enumerate(lines) if header.match(line)]
        if index >= len(starts):
            return None
        start = starts[index]
        later = [i for i, line in enumerate(lines) if i > start and line.lstrip().startswith("[")]
        stop = later[0] if later else len(lines)
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for i in range(start, stop):
        if pattern.match(lines[i]):
            return i + 1
    return start + 1 if table is not None else None


def _error(
    source: str, text: str, key: str, message: str, table: str | None = None, index: int = 0
) -> GridError:
    line = _line_of(text, key, table, index)
    where = f"{source}, line {line}" if line else source
    path = f"{table}[{index}].{key}" if table else key
    return GridError(f"{where}: key '{path}': {message}")


def parse_grid(text: str, source: str = "<grid>") -> GridSpec:
    """Parse and validate a grid from TOML text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise GridError(f"{source}: not valid TOML: {error}") from error

    def fail(key: str, message: str, table: str | None = None, index: int = 0) -> GridError:
        return _error(source, text, key, message, table, index)

    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise fail(unknown[0], f"unknown key; valid top-level keys: {', '.join(sorted(_TOP_KEYS))}")
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise fail("seed", f"must be a non-negative integer, got {seed!r}")
    samples = data.get("samples", 10000)
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 2:
        raise fail("samples", f"must be an integer >= 2, got {samples!r}")

    reference_table = data.get("reference", {})
    if not isinstance(reference_table, dict):
        raise fail("reference", "must be a table [reference]")
    reference_options = dict(reference_table)
    sampler = reference_options.pop("sampler", "metropolis")
    if not isinstance(sampler, str):
        raise fail("sampler", "must be a sampler name", "reference")
    reference = ReferenceSpec(sampler, reference_options)

    raw_models = data.get("models")
    if not isinstance(raw_models, list) or not raw_models:
        raise fail("models", "at least one [[models]] table is required")
    models: list[ModelSpec] = []
    for index, entry in enumerate(raw_models):
        model = _parse_model(entry, index, fail)
        twin = next((m for m in models if m.label() == model.label()), None)
        if twin is not None:  # cells, samples and references are named by the label
            raise fail(
                "name",
                f"a second [[models]] table for {model.label()!r}: results are keyed by name, "
                "size and boundary, so its cells would overwrite the first one's; put all its "
                "temperatures in one table (another J needs a grid and --out of its own)",
                "models",
                index,
            )
        models.append(model)

    raw_methods = data.get("methods", [])
    if not isinstance(raw_methods, list):
        raise fail("methods", "must be [[methods]] tables")
    methods = []
    for index, entry in enumerate(raw_methods):
        options = dict(entry)
        name = options.pop("name", None)
        if not isinstance(name, str) or not name:
            raise fail("name", "every [[methods]] table needs a name", "methods", index)
        methods.append(MethodSpec(name.lower(), options))
    names = [m.name for m in methods]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise fail("name", f"method {duplicated[0]!r} is listed twice", "methods")
    for index, model in enumerate(models):
        for wanted in model.methods or ():
            if wanted not in names:
                raise fail(
                    "methods",
                    f"method {wanted!r} is not one of the grid's [[methods]]: {', '.join(names)}",
                    "models",
                    index,
                )
    return GridSpec(seed, samples, reference, tuple(models), tuple(methods), source, text)


def _parse_model(entry: Any, index: int, fail: Any) -> ModelSpec:
    if not isinstance(entry, dict):
        raise fail("models", "must be [[models]] tables")
    unknown = sorted(set(entry) - _MODEL_KEYS)
    if unknown:
        raise fail(
            unknown[0],
            f"unknown key; valid keys: {', '.join(sorted(_MODEL_KEYS))}",
            "models",
            index,
        )
    for key in ("name", "size", "temps"):
        if key not in entry:
            raise fail(key, "is required", "models", index)
    name, size = entry["name"], str(entry["size"])
    if not isinstance(name, str):
        raise fail("name", "must be a model name", "models", index)
    temps_value = entry["temps"]
    try:
        if isinstance(temps_value, list):
            temps = parse_temps(",".join(str(t) for t in temps_value))
        else:
            temps = parse_temps(str(temps_value))
    except ValueError as error:
        raise fail("temps", str(error), "models", index) from error
    boundary = entry.get("boundary")
    if boundary is not None and not isinstance(boundary, str):
        raise fail("boundary", "must be a string", "models", index)
    J = entry.get("J", 1.0)
    if not isinstance(J, int | float) or not math.isfinite(J) or J == 0:
        raise fail("J", f"must be a finite non-zero number, got {J!r}", "models", index)
    methods = entry.get("methods")
    if methods is not None and (
        not isinstance(methods, list) or not all(isinstance(m, str) for m in methods)
    ):
        raise fail("methods", "must be a list of method names", "models", index)
    histogram_temps = entry.get("histogram_temps", [])
    if not isinstance(histogram_temps, list) or not all(
        isinstance(t, int | float) for t in histogram_temps
    ):
        raise fail("histogram_temps", "must be a list of temperatures", "models", index)
    return ModelSpec(
        name=name.lower(),
        size=size,
        temps=temps,
        boundary=boundary,
        J=float(J),
        methods=tuple(m.lower() for m in methods) if methods is not None else None,
        histogram_temps=tuple(float(t) for t in histogram_temps),
    )


def load_grid(path: str | Path) -> GridSpec:
    """Read and validate a grid file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise GridError(f"cannot read grid file {path}: {error.strerror}") from error
    return parse_grid(text, str(path))
