"""Grid presets shipped with spinbench (TOML files beside this module)."""

from __future__ import annotations

import difflib
import tomllib
from importlib import resources

from .._grid import GridError, GridSpec, parse_grid


def _files() -> dict[str, str]:
    folder = resources.files(__name__)
    return {
        entry.name.removesuffix(".toml"): entry.read_text()
        for entry in folder.iterdir()
        if entry.name.endswith(".toml")
    }


def list_presets() -> list[dict[str, str]]:
    """Name and one-line description of every preset."""
    return [
        {"name": name, "description": str(tomllib.loads(text).get("description", ""))}
        for name, text in sorted(_files().items())
    ]


def load_preset(name: str) -> GridSpec:
    """The grid of preset ``name``; a clear error listing the presets if unknown."""
    files = _files()
    if name not in files:
        message = f"unknown preset {name!r}; valid presets: {', '.join(sorted(files))}"
        close = difflib.get_close_matches(name, list(files), n=1)
        if close:
            message += f". Did you mean {close[0]!r}?"
        raise GridError(message)
    return parse_grid(files[name], f"preset {name}")
