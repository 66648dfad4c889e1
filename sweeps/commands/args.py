"""Argument helpers shared by the commands: trial-config and backend flags, strict number types, UsageError."""
from __future__ import annotations

import argparse
from typing import Any, Callable

from bench import TrialConfig
from bench.config import field_types

from ..executors import BACKENDS, backend_help


class UsageError(Exception):
    """Bad input found after parsing; reported as one line with exit code 2."""


def add_config_flags(p: argparse.ArgumentParser) -> None:
    defaults = TrialConfig()
    group = p.add_argument_group("trial config (defaults reproduce the seed experiment)")
    for name, typ in field_types().items():
        group.add_argument(f"--{name.replace('_', '-')}", dest=f"cfg_{name}",
                           metavar="A,B,..." if typ == "tuple" else typ.upper(),
                           type=_PARSERS[typ], default=None,
                           help=f"default {getattr(defaults, name)!r}")


def add_backend_flags(p: argparse.ArgumentParser) -> None:
    """``--backend`` (the names in sweeps.executors.BACKENDS) and ``--scheduler``."""
    p.add_argument("--backend", choices=tuple(BACKENDS), default="local", help=backend_help())
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="the Dask scheduler (with --backend dask)")


def config_from_args(args: argparse.Namespace) -> TrialConfig:
    given = {k[4:]: v for k, v in vars(args).items() if k.startswith("cfg_") and v is not None}
    return TrialConfig.from_dict(given)


def _strict_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def positive_int(text: str) -> int:
    value = _strict_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _names(text: str) -> tuple[str, ...]:
    """'plain,dropout,early_stop' -> a tuple of names (the config checks them)."""
    return tuple(n.strip() for n in text.split(",") if n.strip())


_PARSERS: dict[str, Callable[[str], Any]] = {"int": _strict_int, "float": _float, "str": str, "tuple": _names}
