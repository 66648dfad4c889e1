"""Uncertainty: pure statistics over arrays, with the shape in each docstring.

Intervals and tests of paired deltas (``stats``, ``mean_test``: the verdict's test), the one
decision rule (``decisions``), a relative effect's interval (``ratio``), least squares with
seed-clustered errors (``clustered``) and the trend across a grid built on it (``trend``), and
the split of a cell's variance (``variance``). Nothing here knows a record, an arm or a page;
every random draw takes its seed as a parameter. Importing this package imports nothing else.
"""
