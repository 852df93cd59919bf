"""Progress of long codec work, reported to whoever asked for it.

The codec's loops (tiles of the transforms, blocks of tokens) iterate through
:func:`track`. Outside a :func:`reporting` block that is a plain loop; inside it, each
loop is a *stage* of the reporter (a name and a number of steps). The CLI reports to a
single tqdm bar on stderr that appears only when a stage lasts more than a second and
stderr is a terminal (``--quiet`` turns it off), so short work stays silent.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
from collections.abc import Iterable, Iterator
from typing import Protocol, TypeVar

__all__ = ["Reporter", "TqdmReporter", "reporting", "track"]

T = TypeVar("T")


class Reporter(Protocol):
    def stage(self, name: str, total: int | None) -> None: ...

    def advance(self, n: int = 1) -> None: ...


_current: contextvars.ContextVar[Reporter | None] = contextvars.ContextVar("leechcodec_progress", default=None)


@contextlib.contextmanager
def reporting(reporter: Reporter | None) -> Iterator[None]:
    """Send the progress of the codec loops run inside the block to ``reporter``."""
    token = _current.set(reporter)
    try:
        yield
    finally:
        _current.reset(token)


def track(items: Iterable[T], stage: str, total: int | None = None) -> Iterator[T]:
    """Iterate ``items``, reporting them as the steps of ``stage`` (``total``: their number,
    ``len(items)`` when it has one)."""
    reporter = _current.get()
    if reporter is None:
        yield from items
        return
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    reporter.stage(stage, total)
    for item in items:
        yield item
        reporter.advance(1)


class TqdmReporter:
    """One tqdm bar on stderr, relabelled per stage; shown once a stage has run ``delay``
    seconds, and only on a terminal unless ``force``."""

    def __init__(self, command: str, delay: float = 1.0, force: bool = False) -> None:
        from tqdm import tqdm

        self.command = command
        self.bar = tqdm(total=None, desc=command, unit="step", delay=delay, leave=False, file=sys.stderr,
                        disable=None if not force else False, dynamic_ncols=True)

    def stage(self, name: str, total: int | None) -> None:
        self.bar.reset(total=total)
        self.bar.set_description_str(f"{self.command}: {name}", refresh=False)

    def advance(self, n: int = 1) -> None:
        self.bar.update(n)

    def close(self) -> None:
        self.bar.close()
