"""The plugin registry: one path for built-ins and third-party plugins.

Plugins are found through the ``spinbench`` entry-point group (spinbench's own built-ins are
registered there too, from its ``pyproject.toml``). A plugin that fails to import (an exception
or ``SystemExit``; a ``KeyboardInterrupt`` still stops everything), whose hook raises, or that
returns something that is not a proper subclass is skipped, and everything else keeps working.
Two plugins that register the same name make that name an error naming both; the other names
keep working.

Each such problem is recorded in :attr:`Registry.problems` and reported once: as a
:class:`PluginWarning` to a library user, or, inside :func:`reporting_problems` (the command
line), to the function it is given.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import importlib.metadata
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import pluggy

from . import _hookspecs as hookspecs
from ._errors import RegistryError

Kind = Literal["models", "samplers", "generators"]
KINDS: tuple[Kind, ...] = ("models", "samplers", "generators")
ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME
DISABLE_AUTOLOAD_ENV = "SPINBENCH_DISABLE_PLUGIN_AUTOLOAD"
BUILTIN_PLUGIN = "spinbench._builtin"


class PluginWarning(UserWarning):
    """A plugin could not be loaded or broke the contract; it was skipped."""


@dataclass(frozen=True)
class Entry:
    """One registered class and where it came from."""

    kind: Kind
    name: str
    cls: type
    plugin: str
    distribution: str


@dataclass
class Registry:
    """Registered models, samplers and generators, by kind and name."""

    entries: dict[Kind, dict[str, Entry]] = field(default_factory=lambda: {k: {} for k in KINDS})
    conflicts: dict[tuple[Kind, str], list[Entry]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def names(self, kind: Kind) -> list[str]:
        """Sorted names of one kind, excluding names claimed by two plugins."""
        return sorted(self.entries[kind])

    def get(self, kind: Kind, name: str) -> type:
        """Return the class registered as ``name``; a clear error if unknown or ambiguous."""
        return self.entry(kind, name).cls

    def entry(self, kind: Kind, name: str) -> Entry:
        """Return the :class:`Entry` for ``name`` (see :meth:`get`)."""
        if kind not in self.entries:
            raise RegistryError(f"unknown kind {kind!r}; valid kinds: {', '.join(KINDS)}")
        key = name.lower()
        if (kind, key) in self.conflicts:
            who = " and ".join(
                f"plugin {e.plugin!r} ({e.distribution})" for e in self.conflicts[kind, key]
            )
            raise RegistryError(f"{kind[:-1]} name {name!r} is registered twice: by {who}")
        if key in self.entries[kind]:
            return self.entries[kind][key]
        valid = self.names(kind)
        other = self.kind_of(key)
        if other is not None:
            raise RegistryError(
                f"{name!r} is a {other[:-1]}, not a {kind[:-1]}; valid {kind}: "
                f"{', '.join(valid) or '(none)'}",
                registered_as=other,
            )
        message = f"unknown {kind[:-1]} {name!r}; valid names: {', '.join(valid) or '(none)'}"
        close = difflib.get_close_matches(key, valid, n=1)
        if close:
            message += f". Did you mean {close[0]!r}?"
        raise RegistryError(message)

    def kind_of(self, name: str) -> Kind | None:
        """The first kind (in :data:`KINDS` order) under which ``name`` is registered, else None."""
        key = name.lower()
        for kind in KINDS:
            if key in self.entries[kind] or (kind, key) in self.conflicts:
                return kind
        return None

    def add(self, entry: Entry) -> None:
        """Add one entry, turning a second claim on a name into a recorded conflict.

        Samplers and generators share one namespace (grids name methods by name alone).
        """
        methods: tuple[Kind, ...] = ("samplers", "generators")
        kinds = methods if entry.kind in methods else (entry.kind,)
        for kind in kinds:
            if (kind, entry.name) in self.conflicts:
                self.conflicts[kind, entry.name].append(entry)
                return
        previous = next(
            (self.entries[k].pop(entry.name) for k in kinds if entry.name in self.entries[k]), None
        )
        if previous is None:
            self.entries[entry.kind][entry.name] = entry
            return
        for kind in {previous.kind, entry.kind}:
            self.conflicts[kind, entry.name] = [previous, entry]
        self._problem(
            f"{entry.kind[:-1]} name {entry.name!r} is registered by both plugin "
            f"{previous.plugin!r} ({previous.distribution}) and plugin {entry.plugin!r} "
            f"({entry.distribution}); it cannot be used until one is removed"
        )

    def _problem(self, message: str) -> None:
        self.problems.append(message)


def _base_for(kind: Kind) -> type:
    # Imported here, not above: the bases import JAX, which `spinbench list` should not pay
    # for when it reads its listing from the cache (spinbench._listing).
    from .generators._base import AbstractGenerator
    from .models._base import AbstractModel
    from .samplers._base import AbstractSampler

    return {"models": AbstractModel, "samplers": AbstractSampler}.get(kind, AbstractGenerator)


def _contract_problem(kind: Kind, cls: Any) -> str | None:
    """Why ``cls`` cannot be registered as ``kind``, or None if it can."""
    base = _base_for(kind)
    if not isinstance(cls, type) or not issubclass(cls, base):
        return f"returned {cls!r}, which is not a subclass of {base.__name__}"
    abstract = getattr(cls, "__abstractmethods__", None)
    if abstract:
        missing = ", ".join(sorted(abstract))
        return f"returned {cls.__name__}, which does not implement {missing}"
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name or name != name.lower() or name.strip() != name:
        return f"returned {cls.__name__} with name {name!r}; a non-empty lowercase str is required"
    return None


def _make_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    return pm


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def _distribution_name(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.name if dist is not None else "unknown"


#: What a plugin may raise without stopping spinbench: any error, and ``sys.exit()`` in its
#: import; ``KeyboardInterrupt`` (a real Ctrl-C) is not among them.
_PLUGIN_FAILURES = (Exception, SystemExit)


def _described(error: BaseException) -> str:
    """``SystemExit: 3``, or the type alone when the error has no message."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def load_registry(
    extra_plugins: Iterable[tuple[str, object]] = (), *, warn: bool = True
) -> Registry:
    """Build a registry from the entry-point group, plus ``extra_plugins`` (name, object).

    Third-party entry points are skipped when ``SPINBENCH_DISABLE_PLUGIN_AUTOLOAD`` is set to
    a non-empty value other than ``0``. Problems are in ``problems``; ``warn`` also issues a
    :class:`PluginWarning` for each.
    """
    registry = _load(extra_plugins)
    if warn:
        for problem in registry.problems:
            warnings.warn(problem, PluginWarning, stacklevel=2)
    return registry


