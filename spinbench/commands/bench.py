"""``spinbench bench``: Metropolis throughput against a plain reference, side by side."""

from __future__ import annotations

import click

from .common import emit, format_option

COLUMNS = ("case", "implementation", "flips_per_ns", "ratio", "seconds", "device")


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
def bench_command(output_format: str, repeats: int, no_random_site: bool) -> None:
    """Attempted spin flips per ns of spinbench's kernels and a plain reference."""
    from ..bench import run_benchmarks

    records = run_benchmarks(repeats=repeats, random_site=not no_random_site)
    emit(records, output_format, COLUMNS)
