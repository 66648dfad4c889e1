"""What a report compares the arms on: the outcome, its words and its floor.

``test_mse`` is what the tutorial measures (test targets at the training x, fresh noise).
The known truth f of the toy task allows two noise-free outcomes: ``excess_risk`` (the
same x, against f: test MSE without its test noise) and ``new_excess_risk`` (200 fresh
inputs, against f); ``new_mse`` is the error at fresh inputs with noisy targets. Every
noisy outcome has the floor sigma^2; a noise-free one has the floor 0.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    name: str          # the column stem in analysis.records.frame
    label: str         # in sentences and table headings
    noisy: bool        # measured against noisy targets: floor sigma^2, else 0

    def floor(self, noise_std: float) -> float:
        return noise_std ** 2 if self.noisy else 0.0


OUTCOMES = {
    "test_mse": Outcome("test_mse", "test MSE", True),
    "excess_risk": Outcome("excess_risk", "excess risk", False),
    "new_mse": Outcome("new_mse", "MSE at new inputs", True),
    "new_excess_risk": Outcome("new_excess_risk", "excess risk at new inputs", False),
}
DEFAULT = "test_mse"
LATER = tuple(name for name in OUTCOMES if name != "test_mse")   # result schema 2 added these (None before)


def outcome(name: str) -> Outcome:
    """The outcome called ``name``; a one-line ValueError naming the choices otherwise."""
    try:
        return OUTCOMES[name]
    except KeyError:
        raise ValueError(f"outcome {name!r}: must be one of {', '.join(OUTCOMES)}") from None