def _load(extra_plugins: Iterable[tuple[str, object]]) -> Registry:
    registry = Registry()
    pm = _make_plugin_manager()
    plugins: list[tuple[str, str, object]] = []  # (plugin name, distribution, module)
    autoload = os.environ.get(DISABLE_AUTOLOAD_ENV, "") in ("", "0")
    seen_builtin = False
    for ep in _entry_points():
        dist = _distribution_name(ep)
        is_builtin = ep.value == BUILTIN_PLUGIN
        if not is_builtin and not autoload:
            continue
        if is_builtin:
            if seen_builtin:
                continue
            seen_builtin = True
        try:
            module = ep.load()
        except _PLUGIN_FAILURES as error:  # third-party code must not break spinbench
            registry._problem(
                f"plugin {ep.name!r} ({dist}) failed to import and was skipped: {_described(error)}"
            )
            continue
        plugins.append((ep.name, dist, module))
    if not seen_builtin:  # running from a source tree that was never installed
        plugins.insert(0, ("builtin", "spinbench", importlib.import_module(BUILTIN_PLUGIN)))
    plugins.extend((name, "(registered in code)", obj) for name, obj in extra_plugins)

    for plugin_name, dist, module in plugins:
        try:
            pm.register(module, name=f"{dist}:{plugin_name}")
        except _PLUGIN_FAILURES as error:
            registry._problem(
                f"plugin {plugin_name!r} ({dist}) is invalid and was skipped: {error}"
            )
            continue
        unknown = _unknown_hooks(module)
        if unknown:
            registry._problem(
                f"plugin {plugin_name!r} ({dist}) defines unknown hook(s) {', '.join(unknown)}; "
                f"valid hooks: {', '.join(_hook_names())}"
            )
        for kind in KINDS:
            _collect(registry, kind, module, plugin_name, dist)
    return registry


