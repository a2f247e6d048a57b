"""Name -> constructor, one registry per config group that builds an object.

Every group registers the same way, with ``@REGISTRY.register("name")`` on a class or function (or
``REGISTRY.register("name", target)`` for one defined elsewhere, such as ``torch.optim.SGD``).
:func:`lga.schemas.register_configs` turns each entry into the schema ``schema/<group>/<name>``,
generated from the constructor's signature; the option yaml names that schema in its defaults list,
and the run builds it with ``hydra.utils.instantiate``. How a group's objects are built is declared
here once per group: whether the config gives a partial (``partial``: the code adds what only it
knows, ``filled``), and whether lists reach the constructor as plain lists (``convert``).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, TypeVar

T = TypeVar("T", bound=Callable[..., Any])


class Registry:
    """The constructors of one config group, by name.

    Args:
        group: the config group (``conf/<group>/``).
        partial: the config builds a partial; the code calls it with ``filled``.
        filled: the constructor's arguments that code fills in, never config.
        convert: ``_convert_: all`` (lists and dicts arrive as plain Python objects).
    """

    def __init__(self, group: str, *, partial: bool = False, filled: tuple[str, ...] = (), convert: bool = False):
        self.group, self.partial, self.filled, self.convert = group, partial, filled, convert
        self._entries: dict[str, Callable[..., Any]] = {}

    def register(self, name: str, target: T | None = None) -> Any:
        """Register ``target`` as ``name``; without ``target``, a decorator that registers what it decorates."""
        if target is not None:
            self._add(name, target)
            return target

        def decorator(decorated: T) -> T:
            self._add(name, decorated)
            return decorated

        return decorator

    def _add(self, name: str, target: Callable[..., Any]) -> None:
        if self._entries.get(name, target) is not target:
            registered = getattr(self._entries[name], "__qualname__", repr(self._entries[name]))
            raise ValueError(f"{self.group} {name!r} is already registered to {registered}")
        self._entries[name] = target

    def get(self, name: str) -> Callable[..., Any]:
        try:
            return self._entries[name]
        except KeyError:
            raise ValueError(f"unknown {self.group} {name!r}; valid names: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def items(self) -> Iterator[tuple[str, Callable[..., Any]]]:
        return iter(sorted(self._entries.items()))

    def __contains__(self, name: object) -> bool:
        return name in self._entries
