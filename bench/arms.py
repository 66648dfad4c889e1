"""The arms a trial can train: one ``ArmKind`` each, in ``ARMS`` below.

An arm kind says everything the floors above ask of it: its name and the words a report uses
for it, the settings it reads (a ``Setting`` each, with its default and rule), where its arms
sit in a batched group, what it does to its gradient before Adam, whether it holds out
validation points and stops early, what it records beyond every arm's metrics, and the
sentence that describes its method. The config's checks, the engine, the records' frame, the
comparisons, the families and the report's words ask the kind; none of them names one.

Every trial trains ``plain`` (the net as the seed tutorial builds it) and ``dropout`` (the same
net with dropout, at the config's ``dropout`` rate): they are the pair every report compares.
The others are comparators, trained on the same seed (same data, same initial weights as the
plain net) when ``arms`` names them.

A kind defined outside the package is added with :func:`register_arm` in a module that every
process imports before it reads a config: name the module in a spec's ``plugins`` list, or in
the ``dropout_bench.plugins`` entry-point group of an installed package (``bench.plugins``).
Its new settings live in the config beside the built-in ones, left out of a trial's identity at
their defaults, so every stored trial keeps its id.

This module imports no torch: configs are checked without it. A gradient hook receives torch
tensors and imports nothing itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

EARLY_STOP_RULE = (
    "The early_stop arm holds out round(val_fraction x n_train) of the training points (its own "
    "random draw per data seed) and trains on the rest. At every curve step (0, eval_every, "
    "2 x eval_every, ...) it measures its validation MSE and keeps a copy of its weights whenever "
    "the MSE is strictly below the best so far; it stops at the first check that is `patience` "
    "checks after the best one, or at `steps`, and its results are those of the kept weights.")


@dataclass(frozen=True)
class Setting:
    """One setting an arm reads: its default, its type ("float" or "int") and its rule."""
    name: str
    default: float | int
    type: str = "float"
    valid: Callable[[Any], bool] = lambda v: True
    allowed: str = ""                 # the one line a value outside the rule gets


@dataclass(frozen=True)
class ArmKind:
    """One kind of arm.

    ``slot``: where its arms sit in a batched group (dropout arms always first, then by slot,
    plain last), so each kind's extra work touches one contiguous slice. ``gradient``: called
    after the backward pass on the kind's slice of every parameter, as ``gradient(p, g, c)``
    with ``c`` the (arms, 1, 1) tensor of the kind's ``coefficient`` setting; it changes ``g``
    in place. ``holds_out``: the arm trains on the training points minus ``n_val`` validation
    points and keeps its best weights by ``EARLY_STOP_RULE``. ``records``: ArmResult fields it
    fills beyond every arm's. ``chosen``: what its family's best-of-family choice picks.
    """
    name: str
    label: str                              # in a sentence: "dropout better than {label}"
    method: str = ""                        # the report's sentence on how it trains
    settings: tuple[Setting, ...] = ()      # what it reads beyond the net, data and optimiser
    slot: int = 1
    gradient: Optional[Callable[[Any, Any, Any], None]] = None
    coefficient: str = ""                   # the setting handed to ``gradient``
    holds_out: bool = False
    records: tuple[str, ...] = ()
    chosen: str = ""

    @property
    def reads(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.settings)


def _coupled_l2(p: Any, g: Any, c: Any) -> None:
    g.addcmul_(p, c)          # the gradient gains lambda * theta, as in torch.optim.Adam(weight_decay=lambda)


PAIR = ("plain", "dropout")   # the pair every trial trains and every report compares

ARMS: dict[str, ArmKind] = {k.name: k for k in (
    ArmKind("plain", "the plain net", slot=3),
    ArmKind("dropout", "dropout", slot=0, chosen="best rate"),
    ArmKind("early_stop", "early stopping", EARLY_STOP_RULE, (
        Setting("patience", 5, "int", lambda v: v >= 1,
                "must be >= 1 (validation checks without improvement before stopping)"),
        Setting("val_fraction", 0.25, "float", lambda v: 0.0 < v < 1.0,
                "must be in (0, 1): the share of the training points held out"),
    ), slot=2, holds_out=True, records=("best_step", "stopped_step"), chosen="best patience"),
    ArmKind("weight_decay", "weight decay", "The weight_decay arm is the plain net with Adam's coupled L2 penalty.", (
        Setting("weight_decay", 1e-2, "float", lambda v: v >= 0, "must be >= 0"),
    ), slot=1, gradient=_coupled_l2, coefficient="weight_decay", chosen="best lambda"),
)}


class ArmError(ValueError):
    """A kind that cannot be added: its name or a setting's name is taken."""


RESERVED: set[str] = set()   # the config's own settings (bench.config adds them): no arm setting shadows one


def register_arm(kind: ArmKind) -> ArmKind:
    """Add a kind after the built-in ones (report order is registration order). Registering the
    same kind again (a module imported twice) is a no-op."""
    if ARMS.get(kind.name) == kind:
        return kind
    if kind.name in ARMS:
        raise ArmError(f"arm {kind.name!r} is already defined")
    taken = RESERVED | {s.name for k in ARMS.values() for s in k.settings}
    clash = [s.name for s in kind.settings if s.name in taken]
    if clash:
        raise ArmError(f"arm {kind.name!r}: setting {clash[0]!r} is already a config setting")
    if kind.gradient is not None and kind.coefficient not in kind.reads:
        raise ArmError(f"arm {kind.name!r}: its gradient hook's coefficient must be one of its settings")
    ARMS[kind.name] = kind
    return kind


def arm_kind(name: str) -> ArmKind:
    from .plugins import load_plugins
    if name not in ARMS:
        load_plugins()
    return ARMS[name]


def comparators() -> tuple[str, ...]:
    """Every arm beside the pair, in report order (plugins included)."""
    from .plugins import load_plugins
    load_plugins()
    return tuple(k for k in ARMS if k not in PAIR)


def settings() -> dict[str, tuple[Setting, str]]:
    """Every arm setting by name: (the setting, the arm that reads it)."""
    from .plugins import load_plugins
    load_plugins()
    return {s.name: (s, k.name) for k in ARMS.values() for s in k.settings}


def kinds_records() -> tuple[str, ...]:
    """What any kind records beyond every arm's metrics (ArmResult fields), each once."""
    from .plugins import load_plugins
    load_plugins()
    return tuple(dict.fromkeys(r for k in ARMS.values() for r in k.records))


def label(name: str) -> str:
    """The arm's name in a sentence: "weight decay", "the plain net"."""
    return arm_kind(name).label


def methods() -> str:
    """The report's sentences on how the comparators train, in report order."""
    return " ".join(ARMS[k].method for k in comparators() if ARMS[k].method)
