"""``spinbench bench``: Metropolis throughput against a plain reference, side by side."""

from __future__ import annotations

import click

from .._throughput import QUICK_CASES, run_benchmarks
from .common import emit, format_option

COLUMNS = (
    "case",
    "implementation",
    "flips_per_ns",
    "ratio",
    "vs_c",
    "vs_c_one",
    "seconds",
    "sweeps",
    "device",
)


@click.command("bench")
@format_option(("table", "json"))
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Interleaved rounds: timed calls per implementation (median reported).",
)
@click.option("--no-random-site", is_flag=True, help="Skip the (slower) random-site kernel.")
@click.option(
    "--no-generic", is_flag=True, help="Skip the generic checkerboard kernel (any model's)."
)
@click.option(
    "--no-c", is_flag=True, help="Skip the C multi-spin reference (built with the C compiler)."
)
@click.option("--quick", is_flag=True, help="Tiny cases only: a smoke test, not a measurement.")
def throughput_command(
    output_format: str,
    repeats: int,
    no_random_site: bool,
    no_generic: bool,
    no_c: bool,
    quick: bool,
) -> None:
    """Attempted spin flips per ns of spinbench's kernels and a plain reference.

    2D Ising at T_c; the reference is a plain NumPy checkerboard on a CPU and a plain jitted
    JAX checkerboard on a GPU, timed in the same process; ratio = flips/ns over the
    reference's. On a CPU a small C multi-spin reference (independent random numbers) is
    built with the system C compiler and timed too: vs_c = flips/ns over its bit-sliced form,
    vs_c_one over its one-number-per-decision form. Compilation is excluded; the
    implementations run in --repeats interleaved rounds and each figure is the median.
    """
    records = run_benchmarks(
        repeats=repeats,
        cases=QUICK_CASES if quick else None,
        random_site=not no_random_site,
        generic=not no_generic,
        c_reference=not no_c,
        note=lambda message: click.echo(message, err=True),
    )
    emit(records, output_format, COLUMNS)
