"""The analyses layer: every analysis of the store, returning data and value objects only.

What lives here: customer features, segmentation, scoring and lead scoring, the follow-up queue,
CLV and ROMI, satisfaction and service, sales, cohorts, cross-sell, the forecast, data quality
and the segment export. Each reads the store through :mod:`crm_helpers.store` (its rules in
:mod:`crm_helpers.store.facts`) and may use :mod:`crm_helpers.models`; it never imports the
ingest layer or the report. Plots and page sentences belong to :mod:`crm_helpers.report`.
"""
