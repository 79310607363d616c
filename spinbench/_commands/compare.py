"""``spinbench compare RUN_A RUN_B``: what got better or worse between two runs."""

from __future__ import annotations

from pathlib import Path

import click

from .._atomic import write_text_atomic
from .._compare import COLUMNS, REGRESSIONS, THRESHOLD, compare_runs, html_comparison
from .common import emit, format_option

#: Columns of the table form (the JSON and CSV forms have every column).
TABLE_COLUMNS = (
    "model",
    "size",
    "method",
    "T",
    "observable",
    "r",
    "exact",
    "estimate_a",
    "estimate_b",
    "difference",
    "combined_stderr",
    "z_a",
    "z_b",
    "verdict",
    "reason",
)


@click.command("compare")
@click.argument("run_a", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.argument("run_b", type=click.Path(path_type=Path, file_okay=False, exists=True))
@format_option()
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help="Table form: list every row, not only those whose verdict is not 'same'.",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the comparison as one self-contained HTML page.",
)
def compare_command(
    run_a: Path, run_b: Path, output_format: str, show_all: bool, html_path: Path | None
) -> None:
    """Compare run folder RUN_B with RUN_A, row by matching row.

    Rows are matched by model, size, boundary, options, method, T, observable and r. Each
    gets B - A with the combined standard error and a verdict: worse / better (moved away
    from / towards the exact value by at least 4 combined errors, the run further from it
    having |z| >= 4; without an exact value, a TV or KL distance that grew / shrank so much),
    changed (moved, nothing to judge by), same, newly failed, newly flagged, fixed, only in
    A, only in B.

    Exit status: 1 when a row is worse, newly failed or newly flagged; 0 otherwise.
    """
    comparison = compare_runs(run_a, run_b)
    rows = comparison.rows
    if output_format == "table":
        shown = rows if show_all else rows[rows["verdict"] != "same"]
        counts = ", ".join(f"{n} {v}" for v, n in comparison.counts().items())
        click.echo(f"A: {run_a}\nB: {run_b}\n{len(rows)} rows: {counts}")
        if len(shown):
            emit(shown.to_dict(orient="records"), "table", TABLE_COLUMNS)
    else:
        emit(rows.to_dict(orient="records"), output_format, COLUMNS)
    if html_path is not None:
        write_text_atomic(html_path, html_comparison(comparison))
        click.echo(f"html: {html_path}", err=True)
    regressions = comparison.regressions
    if len(regressions):
        click.echo(
            f"{len(regressions)} rows got significantly worse ({', '.join(REGRESSIONS)}; "
            f"threshold {THRESHOLD:g} combined standard errors)",
            err=True,
        )
        raise SystemExit(1)
