"""Progress of a batch run: a tqdm bar (rate and ETA), failures reported as they happen, and the
summary at the end (files done, skipped, failed, instances found, time)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

from tqdm import tqdm

from .arguments import EXIT_INPUT_FAILED, EXIT_NO_INPUTS, EXIT_OK

__all__ = ["RunStats", "progress_bar"]


def progress_bar(total: int, unit: str, quiet: bool, desc: str | None = None) -> tqdm:
    """A bar on stderr with rate and ETA (`unit`s per second); nothing at all with `quiet`."""
    return tqdm(
        total=total,
        unit=unit,
        desc=desc,
        disable=quiet,
        file=sys.stderr,
        dynamic_ncols=True,
        smoothing=0.1,
    )


@dataclass
class RunStats:
    """What a run did. `skipped`: inputs already done by an earlier run (--resume)."""

    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    instances: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (input, reason)
    started: float = field(default_factory=time.perf_counter)
    interrupted: bool = False

    def fail(self, name: str, reason: str) -> None:
        """Count a failed input and report it now (above the bar); the run goes on."""
        self.failed += 1
        self.failures.append((name, reason))
        tqdm.write(f"sam3: skipped {name}: {reason}", file=sys.stderr)

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def exit_code(self) -> int:
        if self.total == 0 and self.failed:
            return EXIT_NO_INPUTS
        return EXIT_INPUT_FAILED if self.failed else EXIT_OK

    def summary(self, unit: str = "images") -> str:
        rate = self.done / self.seconds if self.seconds > 0 else 0.0
        head = "interrupted" if self.interrupted else "finished"
        return (
            f"sam3: {head}: {self.done} {unit} done, {self.skipped} skipped (already done), "
            f"{self.failed} failed, {self.instances} instances found, {self.seconds:.1f} s "
            f"({rate:.2f} {unit}/s)"
        )

    def to_dict(self) -> dict:
        return {
            "total": self.total, "done": self.done, "skipped": self.skipped, "failed": self.failed,
            "instances": self.instances, "seconds": round(self.seconds, 3), "interrupted": self.interrupted,
            "failures": [{"input": n, "reason": r} for n, r in self.failures],
        }  # fmt: skip
