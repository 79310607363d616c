"""The plugin registry: built-ins, third-party plugins, duplicates and broken plugins."""

from __future__ import annotations

import json
import types
import warnings
from typing import ClassVar

import pytest

import spinbench

# The registry module's own tests: they replace its entry-point listing and its process-wide
# registry.
from spinbench import PluginWarning, RegistryError, load_registry
from spinbench import _registry as registry_module
from spinbench.generators import DenseVAE
from spinbench.models import Ising1D


class Ising1DCopy(Ising1D):
    """A chain registered under a new name by a test plugin."""

    name: ClassVar[str] = "test-chain"


class Impostor(Ising1D):
    """Claims a built-in's name."""

    name: ClassVar[str] = "ising1d"


def plugin(**hooks: object) -> types.SimpleNamespace:
    """A plugin object whose hooks return the given classes."""
    namespace = types.SimpleNamespace()
    for kind, classes in hooks.items():
        impl = spinbench.hookimpl(lambda classes=classes: list(classes))  # type: ignore[misc]
        setattr(namespace, f"spinbench_register_{kind}", impl)
    return namespace


def test_builtins_are_registered_through_the_entry_point_group() -> None:
    registry = load_registry()
    assert {"ising1d", "ising2d", "xy1d"} <= set(registry.names("models"))
    entry = registry.entry("models", "ising1d")
    assert entry.plugin == "builtin"
    assert entry.distribution == "spinbench"
    assert registry.problems == []


def test_plugin_registered_in_code_is_found() -> None:
    registry = load_registry([("test-plugin", plugin(models=[Ising1DCopy]))])
    assert registry.get("models", "test-chain") is Ising1DCopy
    assert registry.entry("models", "test-chain").plugin == "test-plugin"


def test_unknown_name_lists_valid_names_and_closest_match() -> None:
    registry = load_registry()
    with pytest.raises(RegistryError) as info:
        registry.get("models", "isng2d")
    message = str(info.value)
    assert "valid names: ising1d, ising2d" in message
    assert "xy1d" in message
    assert "Did you mean 'ising2d'?" in message


@pytest.mark.parametrize(
    ("kind", "name", "registered_as", "message"),
    [
        ("generators", "metropolis", "samplers", "'metropolis' is a sampler, not a generator"),
        ("samplers", "vae", "generators", "'vae' is a generator, not a sampler"),
        ("models", "Dense-VAE", "generators", "'Dense-VAE' is a generator, not a model"),
        ("samplers", "ising2d", "models", "'ising2d' is a model, not a sampler"),
    ],
)
def test_a_name_of_another_kind_says_which_kind_it_is(
    kind: str, name: str, registered_as: str, message: str
) -> None:
    with pytest.raises(RegistryError) as info:
        load_registry().get(kind, name)  # type: ignore[arg-type]
    assert str(info.value).startswith(f"{message}; valid {kind}: ")
    assert info.value.registered_as == registered_as
    with pytest.raises(RegistryError) as info:
        load_registry().get(kind, "nothing-at-all")  # type: ignore[arg-type]
    assert info.value.registered_as is None


def test_a_model_is_not_a_method() -> None:
    with pytest.raises(RegistryError, match="'ising1d' is a model, not a method; valid methods"):
        spinbench.get_method("ising1d")


def test_duplicate_name_is_an_error_naming_both_plugins() -> None:
    with pytest.warns(PluginWarning, match="registered by both"):
        registry = load_registry([("impostor-plugin", plugin(models=[Impostor]))])
    with pytest.raises(RegistryError) as info:
        registry.get("models", "ising1d")
    assert "'builtin'" in str(info.value)
    assert "'impostor-plugin'" in str(info.value)
    assert registry.get("models", "ising2d").name == "ising2d"  # the rest keeps working


class _BrokenEntryPoint:
    name = "broken"
    value = "broken_plugin_module"
    dist = types.SimpleNamespace(name="broken-dist")

    def load(self) -> object:
        raise ImportError("No module named 'broken_plugin_module'")


def test_plugin_that_fails_to_import_is_a_warning_and_the_rest_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = registry_module._entry_points()
    monkeypatch.setattr(registry_module, "_entry_points", lambda: [*real, _BrokenEntryPoint()])
    with pytest.warns(PluginWarning, match=r"plugin 'broken' \(broken-dist\) failed to import"):
        registry = load_registry()
    assert registry.get("models", "ising2d").name == "ising2d"


class _ExitingEntryPoint(_BrokenEntryPoint):
    name = "exiting"
    value = "exiting_plugin_module"
    dist = types.SimpleNamespace(name="exiting-dist")

    def load(self) -> object:
        raise SystemExit(3)


class _InterruptedEntryPoint(_BrokenEntryPoint):
    def load(self) -> object:
        raise KeyboardInterrupt


EXITING_LINE = (
    "warning: plugin 'exiting' (exiting-dist) failed to import and was skipped: SystemExit: 3\n"
)