def _hook_names() -> list[str]:
    return [f"spinbench_register_{kind}" for kind in KINDS]


def _unknown_hooks(module: object) -> list[str]:
    names = [n for n in dir(module) if n.startswith("spinbench_")]
    return [n for n in names if n not in _hook_names()]


def _collect(registry: Registry, kind: Kind, module: object, plugin: str, dist: str) -> None:
    hook = getattr(module, f"spinbench_register_{kind}", None)
    if hook is None:
        return
    try:
        classes = list(hook())
    except _PLUGIN_FAILURES as error:
        registry._problem(
            f"plugin {plugin!r} ({dist}): spinbench_register_{kind}() raised "
            f"{_described(error)}; its {kind} were skipped"
        )
        return
    for cls in classes:
        problem = _contract_problem(kind, cls)
        if problem is not None:
            registry._problem(f"plugin {plugin!r} ({dist}) {problem}; skipped")
            continue
        registry.add(Entry(kind, cls.name, cls, plugin, dist))


_REGISTRY: Registry | None = None
#: Who hears of the process-wide registry's problems instead of PluginWarning, and the
#: registry whose problems it has heard (see :func:`reporting_problems`).
_REPORT: Callable[[str], None] | None = None
_REPORTED: Registry | None = None


def get_registry(*, reload: bool = False) -> Registry:
    """The process-wide registry, loaded on first use."""
    global _REGISTRY, _REPORTED
    if _REGISTRY is None or reload:
        _REGISTRY = load_registry(warn=_REPORT is None)
    if _REPORT is not None and _REPORTED is not _REGISTRY:
        _REPORTED = _REGISTRY
        for problem in _REGISTRY.problems:
            _REPORT(problem)
    return _REGISTRY


@contextlib.contextmanager
def reporting_problems(report: Callable[[str], None]) -> Iterator[None]:
    """Inside the block, each problem of the process-wide registry goes once to ``report``, when
    the registry is first used, instead of a PluginWarning: the command line prints one line
    per problem rather than a warning with spinbench's own file and line."""
    global _REPORT, _REPORTED
    previous = _REPORT, _REPORTED
    _REPORT, _REPORTED = report, None
    try:
        yield
    finally:
        _REPORT, _REPORTED = previous


@contextlib.contextmanager
def plugins_registered(*plugins: tuple[str, object]) -> Iterator[Registry]:
    """Inside the block, the process-wide registry holds these plugins too: ``(name, module or
    object with hook functions)``, registered as an installed plugin would be. For tests of a
    plugin before it is installed, or of parts defined in a test module::

        with spinbench.plugins_registered(("my-test", my_module)):
            spinbench.get_model("my-model")
    """
    global _REGISTRY
    previous = _REGISTRY
    _REGISTRY = load_registry(plugins, warn=_REPORT is None)
    try:
        yield _REGISTRY
    finally:
        _REGISTRY = previous


def get_model(name: str) -> type:
    """The model class registered as ``name``."""
    return get_registry().get("models", name)


def get_sampler(name: str) -> type:
    """The sampler class registered as ``name``."""
    return get_registry().get("samplers", name)


def get_generator(name: str) -> type:
    """The generator class registered as ``name``."""
    return get_registry().get("generators", name)


def get_method(name: str) -> Entry:
    """A sampler or generator by name (methods share one namespace in grids)."""
    registry = get_registry()
    for kind in ("samplers", "generators"):
        if name.lower() in registry.entries[kind] or (kind, name.lower()) in registry.conflicts:
            return registry.entry(kind, name)
    valid = registry.names("samplers") + registry.names("generators")
    if registry.kind_of(name) == "models":
        raise RegistryError(
            f"{name!r} is a model, not a method; valid methods (samplers and generators): "
            f"{', '.join(sorted(valid))}",
            registered_as="models",
        )
    message = f"unknown method {name!r}; valid names: {', '.join(sorted(valid))}"
    close = difflib.get_close_matches(name.lower(), valid, n=1)
    if close:
        message += f". Did you mean {close[0]!r}?"
    raise RegistryError(message)


__all__ = [
    "Entry",
    "PluginWarning",
    "Registry",
    "RegistryError",
    "get_generator",
    "get_method",
    "get_model",
    "get_registry",
    "get_sampler",
    "load_registry",
    "plugins_registered",
    "reporting_problems",
]
