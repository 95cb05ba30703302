"""RemovableHandle: what ``register_*_hook`` returns; ``handle.remove()`` takes the hook out again."""

from __future__ import annotations

import itertools

_ids = itertools.count()


class RemovableHandle:
    """A handle to a hook stored in a dict keyed by the handle's id (works as a context manager too)."""

    __slots__ = ("hooks_dict", "id")

    def __init__(self, hooks_dict: dict):
        self.hooks_dict = hooks_dict
        self.id = next(_ids)

    @classmethod
    def add(cls, hooks_dict: dict, hook) -> RemovableHandle:
        """Store ``hook`` in ``hooks_dict`` (hooks run in insertion order) and return its handle."""
        handle = cls(hooks_dict)
        hooks_dict[handle.id] = hook
        return handle

    def remove(self) -> None:
        """Take the hook out; removing twice is harmless."""
        self.hooks_dict.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()
