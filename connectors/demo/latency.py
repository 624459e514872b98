"""A latency per call, so that Demo ERP answers as slowly as a real ERP: ``--latency-ms 200`` or ``1000-3000``."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

_SPELLING = re.compile(r"(\d+)(?:-(\d+))?")
MAX_MS = 600_000  # ten minutes: far beyond any timeout a caller waits for
EXAMPLE = "give milliseconds as N or MIN-MAX, e.g. 200 or 1000-3000"


@dataclass(frozen=True)
class Latency:
    """How long each call waits before it is answered: ``low_ms`` milliseconds, or a random time from ``low_ms``
    to ``high_ms``, drawn anew for every call."""

    low_ms: int
    high_ms: int

    def __post_init__(self) -> None:
        if self.low_ms < 0 or self.high_ms < 0:
            raise ValueError(f"a latency cannot be negative; {EXAMPLE}")
        if self.low_ms > self.high_ms:
            raise ValueError(f"the lower bound {self.low_ms} is above the upper bound {self.high_ms}; {EXAMPLE}")
        if self.high_ms > MAX_MS:
            raise ValueError(f"{self.high_ms} ms is more than the most allowed, {MAX_MS} ms")

    @classmethod
    def of(cls, milliseconds: int | tuple[int, int]) -> Latency:
        """``200`` → 200 ms a call; ``(1000, 3000)`` → from 1 to 3 s a call."""
        low, high = milliseconds if isinstance(milliseconds, tuple) else (milliseconds, milliseconds)
        return cls(low, high)

    @classmethod
    def parse(cls, text: str) -> Latency:
        """``"200"`` or ``"1000-3000"``; a ValueError that says what is wrong otherwise."""
        spelled = text.strip()
        if re.fullmatch(r"-\d+(?:-\d+)?", spelled):
            raise ValueError(f"a latency cannot be negative ({spelled!r}); {EXAMPLE}")
        found = _SPELLING.fullmatch(spelled)
        if found is None:
            raise ValueError(f"{spelled!r} is not a latency; {EXAMPLE}")
        low = int(found.group(1))
        return cls(low, int(found.group(2)) if found.group(2) is not None else low)

    def __str__(self) -> str:
        return f"{self.low_ms} ms" if self.low_ms == self.high_ms else f"{self.low_ms}–{self.high_ms} ms"

    def seconds(self) -> float:
        """The wait for one call."""
        return random.uniform(self.low_ms, self.high_ms) / 1000  # noqa: S311  (a delay, not a secret)

    def delaying(self, operation: Callable[P, R]) -> Callable[P, R]:
        """``operation``, waiting before it runs. The wait holds only the calling thread."""

        def delayed(*args: P.args, **kwargs: P.kwargs) -> R:
            time.sleep(self.seconds())
            return operation(*args, **kwargs)

        return delayed
