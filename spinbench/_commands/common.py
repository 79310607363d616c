"""Options and output helpers shared by the subcommands."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click
import numpy as np

from .._atomic import encode_json
from .._errors import ModelError
from .._registry import RegistryError, get_model
from ..temperatures import parse_temps

if TYPE_CHECKING:
    from ..models._base import AbstractModel

F = TypeVar("F", bound=Callable[..., Any])

FORMATS = ("table", "json", "csv")


def format_option(choices: Sequence[str] = FORMATS) -> Callable[[F], F]:
    """``--format`` with the given choices, ``table`` by default."""
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(list(choices)),
        default="table",
        show_default=True,
        help="Output format.",
    )


def temps_option(required: bool = True) -> Callable[[F], F]:
    """``--temps`` as a comma list ``1.0,2.5`` or a range ``start:stop:count``."""
    return click.option(
        "--temps",
        required=required,
        callback=_parse_temps_callback,
        help="Temperatures: a comma list '1.0,2.5' or a range 'start:stop:count' (inclusive).",
    )


def parse_option(text: str, hint: str = "--option") -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE read as JSON where it can be (``20``, ``1e-3``, ``true``,
    ``null``), ``none`` as None, and as a string otherwise (``bernoulli``)."""
    key, sep, value = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key:
        raise click.BadParameter(f"{text!r} is not KEY=VALUE", param_hint=hint)
    value = value.strip()
    if value.lower() == "none":
        return key, None
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _model_options_callback(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, Any]:
    return dict(parse_option(v, "--model-option") for v in values)


def model_options(function: F) -> F:
    """``--size``, ``--temps``, ``--boundary``, ``--coupling`` and ``--model-option``: a model
    and its temperature grid."""
    decorators = [
        click.option(
            "--size", required=True, help="Lattice size: '6' for a chain, '10' or '10x12'."
        ),
        temps_option(),
        click.option(
            "--boundary",
            default=None,
            help="Boundary condition, one of the model's own (default: its first; "
            "`spinbench list models --format json` shows them).",
        ),
        click.option(
            "--coupling", "J", type=float, default=1.0, show_default=True, help="Coupling J."
        ),
        click.option(
            "--model-option",
            "model_option",
            multiple=True,
            metavar="KEY=VALUE",
            callback=_model_options_callback,
            help="A model option, e.g. --model-option h=0.3 (a field); repeatable.",
        ),
    ]
    return _stacked(decorators)(function)


#: Metropolis's run length (the paper's protocol), the defaults of the run-length options; the
#: literals keep the samplers, and with them jax, out of the command line's start-up.
RUN_LENGTH_DEFAULTS = {"chains": 20, "warmup": 2000, "sweeps": 10000, "every": 20}


def run_length_options(
    *, chains: str = "--chains", checked: bool = False, subject: str = ""
) -> Callable[[F], F]:
    """``--chains`` (or the spelling ``chains``), ``--warmup``, ``--sweeps`` and ``--every``.

    ``checked``: click refuses counts out of range (for a Metropolis run the command builds);
    otherwise any integer passes to the sampler, whose own check names its rule. ``subject``
    starts each help text (e.g. ``"Metropolis"``)."""

    def count(minimum: int) -> Any:
        return click.IntRange(min=minimum) if checked else int

    def described(text: str) -> str:
        return f"{subject} {text}." if subject else f"{text[0].upper()}{text[1:]}."

    decorators = [
        click.option(
            chains,
            "chains",
            type=count(1),
            default=RUN_LENGTH_DEFAULTS["chains"],
            show_default=True,
            help=described("chains per T"),
        ),
        click.option(
            "--warmup",
            type=count(0),
            default=RUN_LENGTH_DEFAULTS["warmup"],
            show_default=True,
            help=described("warm-up sweeps"),
        ),
        click.option(
            "--sweeps",
            type=count(1),
            default=RUN_LENGTH_DEFAULTS["sweeps"],
            show_default=True,
            help=described("measured sweeps"),
        ),
        click.option(
            "--every",
            type=count(1),
            default=RUN_LENGTH_DEFAULTS["every"],
            show_default=True,
            help=described("sweeps between measurements"),
        ),
    ]
    return _stacked(decorators)


def _stacked(decorators: list[Callable[[F], F]]) -> Callable[[F], F]:
    """One decorator applying ``decorators`` so that their options list in that order."""

    def apply(function: F) -> F:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


def _parse_temps_callback(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    try:
        return parse_temps(value)
    except ValueError as error:
        raise click.BadParameter(str(error), ctx=ctx, param=param) from error


def build_model(
    name: str,
    size: str,
    boundary: str | None,
    J: float = 1.0,
    options: dict[str, Any] | None = None,
) -> AbstractModel:
    """Resolve a model by name and build it, turning user errors into click errors."""
    try:
        cls = get_model(name)
        return cls.from_size(size, boundary=boundary, J=J, **(options or {}))  # type: ignore[attr-defined]
    except (RegistryError, ModelError) as error:
        raise click.ClickException(str(error)) from error
    except TypeError as error:  # a plugin model whose from_size takes no options
        raise click.ClickException(f"{name} takes no model options: {error}") from error


def clean(value: Any) -> Any:
    """A plain value: numpy scalars as Python ones, NaN as None (blank, never a fake number);
    infinities stay (printed ``inf``; a z of inf is a zero error bar on a wrong value)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def emit(records: Sequence[Mapping[Any, Any]], output_format: str, columns: Sequence[str]) -> None:
    """Print records as an aligned table, JSON (a list of flat records) or CSV."""
    rows = [{c: clean(r.get(c)) for c in columns} for r in records]
    if output_format == "json":
        click.echo(json.dumps(encode_json(rows), indent=2))
    elif output_format == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        click.echo(buffer.getvalue(), nl=False)
    else:
        click.echo(render_table(rows, columns))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def render_table(rows: Sequence[Mapping[Any, Any]], columns: Sequence[str]) -> str:
    """Rows as a plain aligned text table: numbers right-aligned, text left-aligned (a column
    is numeric when every value in it that is there is a number)."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    numeric = [
        any(row.get(c) is not None for row in rows)
        and all(row.get(c) is None or _is_number(row.get(c)) for row in rows)
        for c in columns
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if right else v.ljust(w)
            for v, w, right in zip(values, widths, numeric, strict=True)
        ).rstrip()

    lines = [line([c.ljust(w) for c, w in zip(columns, widths, strict=True)])]
    lines.append("  ".join("-" * w for w in widths))
    lines += [line(r) for r in cells]
    return "\n".join(lines)
