"""The ``spinbench`` command line: one click group, a subcommand per verb.

Every error about the user's input is a :class:`~spinbench.SpinbenchError`; the group turns
any that a command lets through into one ``Error: ...`` line and exit status 1 (2 for a bad
grid, like any bad command line), never a traceback.
"""

from __future__ import annotations

from typing import Any

import click

from ._commands.exact import exact_command
from ._commands.listing import list_command
from ._commands.run import GridProblem, report_command, run_command
from ._commands.sample import sample_command
from ._commands.throughput import throughput_command
from ._commands.train import train_command
from ._errors import GridError, SpinbenchError
from ._registry import reporting_problems
from ._version import __version__


class _Spinbench(click.Group):
    """The group: a SpinbenchError from any command is one error line, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GridError as error:
            raise GridProblem(str(error)) from error
        except SpinbenchError as error:
            raise click.ClickException(str(error)) from error


def _plugin_problem(problem: str) -> None:
    click.echo(f"warning: {problem}", err=True)


@click.group(cls=_Spinbench, context_settings={"help_option_names": ["-h", "--help"]})
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
main.add_command(throughput_command)

if __name__ == "__main__":  # pragma: no cover
    main()
