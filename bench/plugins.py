"""Arms and tasks defined outside the package, found in every process that reads a config.

A plugin is a module that adds kinds when imported (``bench.arms.register_arm``,
``bench.task.register_task``). Two ways to name one, both by import path:

- a spec's ``plugins = ["mypkg.arms"]`` (the sweep's driver calls :func:`load_plugins` with
  it, which also puts the names in ``DROPOUT_BENCH_PLUGINS``, so worker processes started
  afterwards import them too, as does any later ``dropout-bench`` run in that environment);
- an installed package's entry point in the group ``dropout_bench.plugins``
  (``[project.entry-points."dropout_bench.plugins"] arms = "mypkg.arms"``), imported by every
  process on first need, Dask workers included.

A registry lookup that misses calls :func:`load_plugins` before it gives up, so a worker
never needs to be told.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import os
from typing import Iterable

ENV = "DROPOUT_BENCH_PLUGINS"          # comma-separated module names
GROUP = "dropout_bench.plugins"        # entry-point group
_loaded: set[str] = set()
_entry_points_read = False


class PluginError(ImportError):
    """A named plugin module cannot be imported; the message names it."""


def load_plugins(names: Iterable[str] = ()) -> list[str]:
    """Import the named modules, those in ``DROPOUT_BENCH_PLUGINS`` and the entry points (each
    once); names given here are added to the variable for processes started later."""
    global _entry_points_read
    names = [n.strip() for n in names if n.strip()]
    if names:
        known = [n for n in os.environ.get(ENV, "").split(",") if n]
        os.environ[ENV] = ",".join(dict.fromkeys([*known, *names]))
    wanted = [n for n in os.environ.get(ENV, "").split(",") if n]
    if not _entry_points_read:
        _entry_points_read = True
        wanted += [ep.module for ep in importlib.metadata.entry_points(group=GROUP)]
    for name in wanted:
        if name in _loaded:
            continue
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise PluginError(f"plugin {name!r} cannot be imported: {exc} (is its folder on PYTHONPATH?)") from exc
        _loaded.add(name)
    return sorted(_loaded)
