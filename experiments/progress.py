"""A progress bar per sweep: how far a long run is, and what it is doing now."""

from __future__ import annotations

from tqdm import tqdm


class Progress:
    def __init__(self, steps: int, name: str):
        self.bar = tqdm(total=steps, desc=name, unit="step", leave=True, dynamic_ncols=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()

    def step(self, what: str) -> None:
        """A new step begins (the previous one is done)."""
        if self.bar.n < self.bar.total and self.bar.postfix:
            self.bar.update(1)
        self.bar.set_postfix_str(what, refresh=True)

    def note(self, what: str) -> None:
        """Still the same step, now doing ``what``."""
        self.bar.set_postfix_str(what, refresh=True)
