"""What samplers and generators share: options as fields, ``from_options``, ``settings``,
``supports``.

A method (sampler or generator) is a small immutable :class:`equinox.Module` whose public
dataclass fields are its options (static, hashable): a grid's ``[[methods]]`` keys become
keyword arguments through :meth:`AbstractMethod.from_options`, and :meth:`~AbstractMethod.settings`
gives them back, JSON-friendly, for provenance, cache keys and cell digests. One rule for
private fields: a field whose name starts with ``_`` is not an option and not a setting.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, ClassVar, Self

import equinox as eqx

from ._errors import OptionError

if TYPE_CHECKING:
    from .models._base import AbstractModel

__all__ = ["AbstractMethod", "options_of"]


def options_of(cls: type) -> dict[str, Any]:
    """The option names of a sampler or generator class with their defaults (None where a
    field has no default)."""
    return {
        f.name: (f.default if f.default is not dataclasses.MISSING else None)
        for f in dataclasses.fields(cls)
        if not f.name.startswith("_")
    }


def _setting(value: Any) -> Any:
    """An option value as a JSON-friendly setting: a value object with a registry ``name``
    (an acceptance rule, say) is given by that name."""
    name = getattr(value, "name", None)
    return name if isinstance(value, eqx.Module) and isinstance(name, str) else value


class AbstractMethod(eqx.Module):
    """A sampler or a generator: its dataclass fields are its options.

    Validate options in ``__check_init__`` and raise ``ValueError`` with a message naming the
    option and what is allowed: :meth:`from_options` turns it into an
    :class:`~spinbench.OptionError`.
    """

    name: ClassVar[str]
    #: Options other methods have and this one deliberately does not, with the reason (said
    #: when a grid gives one).
    unavailable_options: ClassVar[dict[str, str]] = {}

    @classmethod
    def from_options(cls, **options: Any) -> Self:
        """Build from keyword options (as in a grid file); unknown keys are a clear error."""
        valid = options_of(cls)
        unknown = sorted(set(options) - set(valid))
        explained = [name for name in unknown if name in cls.unavailable_options]
        if explained:
            name = explained[0]
            raise OptionError(f"{cls.name} has no option {name!r}: {cls.unavailable_options[name]}")
        if unknown:
            raise OptionError(
                f"unknown option(s) {', '.join(map(repr, unknown))} for {cls.name}; "
                f"valid options: {', '.join(sorted(valid)) or '(none)'}"
            )
        try:
            return cls(**options)
        except (TypeError, ValueError) as error:
            raise OptionError(f"invalid options for {cls.name}: {error}") from error

    def settings(self) -> dict[str, Any]:
        """The options of this instance, JSON-friendly; ``from_options(**settings())`` builds
        an equal instance."""
        return {
            f.name: _setting(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if not f.name.startswith("_")
        }

    def supports(self, model: AbstractModel) -> str | None:
        """None if this method can run ``model``, else the reason it cannot (checked for
        every model a grid crosses it with before any work)."""
        return None
