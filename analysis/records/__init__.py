"""Records into frames: the data contract of analysis/.

A trial's plain record becomes one pandas row (``frame``: each arm's metrics, ``<metric>_<arm>``),
and two arms' rows become one pair per seed (``pairs``), with one rule for a seed on which an
arm diverged (``divergence``). What a report compares the arms on (``outcomes``) and what a
search scores (``objectives``) are registries read from those records. Nothing here tests or
decides; the rooms above do. Importing this package imports nothing else.
"""
