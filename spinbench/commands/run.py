"""``spinbench run`` and ``spinbench report``: the benchmark grid and its report."""

from __future__ import annotations

from pathlib import Path

import click

from ..grid import GridError, GridSpec, load_grid


def select_device(device: str | None) -> None:
    """Make ``cpu`` or ``gpu`` JAX's default device; a clear error if there is none."""
    if device is None:
        return
    import jax

    try:
        devices = jax.devices(device)
    except RuntimeError as error:
        raise click.ClickException(
            f"--device {device}: no such device is available here ({error}); "
            "use --device cpu, or leave it out to take a GPU when there is one"
        ) from error
    jax.config.update("jax_default_device", devices[0])


def resolve_grid(preset: str | None, config: Path | None) -> GridSpec:
    """The grid named by ``--preset`` or ``--config`` (``paper`` when neither is given)."""
    from ..presets import load_preset

    if preset and config:
        raise click.UsageError("give either --preset or --config, not both")
    try:
        return load_grid(config) if config else load_preset(preset or "paper")
    except GridError as error:
        raise click.ClickException(str(error)) from error


@click.command("run")
@click.option("--preset", help="A grid shipped with spinbench (see `spinbench list presets`).")
@click.option("--config", type=click.Path(path_type=Path, dir_okay=False), help="A grid TOML file.")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("results"),
    show_default=True,
    help="Output folder; an interrupted run restarted here skips finished cells.",
)
@click.option("--device", type=click.Choice(["cpu", "gpu"]), help="Force a JAX device.")
@click.option("--seed", type=click.IntRange(min=0), help="Override the grid's seed.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def run_command(
    preset: str | None,
    config: Path | None,
    out: Path,
    device: str | None,
    seed: int | None,
    quiet: bool,
) -> None:
    """Run a grid of models x methods x temperatures into OUT (default: the paper preset)."""
    from ..runner import Runner

    spec = resolve_grid(preset, config)
    if seed is not None:
        spec = spec.with_seed(seed)
    select_device(device)
    _check_names(spec)
    runner = Runner(spec, out, progress=not quiet, log=lambda m: click.echo(m, err=True))
    table = runner.run()
    failed = table[table["status"] != "ok"]
    click.echo(f"table:   {out / 'results.csv'} ({len(table)} rows)")
    click.echo(f"summary: {out / 'summary.md'}")
    click.echo(f"figures: {out / 'figures'}")
    if len(failed):
        click.echo(f"{len(failed)} rows record failures; see the status and reason columns")


def _check_names(spec: GridSpec) -> None:
    """Resolve every name before any work starts, so a typo fails fast."""
    from ..registry import RegistryError, get_method, get_model, get_sampler

    try:
        get_sampler(spec.reference.sampler)
        for model in spec.models:
            get_model(model.name)
        for method in spec.methods:
            get_method(method.name)
    except RegistryError as error:
        raise click.ClickException(f"{spec.source}: {error}") from error


@click.command("report")
@click.argument("out", type=click.Path(path_type=Path, file_okay=False, exists=True))
def report_command(out: Path) -> None:
    """Rebuild summary.md and figures/ of a run folder OUT from its table."""
    from ..report import write_report

    if not (out / "results.csv").exists() and not (out / "cells").is_dir():
        raise click.ClickException(f"{out} holds no spinbench results (no results.csv, no cells/)")
    written = write_report(out)
    click.echo(f"summary: {written['summary']}")
    for figure in written["figures"]:
        click.echo(f"figure:  {figure}")
