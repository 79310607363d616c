"""``spinbench train``: train a generator on cached Metropolis data and sample from it.

The single-cell path of the benchmark: the reference configurations come from the same
cache as ``spinbench sample`` (same request, same folder), the generator trains on every
temperature at once, and its samples go through the same analysis as the sampler's. The
trained generator and its samples are saved under ``--out``.

Temperatures whose training diverged give a ``diverged`` record naming the temperature and step
instead of numbers; when every temperature diverged the command fails.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
import numpy as np

from .._analysis import RECORD_KEYS, analyse
from .._errors import OptionError
from .._registry import RegistryError, get_generator, get_sampler
from .._resources import configuration_memory, generator_memory, memory_problem
from .._samples import Samples, cached
from ..generators._base import TrainingDiverged
from .common import (
    build_model,
    emit,
    format_option,
    model_options,
    parse_option,
    run_length_options,
)
from .sample import default_cache

COLUMNS = (*RECORD_KEYS, "status", "reason")


def reference_samples(
    model: Any, temps: np.ndarray, options: dict[str, Any], seed: int, cache: Path
) -> tuple[Samples, bool]:
    """The Metropolis configurations for this request, from the cache or freshly sampled.

    The request (and so the cache folder) is the one ``spinbench sample`` makes with the same
    options and seed.
    """
    import jax

    try:
        sampler = get_sampler("metropolis").from_options(**options)  # type: ignore[attr-defined]
    except (RegistryError, OptionError) as error:
        raise click.ClickException(str(error)) from error
    problem = sampler.supports(model)
    if problem is not None:
        raise click.ClickException(f"metropolis cannot sample {model.name}: {problem}")

    def produce() -> Samples:
        return sampler.sample(model, temps, key=jax.random.key(seed), seed=seed, progress=None)

    return cached(cache, model.describe(), temps, sampler.name, sampler.settings(), seed, produce)


def train_records(model: Any, trained: Any, samples: Samples, exact: Any) -> list[dict[str, Any]]:
    """Analysis records of the finite temperatures, a ``diverged`` record for each other one."""
    failures = trained.failure_records()
    failed = {f["T"] for f in failures}
    records = [
        {**r, "status": "ok", "reason": None}
        for r in analyse(model, samples, exact=exact)
        if float(r["T"]) not in failed
    ]
    base = {
        "model": model.name,
        "size": model.size,
        "boundary": model.boundary,
        "options": model.options_label(),
    }
    for failure in failures:
        records.append(
            {
                **base,
                "method": trained.generator.name,
                "T": failure["T"],
                "observable": None,
                "status": "diverged",
                "reason": failure["reason"],
            }
        )
    return records


@click.command("train")
@click.argument("generator_name", metavar="GENERATOR")
@click.argument("model_name", metavar="MODEL")
@model_options
@click.option(
    "--option",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="A generator option, e.g. --option epochs=200 --option likelihood=bernoulli.",
)
@click.option(
    "--samples",
    "n_samples",
    type=click.IntRange(min=1),
    default=10000,
    show_default=True,
    help="Configurations generated per temperature.",
)
@run_length_options(chains="--reference-chains", checked=True, subject="Metropolis")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where the trained generator and its samples go (default: trained/GENERATOR-MODEL-SIZE).",
)
@click.option(
    "--cache",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Cache of Metropolis samples (default: that of `spinbench sample`).",
)
@format_option()
def train_command(
    generator_name: str,
    model_name: str,
    size: str,
    temps: np.ndarray,
    boundary: str | None,
    J: float,
    model_option: dict[str, Any],
    options: tuple[str, ...],
    n_samples: int,
    chains: int,
    warmup: int,
    sweeps: int,
    every: int,
    seed: int,
    out: Path | None,
    cache: Path | None,
    output_format: str,
) -> None:
    """Train GENERATOR on Metropolis configurations of MODEL at each temperature, generate
    samples, and print their estimates beside the exact values.

    The training data are the Metropolis sample set of `spinbench sample` with the same
    model, temperatures, --reference-chains/--warmup/--sweeps/--every and --seed (reused from
    the cache when it is there).
    """
    import jax

    model = build_model(model_name, size, boundary, J, model_option)
    try:
        cls = get_generator(generator_name)
        generator = cls.from_options(**dict(parse_option(o) for o in options))  # type: ignore[attr-defined]
    except RegistryError as error:
        message = str(error)
        if error.registered_as == "samplers":
            message += (
                f". A sampler needs no training: "
                f"spinbench sample {model.name} --sampler {generator_name} --size ... --temps ..."
            )
        raise click.ClickException(message) from error
    except OptionError as error:
        raise click.ClickException(str(error)) from error
    n_data = chains * (sweeps // max(1, every))
    estimate = generator_memory(model, len(temps), n_data, n_samples)
    estimate += configuration_memory(model, len(temps) * n_data)  # the training data
    too_big = memory_problem(estimate, f"training {generator.name} on {model.name} {model.size}")
    if too_big is not None:  # before supports(), which may build per-site tables
        raise click.ClickException(
            f"{too_big}; use a smaller lattice, fewer temperatures or samples"
        )
    problem = generator.supports(model)
    if problem is not None:
        raise click.ClickException(f"{generator.name} cannot learn {model.name}: {problem}")
    reference_options = {
        "chains": chains,
        "warmup": warmup,
        "sweeps": sweeps,
        "every": every,
    }
    root = cache if cache is not None else default_cache()
    try:
        data, reused = reference_samples(model, temps, reference_options, seed, root)
    except OSError as error:
        raise click.ClickException(f"cannot write samples under {root}: {error}") from error
    click.echo(f"{'reused' if reused else 'saved'} Metropolis samples in {root}", err=True)

    key = jax.random.key(seed)
    start = time.perf_counter()
    trained = generator.fit(model, data, key=jax.random.fold_in(key, 1))
    trained.seed = seed
    elapsed = time.perf_counter() - start
    click.echo(
        f"trained {generator.name} on {len(temps)} temperatures in {elapsed:.1f} s", err=True
    )
    samples = trained.generate(n_samples, key=jax.random.fold_in(key, 2), seed=seed)
    target = (
        out if out is not None else Path("trained") / f"{generator.name}-{model.name}-{model.size}"
    )
    try:
        trained.save(target / "generator")
        samples.save(target / "samples")
    except OSError as error:
        raise click.ClickException(f"cannot write under {target}: {error}") from error
    click.echo(f"saved the trained generator and its samples in {target}", err=True)

    for failure in trained.failure_records():
        click.echo(f"warning: {failure['reason']}", err=True)
    if trained.diverged.all():
        try:
            trained.raise_if_diverged()
        except TrainingDiverged as error:
            raise click.ClickException(str(error)) from error
    try:
        exact = model.exact(temps)
    except (ValueError, NotImplementedError) as error:
        click.echo(f"warning: no exact values: {error}", err=True)
        exact = None
    emit(train_records(model, trained, samples, exact), output_format, COLUMNS)