def _with_entry_points(monkeypatch: pytest.MonkeyPatch, *extra: object) -> None:
    """Add entry points to the real ones, and start the process-wide registry afresh."""
    real = registry_module._entry_points()
    monkeypatch.setattr(registry_module, "_entry_points", lambda: [*real, *extra])
    monkeypatch.setattr(registry_module, "_REGISTRY", None)


def test_plugin_that_exits_at_import_is_isolated_and_warned_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _with_entry_points(monkeypatch, _ExitingEntryPoint())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry = load_registry()
    messages = [str(w.message) for w in caught if issubclass(w.category, PluginWarning)]
    assert messages == [
        "plugin 'exiting' (exiting-dist) failed to import and was skipped: SystemExit: 3"
    ]
    assert registry.get("models", "ising2d").name == "ising2d"


def test_ctrl_c_while_a_plugin_imports_still_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_entry_points(monkeypatch, _InterruptedEntryPoint())
    with pytest.raises(KeyboardInterrupt):
        load_registry()


def test_hook_that_exits_is_isolated() -> None:
    def leave() -> list[type]:
        raise SystemExit

    bad = types.SimpleNamespace(spinbench_register_models=spinbench.hookimpl(leave))
    with pytest.warns(PluginWarning, match=r"spinbench_register_models\(\) raised SystemExit;"):
        registry = load_registry([("leaving", bad)])
    assert "ising1d" in registry.names("models")


@pytest.mark.parametrize(
    "arguments",
    [
        ["list"],
        ["list", "samplers", "--format", "json"],
        ["exact", "ising1d", "--size", "4", "--temps", "1"],
    ],
    ids=["list", "list-json", "exact"],
)
def test_command_line_shows_a_plugin_problem_once_as_one_line(
    monkeypatch: pytest.MonkeyPatch, arguments: list[str]
) -> None:
    from click.testing import CliRunner

    from spinbench.cli import main

    _with_entry_points(monkeypatch, _ExitingEntryPoint(), _BrokenEntryPoint())
    with warnings.catch_warnings():
        warnings.simplefilter("error", PluginWarning)  # none reaches the command line user
        result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 0, result.output
    assert result.stderr.count(EXITING_LINE) == 1, result.stderr
    assert result.stderr.count("plugin 'broken' (broken-dist) failed to import") == 1
    assert "registry.py" not in result.stderr and "PluginWarning" not in result.stderr
    if "json" in arguments:
        json.loads(result.stdout)  # stdout stays clean
    again = CliRunner().invoke(main, arguments)  # every command reports, once
    assert again.stderr.count(EXITING_LINE) == 1, again.stderr


def test_autoload_can_be_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    real = registry_module._entry_points()
    monkeypatch.setattr(registry_module, "_entry_points", lambda: [*real, _BrokenEntryPoint()])
    monkeypatch.setenv("SPINBENCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("error", PluginWarning)
        registry = load_registry()  # the broken third-party plugin is never imported
    assert "ising1d" in registry.names("models")


def test_hook_that_raises_is_isolated() -> None:
    def explode() -> list[type]:
        raise RuntimeError("boom")

    bad = types.SimpleNamespace(spinbench_register_models=spinbench.hookimpl(explode))
    with pytest.warns(PluginWarning, match=r"spinbench_register_models\(\) raised RuntimeError"):
        registry = load_registry([("exploding", bad)])
    assert "ising1d" in registry.names("models")


@pytest.mark.parametrize(
    ("returned", "reason"),
    [
        (int, "not a subclass of AbstractModel"),
        (spinbench.AbstractModel, "does not implement"),
    ],
)
def test_classes_that_break_the_contract_are_skipped(returned: type, reason: str) -> None:
    with pytest.warns(PluginWarning, match=reason):
        registry = load_registry([("bad-contract", plugin(models=[returned]))])
    assert registry.names("models") == load_registry().names("models")


def test_uppercase_name_is_rejected() -> None:
    class Shouting(Ising1D):
        name: ClassVar[str] = "Shouting"

    with pytest.warns(PluginWarning, match="lowercase"):
        registry = load_registry([("loud", plugin(models=[Shouting]))])
    assert "Shouting" not in registry.names("models")


def test_misspelled_hook_is_reported() -> None:
    typo = types.SimpleNamespace(spinbench_register_model=lambda: [Ising1DCopy])
    with pytest.warns(PluginWarning, match="unknown hook"):
        quiet = load_registry([("typo", typo)])
    assert "test-chain" not in quiet.names("models")


def test_a_generator_cannot_take_a_sampler_name() -> None:
    class FakeMetropolis(DenseVAE):
        name: ClassVar[str] = "metropolis"

    with pytest.warns(PluginWarning, match="registered by both"):
        registry = load_registry([("squatter", plugin(generators=[FakeMetropolis]))])
    for kind in ("samplers", "generators"):
        with pytest.raises(RegistryError, match="'squatter'"):
            registry.get(kind, "metropolis")  # type: ignore[arg-type]
