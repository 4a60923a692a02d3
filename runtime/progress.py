"""Progress display for long runs: a tqdm bar on a terminal's stderr, nothing otherwise.

The bar shows the steps done and the rate (steps/s); it shows a total (and so a bar and an
estimate of the time left) only when the caller knows one the user asked for. It moves only
when `update` is called, so the engines run in pieces sized by `ChunkSizer` to take about a
quarter of a second each, whatever the speed of the machine or the size of the program.
"""

from __future__ import annotations

import sys
from types import TracebackType

TARGET_SECONDS = 0.25  # how long one piece of a run should take (the bar moves after each)


class Progress:
    """`with Progress(total, enabled) as p: p.update(done)`; silent unless stderr is a
    terminal and `enabled` is set. `total` None: no bar, only the count and the rate."""

    def __init__(self, total: int | None, enabled: bool, unit: str = "step") -> None:
        self._bar = None
        self._done = 0
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            # miniters=1: redraw on every update that comes at least mininterval after the
            # last one (tqdm's dynamic miniters could skip updates when the rate drops)
            self._bar = tqdm(total=total, unit=unit, unit_scale=True, leave=False,
                             file=sys.stderr, mininterval=0.1, miniters=1)

    def update(self, done: int) -> None:
        if self._bar is not None and done != self._done:
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


class ChunkSizer:
    """Sizes of the pieces a run is made in, adapted to the measured time: start at `first`
    steps; after a piece, halve the size until it would have taken at most `target_s`, or
    double it while it would have taken less than half of that, within [`smallest`,
    `largest`].

        sizer = ChunkSizer(1024)
        while ...:
            n = min(sizer.size, remaining)
            (run n steps, taking t seconds)
            sizer.record(n, t)
    """

    def __init__(self, first: int = 1024, target_s: float = TARGET_SECONDS, smallest: int = 1,
                 largest: int = 1 << 40) -> None:
        self.smallest = max(1, smallest)
        self.largest = max(self.smallest, largest)
        self.size = min(max(first, self.smallest), self.largest)
        self.target_s = target_s

    def record(self, steps: int, seconds: float) -> None:
        """A piece of `steps` steps took `seconds`. Only a full piece (`steps` equal to the
        current size) says something about the size; a short last piece does not."""
        if steps != self.size:
            return
        # halve (or double) as often as the measured time says, in one go: a first piece
        # that took 2 s is followed by one of an eighth of its size, not of half
        while seconds > self.target_s and self.size > self.smallest:
            self.size = max(self.smallest, self.size // 2)
            seconds /= 2
        while seconds < self.target_s / 2 and self.size < self.largest:
            self.size = min(self.largest, self.size * 2)
            seconds *= 2
