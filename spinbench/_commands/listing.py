"""``spinbench list``: what is registered, and which plugin provides it."""

from __future__ import annotations

import json

import click

from .._presets import list_presets
from .._registry import KINDS, get_registry
from .common import format_option, render_table

EXTRA_KINDS = ("presets",)


@click.command("list")
@click.argument("kind", required=False, type=click.Choice([*KINDS, *EXTRA_KINDS]))
@format_option(("table", "json"))
def list_command(kind: str | None, output_format: str) -> None:
    """List registered models, samplers, generators (or grid presets)."""
    registry = get_registry()
    kinds = [kind] if kind else list(KINDS)
    records: list[dict[str, str]] = []
    for k in kinds:
        if k == "presets":
            records += [{"kind": "presets", **p} for p in list_presets()]
            continue
        for name in registry.names(k):  # type: ignore[arg-type]
            entry = registry.entries[k][name]  # type: ignore[index]
            doc = (entry.cls.__doc__ or "").strip().splitlines()
            records.append(
                {
                    "kind": k,
                    "name": name,
                    "plugin": entry.plugin,
                    "distribution": entry.distribution,
                    "description": doc[0] if doc else "",
                }
            )
    if output_format == "json":
        click.echo(json.dumps(records, indent=2))
    else:
        columns = ["kind", "name", "distribution", "description"]
        click.echo(render_table(records, columns))
