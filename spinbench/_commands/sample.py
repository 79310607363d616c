"""``spinbench sample``: Monte Carlo estimates of a model at a temperature grid, with error bars.

Configurations are cached per request (model, size, temperatures, sampler, settings, seed)
under ``--out`` and reused when the same request comes again.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

import click
import numpy as np

from .._analysis import RECORD_KEYS, analyse
from .._errors import OptionError
from .._methods import options_of
from .._registry import RegistryError, get_sampler
from .._resources import memory_problem, sampler_memory
from .._samples import Samples, cached
from ..samplers._base import AbstractSampler
from .common import build_model, emit, format_option, model_options, run_length_options

COLUMNS = (*RECORD_KEYS, "acceptance")

#: Environment variable naming the default cache folder for samples.
CACHE_ENV = "SPINBENCH_CACHE"

#: Command-line options forwarded to the sampler (where it has an option of that name).
SAMPLER_OPTIONS = ("chains", "warmup", "sweeps", "every", "update", "width")


def default_cache() -> Path:
    """``$SPINBENCH_CACHE``, else ``$XDG_CACHE_HOME/spinbench/samples`` (``~/.cache``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "spinbench" / "samples"


def build_sampler(
    name: str, given: dict[str, Any], explicit: set[str], *, model_name: str = "MODEL"
) -> AbstractSampler:
    """The sampler ``name`` built from the command-line options it has.

    An option the user typed that the sampler does not have is an error; defaults of options
    it does not have are left out. A generator's name says how to train it on ``model_name``.
    """
    try:
        cls: type[AbstractSampler] = get_sampler(name)
    except RegistryError as error:
        message = str(error)
        if error.registered_as == "generators":
            message += (
                f". A generator is trained, then sampled: "
                f"spinbench train {name} {model_name} --size ... --temps ..."
            )
        raise click.ClickException(message) from error
    valid = options_of(cls)
    unknown = sorted(explicit & set(given) - set(valid))
    if unknown:
        raise click.ClickException(
            f"sampler {cls.name!r} has no option {', '.join('--' + u for u in unknown)}; "
            f"its options: {', '.join(sorted(valid)) or '(none)'}"
        )
    options = {k: v for k, v in given.items() if k in valid and (k in explicit or v is not None)}
    try:
        return cls.from_options(**options)
    except OptionError as error:
        raise click.ClickException(str(error)) from error


def _produce(sampler: AbstractSampler, model: Any, temps: np.ndarray, seed: int) -> Samples:
    """Run the sampler (keyword ``seed`` and ``progress`` only where it accepts them)."""
    import jax

    accepted = inspect.signature(sampler.sample).parameters
    extra: dict[str, Any] = {}
    if "seed" in accepted:
        extra["seed"] = seed
    if "progress" in accepted:
        extra["progress"] = None  # a bar on stderr when it is a terminal
    return sampler.sample(model, temps, key=jax.random.key(seed), **extra)


@click.command("sample")
@click.argument("model_name", metavar="MODEL")
@model_options
@click.option(
    "--sampler",
    "sampler_name",
    default="metropolis",
    show_default=True,
    help="A registered sampler (see `spinbench list samplers`).",
)
@run_length_options()
@click.option(
    "--update",
    type=click.Choice(["random-site", "checkerboard"]),
    default=None,
    help="Metropolis update: random sites (the paper's, default) or sublattices at once.",
)
@click.option(
    "--width",
    type=float,
    default=None,
    help="Largest angle move for continuous spins (default: a new uniform angle).",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Random seed: the same seed on the same device gives the same samples.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help=f"Cache folder for samples (default: ${CACHE_ENV} or ~/.cache/spinbench/samples).",
)
@format_option()
@click.pass_context
def sample_command(
    ctx: click.Context,
    model_name: str,
    size: str,
    temps: np.ndarray,
    boundary: str | None,
    J: float,
    model_option: dict[str, Any],
    sampler_name: str,
    chains: int,
    warmup: int,
    sweeps: int,
    every: int,
    update: str | None,
    width: float | None,
    seed: int,
    out: Path | None,
    output_format: str,
) -> None:
    """Sample MODEL at each temperature; print estimates, error bars and exact values.

    One record per (T, observable, r): estimate, stderr, tau_int, ESS, R-hat, and the exact
    value, absolute error and z = |error| / stderr where an exact solution is known.
    """
    model = build_model(model_name, size, boundary, J, model_option)
    given = {
        "chains": chains,
        "warmup": warmup,
        "sweeps": sweeps,
        "every": every,
        "update": update,
        "width": width,
    }
    explicit = {
        name
        for name in SAMPLER_OPTIONS
        if ctx.get_parameter_source(name) not in (None, click.core.ParameterSource.DEFAULT)
    }
    sampler = build_sampler(sampler_name, given, explicit, model_name=model.name)
    too_big = memory_problem(
        sampler_memory(sampler, model, len(temps)), f"sampling {model.name} {model.size}"
    )
    if too_big is not None:  # before supports(), which may build per-site tables
        raise click.ClickException(
            f"{too_big}; use a smaller lattice, fewer chains or temperatures, or fewer "
            "measurements (a larger --every)"
        )
    problem = sampler.supports(model)
    if problem is not None:
        raise click.ClickException(
            f"sampler {sampler.name!r} cannot sample {model.name}: {problem}"
        )
    root = out if out is not None else default_cache()
    try:
        samples, reused = cached(
            root,
            model.describe(),
            temps,
            sampler.name,
            sampler.settings(),
            seed,
            lambda: _produce(sampler, model, temps, seed),
        )
    except OSError as error:
        raise click.ClickException(f"cannot write samples under {root}: {error}") from error
    click.echo(f"{'reused' if reused else 'saved'} samples in {root}", err=True)
    try:
        exact = model.exact(temps)
    except (ValueError, NotImplementedError) as error:
        click.echo(f"warning: no exact values: {error}", err=True)
        exact = None
    try:
        records = analyse(model, samples, exact=exact)
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    emit(records, output_format, COLUMNS)
