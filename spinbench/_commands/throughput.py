"""``spinbench bench``: Metropolis throughput against a plain reference, side by side."""

from __future__ import annotations

import click

from .._throughput import QUICK_CASES, run_benchmarks
from .common import emit, format_option

COLUMNS = ("case", "implementation", "flips_per_ns", "ratio", "seconds", "sweeps", "device")


@click.command("bench")
@format_option(("table", "json"))
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Timed repeats per implementation (median reported).",
)
@click.option("--no-random-site", is_flag=True, help="Skip the (slower) random-site kernel.")
@click.option(
    "--no-generic", is_flag=True, help="Skip the generic checkerboard kernel (any model's)."
)
@click.option("--quick", is_flag=True, help="Tiny cases only: a smoke test, not a measurement.")
def throughput_command(
    output_format: str, repeats: int, no_random_site: bool, no_generic: bool, quick: bool
) -> None:
    """Attempted spin flips per ns of spinbench's kernels and a plain reference.

    2D Ising at T_c; the reference is a plain NumPy checkerboard on a CPU and a plain jitted
    JAX checkerboard on a GPU, timed in the same process; ratio = flips/ns over the
    reference's. Compilation is excluded; each figure is the median of --repeats calls.
    """
    records = run_benchmarks(
        repeats=repeats,
        cases=QUICK_CASES if quick else None,
        random_site=not no_random_site,
        generic=not no_generic,
    )
    emit(records, output_format, COLUMNS)
