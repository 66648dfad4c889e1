"""Estimates: a report's numbers, from the frames of ``analysis.records`` through the tests of
``analysis.inference``.

Per-cell tables (``cells``), dropout against each comparator (``comparisons``) and the best of
each family (``families``), the known answers beside the nets (``known_answers``), cost, the
least-squares line and seed planning (``answers``), the engine's equivalence tests
(``validation``), and ``estimates``, which gathers a sweep's numbers into one ``Estimates`` for
the pages. ``formatting`` writes a number as table text. Importing this package imports nothing
else.
"""
