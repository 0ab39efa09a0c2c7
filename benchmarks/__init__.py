"""Benchmarks of the workbook at scale (``make bench``, ``python -m benchmarks.run``).

Each part measures one thing against its reference in the same run and returns a
:class:`benchmarks.results.Section`; ``run.py`` collects them into ``benchmarks/RESULTS.md``
(and the machine-readable ``benchmarks/results.json``). The generated scale store, its CSV
export and the benchmark-only dependencies live in ``benchmarks/scale/`` (git-ignored).

- ``scale_store``: the demo generator at 100,000 customers (about 1,000,000 orders), cached;
- ``bench_import``: ``import_file`` of a 1,000,000-row orders CSV against a bare ``executemany``;
- ``bench_clv``: BG/NBD + Gamma-Gamma against the ``lifetimes`` package;
- ``bench_pack``: the whole report pack, wall time and peak memory per process;
- ``bench_analyses``: RFM + segmentation, churn scoring, forecasting, association rules.
"""
