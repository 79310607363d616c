"""The installed version of spinbench (recorded in every result's provenance)."""

from __future__ import annotations

import importlib.metadata

try:
    __version__ = importlib.metadata.version("spinbench")
except importlib.metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
