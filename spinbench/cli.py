"""The ``spinbench`` command line: one click group, a subcommand per verb.

Every error about the user's input is a :class:`~spinbench.SpinbenchError`; the group turns
any that a command lets through into one ``Error: ...`` line and exit status 1 (2 for a bad
grid, like any bad command line), never a traceback.

Subcommands load lazily (click's "lazily loading subcommands" pattern): ``spinbench --help``
imports no command, ``spinbench list`` only its own, so neither pays for JAX's import. The
group's help lists each command's short help from :data:`COMMANDS`; a test keeps those lines
equal to the commands' own.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from ._errors import GridError, SpinbenchError
from ._version import __version__

#: Each subcommand: the module and attribute that define it, and its one-line help.
COMMANDS: dict[str, tuple[str, str]] = {
    "bench": (
        "spinbench._commands.throughput:throughput_command",
        "Attempted spin flips per ns of spinbench's kernels and a plain reference.",
    ),
    "compare": (
        "spinbench._commands.compare:compare_command",
        "Compare run folder RUN_B with RUN_A, row by matching row.",
    ),
    "exact": (
        "spinbench._commands.exact:exact_command",
        "Exact energy, heat capacity, magnetisation and correlations of MODEL, or its exact "
        "energy distribution.",
    ),
    "list": (
        "spinbench._commands.listing:list_command",
        "List registered models, samplers, generators (or grid presets).",
    ),
    "report": (
        "spinbench._commands.run:report_command",
        "Rebuild summary.md, report.html and figures/ of a run folder OUT from its cells.",
    ),
    "run": (
        "spinbench._commands.run:run_command",
        "Run a grid of models x methods x temperatures into OUT (default: the paper preset).",
    ),
    "sample": (
        "spinbench._commands.sample:sample_command",
        "Sample MODEL at each temperature; print estimates, error bars and exact values.",
    ),
    "train": (
        "spinbench._commands.train:train_command",
        "Train GENERATOR on Metropolis configurations of MODEL at each temperature, generate "
        "samples, and print their estimates beside the exact values.",
    ),
}


def load_command(name: str) -> click.Command:
    """Import the subcommand ``name`` (a key of :data:`COMMANDS`)."""
    module, _, attribute = COMMANDS[name][0].partition(":")
    command = getattr(importlib.import_module(module), attribute)
    assert isinstance(command, click.Command), f"{COMMANDS[name][0]} is not a click command"
    return command


class _Spinbench(click.Group):
    """The group: subcommands imported when used; a SpinbenchError from any command is one
    error line, not a traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return load_command(cmd_name) if cmd_name in COMMANDS else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from :data:`COMMANDS`, without importing any command."""
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [
            (name, click.utils.make_default_short_help(help_text, limit))
            for name, (_, help_text) in sorted(COMMANDS.items())
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GridError as error:
            from ._commands.run import GridProblem

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
    from ._registry import reporting_problems

    ctx.with_resource(reporting_problems(_plugin_problem))  # one line per plugin problem


if __name__ == "__main__":  # pragma: no cover
    main()
