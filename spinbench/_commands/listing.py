"""``spinbench list``: what is registered, and which plugin provides it.

The registered classes come from :func:`spinbench._listing.listing` (cached, so listing
imports no JAX); presets are read from the TOML files shipped with spinbench.
"""

from __future__ import annotations

import json

import click

from .._listing import listing
from .._presets import list_presets
from .._registry import KINDS
from .common import format_option, render_table

EXTRA_KINDS = ("presets",)


@click.command("list")
@click.argument("kind", required=False, type=click.Choice([*KINDS, *EXTRA_KINDS]))
@format_option(("table", "json"))
def list_command(kind: str | None, output_format: str) -> None:
    """List registered models, samplers, generators (or grid presets)."""
    kinds = [kind] if kind else list(KINDS)
    records: list[dict[str, str]] = []
    if "presets" in kinds:
        records += [{"kind": "presets", **p} for p in list_presets()]
    else:
        registered, problems, cached = listing()
        if cached:  # a fresh listing's problems were reported as the registry loaded
            for problem in problems:
                click.echo(f"warning: {problem}", err=True)
        records += [r for r in registered if r["kind"] in kinds]
    if output_format == "json":
        click.echo(json.dumps(records, indent=2))
    else:
        columns = ["kind", "name", "description"]
        if kind != "presets":
            columns.insert(2, "distribution")
        click.echo(render_table(records, columns))
