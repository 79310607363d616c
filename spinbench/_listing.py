"""What ``spinbench list`` shows, cached so that listing does not import JAX.

Names and descriptions of registered classes come from the plugins' hooks, which return
classes, which import JAX: seconds to print a table. The listing is therefore kept in a small
JSON file in the user's cache (``$XDG_CACHE_HOME/spinbench/listing.json``, ``~/.cache`` by
default), under a key read from metadata alone: spinbench's version, the Python that runs it,
``SPINBENCH_DISABLE_PLUGIN_AUTOLOAD``, every entry point of the ``spinbench`` group with its
distribution's version, and the sizes and modification times of the ``.py`` files of each
entry point's top-level package (so an edited editable install is listed afresh). Any change
reloads the registry once and rewrites the file; a cache that cannot be read or written is
only a slower listing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

from . import _registry
from ._atomic import write_json_atomic
from ._registry import DISABLE_AUTOLOAD_ENV, KINDS, get_registry
from ._version import __version__

__all__ = ["CACHE_FILE", "listing"]

#: Where the listing is kept, below the cache folder.
CACHE_FILE = Path("spinbench") / "listing.json"


def cache_path() -> Path:
    """``$XDG_CACHE_HOME/spinbench/listing.json`` (``~/.cache`` without the variable)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / CACHE_FILE


def _sources(module: str) -> list[str]:
    """Size and modification time of every ``.py`` file of ``module``'s top-level package,
    found without importing it."""
    top = module.split(".")[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return [f"{top}: not found"]
    if spec is None:
        return [f"{top}: not found"]
    roots = list(spec.submodule_search_locations or [])
    files = [Path(spec.origin)] if not roots and spec.origin else []
    for root in roots:
        for folder, _, names in os.walk(root):
            files += [Path(folder, n) for n in names if n.endswith(".py")]
    stamps = []
    for path in sorted(files):
        try:
            stat = path.stat()
        except OSError:
            continue
        stamps.append(f"{path}:{stat.st_size}:{stat.st_mtime_ns}")
    return stamps


def cache_key() -> str:
    """A digest of everything the listing depends on that can be read without importing."""
    parts = [__version__, sys.executable, os.environ.get(DISABLE_AUTOLOAD_ENV, "")]
    # through the module, so that the key always sees the entry points the registry loads
    for ep in sorted(_registry._entry_points(), key=lambda e: e.name):
        dist = getattr(ep, "dist", None)
        version = f"{getattr(dist, 'name', '?')}=={getattr(dist, 'version', '?')}"
        parts += [ep.name, ep.value, version, *_sources(ep.value)]
    parts += _sources("spinbench")  # the built-ins, also when run from an uninstalled tree
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _from_registry() -> dict[str, Any]:
    registry = get_registry()
    records = []
    for kind in KINDS:
        for name in registry.names(kind):
            entry = registry.entries[kind][name]
            doc = (entry.cls.__doc__ or "").strip().splitlines()
            records.append(
                {
                    "kind": kind,
                    "name": name,
                    "plugin": entry.plugin,
                    "distribution": entry.distribution,
                    "description": doc[0].strip() if doc else "",
                }
            )
    return {"records": records, "problems": list(registry.problems)}


def listing() -> tuple[list[dict[str, str]], list[str], bool]:
    """Every registered class as a record (kind, name, plugin, distribution, description),
    the registry's problems, and whether they came from the cache (whose problems nobody
    has reported yet in this process)."""
    key = cache_key()
    path = cache_path()
    try:
        cached = json.loads(path.read_text())
        if cached.get("key") == key:
            return list(cached["records"]), list(cached["problems"]), True
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    fresh = _from_registry()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, {"key": key, **fresh})
    except OSError:  # a read-only home: list without the cache
        pass
    return fresh["records"], fresh["problems"], False
