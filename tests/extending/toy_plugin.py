"""A toy arm and a toy task, added from outside the package (docs/extending.md walks through it).

- ``l1``: the plain net with an L1 penalty, lambda * sign(theta) added to its gradient before Adam;
- ``cubic1d``: y = x^3 + noise on [-1, 1], its truth known, its oracle a known answer.

A spec names this module in ``plugins = ["toy_plugin"]``; its folder must be importable
(``PYTHONPATH``) in the driver and in every worker.
"""
from bench.arms import ArmKind, Setting, register_arm
from bench.task import one_input_task, register_task


def _l1(p, g, c):
    g.add_(p.sign() * c)      # d/dtheta of lambda * |theta|


register_arm(ArmKind(
    "l1", "an L1 penalty", "The l1 arm is the plain net with lambda * sign(theta) added to its gradient.",
    settings=(Setting("l1", 1e-3, "float", lambda v: v >= 0, "must be >= 0"),),
    gradient=_l1, coefficient="l1", chosen="best lambda (L1)"))

register_task(one_input_task("cubic1d", "y = x^3 + noise on [-1, 1]", lambda x: x ** 3,
                             predictors=(("oracle", "oracle x^3"),)))
