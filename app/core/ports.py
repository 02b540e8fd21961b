"""Ports: what a package needs from another it must not import, handed over at assembly.

A package declares `Port[Protocol]("what it is")` and calls `port()` where it needs it; the app
provides the implementation where it is assembled (`app.wiring`). Asking a port nobody
provided is a programming error, raised at once rather than skipped.
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class NotAssembled(RuntimeError):
    pass


class Port(Generic[T]):
    def __init__(self, what: str) -> None:
        self.what = what
        self._provided: list[T] = []

    def provide(self, implementation: T) -> None:
        self._provided[:] = [implementation]

    @property
    def provided(self) -> bool:
        return bool(self._provided)

    def __call__(self) -> T:
        if not self._provided:
            raise NotAssembled(
                f"no {self.what} provided: the app is not assembled (app.wiring.assemble)"
            )
        return self._provided[0]
