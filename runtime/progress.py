"""Progress display for long runs: a tqdm bar on a terminal's stderr, nothing otherwise."""

from __future__ import annotations

import sys
from types import TracebackType


class Progress:
    """`with Progress(total, enabled) as p: p.update(done)`; silent unless stderr is a
    terminal and `enabled` is set."""

    def __init__(self, total: int, enabled: bool, unit: str = "step") -> None:
        self._bar = None
        self._done = 0
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit=unit, unit_scale=True, leave=False, file=sys.stderr)

    def update(self, done: int) -> None:
        if self._bar is not None:
            self._bar.update(done - self._done)
        self._done = done

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.close()
