"""The ``spinbench`` command line: one click group, a subcommand per verb."""

from __future__ import annotations

import click

from ._commands.exact import exact_command
from ._commands.listing import list_command
from ._commands.run import report_command, run_command
from ._commands.sample import sample_command
from ._commands.throughput import bench_command
from ._commands.train import train_command
from ._registry import reporting_problems
from ._version import __version__


def _plugin_problem(problem: str) -> None:
    click.echo(f"warning: {problem}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="spinbench")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Benchmark samplers and generators of classical spin models against exact solutions."""
    ctx.with_resource(reporting_problems(_plugin_problem))  # one line per plugin problem


main.add_command(list_command)
main.add_command(exact_command)
main.add_command(run_command)
main.add_command(report_command)
main.add_command(sample_command)
main.add_command(train_command)
main.add_command(bench_command)

if __name__ == "__main__":  # pragma: no cover
    main()
