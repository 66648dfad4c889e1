"""Pictures and words: what a person reads, assembled from ``analysis.numbers``.

The first screen (``first_screen``), the sentences under it (``prose``) and the design block
(``design``); the figures (``figures``: seaborn lives there only, plots return ``(fig, axes)``),
which of them a report draws (``report_figures``) and one trial's fitted curves
(``fit_picture``); the sweep's page (``report``) and the search's (``search_report``), rendered
to Markdown and self-contained HTML by ``_render`` and written atomically by ``files``.
Importing this package imports nothing else.
"""
