"""The work of one generation, top to bottom, below the services and the runners.

- :mod:`~imagegen.pipeline.planning`: arguments to a costed plan; owns ``Generation.params``;
- :mod:`~imagegen.pipeline.budgets`: the one budget check;
- :mod:`~imagegen.pipeline.recording`: writing ledger rows, one or a batch;
- :mod:`~imagegen.pipeline.leases`: claiming a row, heartbeats, takeovers of dead workers;
- :mod:`~imagegen.pipeline.run`: calling the provider and recording the outcome;
- :mod:`~imagegen.pipeline.storing`: saving, deriving and attaching the images, or undoing it;
- :mod:`~imagegen.pipeline.cleanup`: which files rows use, and deleting the others.

Nothing here imports :mod:`imagegen.runners` or :mod:`imagegen.services`: a row the pipeline
records (a fallback) is handed back to the runner that called it.
"""
