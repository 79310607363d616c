"""``spinbench run`` and ``spinbench report``: the benchmark grid and its report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .._dask import DaskExecutor, SchedulerUnreachable
from .._grid import GridError, GridSpec, load_grid
from .._presets import load_preset
from .._report import ReportError, write_report
from .._resources import ResourceError
from .._run_folder import RunFolderError
from .._runner import Executor, LocalExecutor, Runner


def select_device(device: str | None) -> None:
    """Make ``cpu`` or ``gpu`` JAX's default device; a clear error if there is none."""
    if device is None:
        return
    import jax

    try:
        devices = jax.devices(device)
    except RuntimeError as error:
        hint = (
            " JAX here is CPU-only: install the GPU build with `pip install '.[cuda]'` (from a "
            "spinbench checkout; `pip install 'jax[cuda12]'` does the same)"
            if device == "gpu"
            else ""
        )
        raise click.ClickException(
            f"--device {device}: no such device is available here ({error});{hint}. "
            "Use --device cpu, or leave it out to take a GPU when there is one"
        ) from error
    jax.config.update("jax_default_device", devices[0])


class GridProblem(click.ClickException):
    """A grid that cannot run: exit status 2, like any other bad input."""

    exit_code = 2


def resolve_grid(preset: str | None, config: Path | None) -> GridSpec:
    """The grid named by ``--preset`` or ``--config`` (``paper`` when neither is given)."""
    if preset and config:
        raise click.UsageError("give either --preset or --config, not both")
    try:
        return load_grid(config) if config else load_preset(preset or "paper")
    except GridError as error:
        raise GridProblem(str(error)) from error


def _fs_error(error: OSError) -> click.ClickException:
    """One line naming the path the file system refused, and why."""
    path = error.filename or "the output folder"
    reason = error.strerror or type(error).__name__
    if isinstance(error, IsADirectoryError | NotADirectoryError | FileExistsError):
        reason = f"{reason} (a file stands where a folder is needed, or the other way round)"
    return click.ClickException(f"cannot write {path}: {reason}")


def make_executor(
    name: str,
    workers: int | None,
    scheduler: str | None,
    *,
    gpu: bool,
    log: Any,
) -> Executor:
    """The executor ``--executor`` names, with its options checked."""
    if name == "local":
        if workers is not None or scheduler is not None:
            raise click.UsageError("--workers and --scheduler go with --executor dask")
        return LocalExecutor()
    if workers is not None and scheduler is not None:
        raise click.UsageError(
            "give --workers (a cluster on this machine) or --scheduler (a running one), not both"
        )
    return DaskExecutor(workers=workers, scheduler=scheduler, gpu=gpu, log=log)


@click.command("run")
@click.option("--preset", help="A grid shipped with spinbench (see `spinbench list presets`).")
@click.option("--config", type=click.Path(path_type=Path, dir_okay=False), help="A grid TOML file.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("results"),
    show_default=True,
    help="Output folder; an interrupted run restarted here skips finished cells.",
)
@click.option("--device", type=click.Choice(["cpu", "gpu"]), help="Force a JAX device.")
@click.option("--seed", type=click.IntRange(min=0), help="Override the grid's seed.")
@click.option(
    "--force",
    is_flag=True,
    help="Write into an --out that holds files spinbench did not write.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Also exit with status 1 when rows are flagged (unconverged, degenerate, diverged).",
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option(
    "--executor",
    type=click.Choice(["local", "dask"]),
    default="local",
    show_default=True,
    help="Run cells here, one after the other, or as Dask tasks (see --workers, --scheduler).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="With --executor dask: a local cluster of this many worker processes (default 2).",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="With --executor dask: a running Dask scheduler, e.g. tcp://head-node:8786; its "
    "workers must see --out (a shared file system).",
)
def run_command(
    preset: str | None,
    config: Path | None,
    out: Path,
    device: str | None,
    seed: int | None,
    force: bool,
    strict: bool,
    quiet: bool,
    executor: str,
    workers: int | None,
    scheduler: str | None,
) -> None:
    """Run a grid of models x methods x temperatures into OUT (default: the paper preset).

    The whole grid is checked first (names, sizes, options, which method runs on which model,
    memory) and every problem is listed; nothing is written until it passes. OUT belongs to
    one run at a time (a second concurrent run is refused) and must be empty, new or a
    spinbench run folder (else --force). A rerun reuses each finished cell whose settings are
    unchanged and re-runs the rest (failed cells included).

    Exit status: 0 when every cell ran; 1 when a cell failed to run or a model's Monte Carlo
    reference is flagged (the table is written and the failures listed first); 2 for a bad
    command line or grid. Rows flagged as results that cannot be trusted (unconverged chains,
    a degenerate sample, diverged training) are listed at the end and keep status 0, unless
    --strict.
    """
    spec = resolve_grid(preset, config)
    if seed is not None:
        spec = spec.with_seed(seed)
    select_device(device)

    def log(message: str) -> None:
        click.echo(message, err=True)

    runner = Runner(
        spec,
        out,
        executor=make_executor(executor, workers, scheduler, gpu=device == "gpu", log=log),
        progress=not quiet,
        log=log,
        force=force,
    )
    try:
        runner.plan  # noqa: B018 -- checks the whole grid before anything is written
    except GridError as error:
        raise GridProblem(str(error)) from error
    try:
        table = runner.run()
    except (RunFolderError, ResourceError, SchedulerUnreachable) as error:
        raise click.ClickException(str(error)) from error
    except OSError as error:
        raise _fs_error(error) from error
    outcome = runner.outcome
    click.echo(f"table:   {out / 'results.csv'} ({len(table)} rows)")
    click.echo(f"summary: {out / 'summary.md'}")
    click.echo(f"report:  {out / 'report.html'}")
    click.echo(f"figures: {out / 'figures'}")
    if outcome.flagged:
        click.echo(f"{len(outcome.flagged)} flagged rows (results that cannot be trusted):")
        for line in outcome.flagged:
            click.echo(f"  {line}")
    for title, lines in (
        ("cells failed to run", outcome.failed),
        ("Monte Carlo references cannot be trusted", outcome.reference_flags),
    ):
        if lines:
            click.echo(f"{len(lines)} {title}:", err=True)
            for line in lines:
                click.echo(f"  {line}", err=True)
    code = outcome.exit_code(strict=strict)
    if code:
        raise SystemExit(code)


@click.command("report")
@click.argument("out", type=click.Path(path_type=Path, file_okay=False, exists=True))
def report_command(out: Path) -> None:
    """Rebuild summary.md, report.html and figures/ of a run folder OUT from its cells."""
    try:
        report = write_report(out)
    except ReportError as error:
        raise click.ClickException(str(error)) from error
    except OSError as error:
        raise _fs_error(error) from error
    if report.missing_cells:
        click.echo(
            f"partial run: {len(report.missing_cells)} cells are missing "
            f"({', '.join(report.missing_cells)}); the report covers the others",
            err=True,
        )
    click.echo(f"summary: {report.summary}")
    click.echo(f"report:  {report.html}")
    for figure in report.figures:
        click.echo(f"figure:  {figure}")
    for problem in report.problems:
        click.echo(f"not drawn: {problem}", err=True)
