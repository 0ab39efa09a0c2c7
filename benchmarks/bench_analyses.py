"""The analyses one by one on the scale store, through the modules' public functions, so that a
regression shows where it is: RFM + segmentation, churn scoring, forecasting, association rules
(and the other per-notebook analyses that are cheap to time)."""

from __future__ import annotations

import datetime as dt
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable

from crm_helpers.store.connection import open_db
from crm_helpers.store.queries import clear_memos

from .results import Row, Section, load_average, log, measure, plural


Step = tuple[str, str, str, Callable[[dict[str, Any]], Any]]
"""(group, what, name of the result, call on the results so far)."""


def _steps(db: Any, as_of: dt.date) -> list[Step]:
    """Every timed step, called as the notebooks call them, in an order where each step's inputs
    are earlier steps' results (so nothing is computed outside the timings)."""
    from crm_helpers.analyses import cohorts, crosssell, followup, forecast, sales, scoring, segmentation
    from crm_helpers.analyses.features import customer_features
    from crm_helpers.store.periods import Period

    month = Period(as_of.replace(day=1), as_of)
    previous = month.previous_month().end
    return [
        ("RFM + segmentation", "`customer_features` (one SQL aggregate)", "features",
         lambda r: customer_features(db, as_of)),
        ("RFM + segmentation", "`rfm_table` + `segment_summary`", "rfm",
         lambda r: segmentation.segment_summary(segmentation.rfm_table(r["features"]))),
        ("RFM + segmentation", "`CustomerClusters(k_range=(2, 8)).fit`", "clusters",
         lambda r: segmentation.CustomerClusters(random_state=0).fit(r["features"])),
        ("churn scoring", "`churn_backtest` (two snapshots, logistic + boosting)", "churn",
         lambda r: scoring.churn_backtest(db, as_of)),
        ("churn scoring", "`score_customers` (now and a month ago)", "scored",
         lambda r: scoring.score_customers(db, as_of, model=r["churn"].model, previous_as_of=previous)),
        ("churn scoring", "`opportunities_as_of` + `lead_backtest` + `open_pipeline`", "pipeline",
         lambda r: _pipeline(db, as_of)),
        ("churn scoring", "`follow_up_queue`", "queue",
         lambda r: followup.follow_up_queue(db, as_of, scored=r["scored"], pipeline=r["pipeline"])),
        ("forecasting", "`forecast_sales` (history, fits, backtests)", "forecast",
         lambda r: forecast.forecast_sales(db, as_of, horizon=6)),
        ("association rules", "`paid_lines` (the shared read of the paid orders and lines)", "lines",
         lambda r: crosssell.paid_lines(db, as_of)),
        ("association rules", "`basket_matrix`", "basket", lambda r: crosssell.basket_matrix(r["lines"])),
        ("association rules", "`association_rules_table`", "rules",
         lambda r: crosssell.association_rules_table(r["basket"], crosssell.product_names(db))),
        ("association rules", "`next_best_products`", "offers",
         lambda r: crosssell.next_best_products(db, r["rules"], lines=r["lines"])),
        ("association rules", "`cross_sell_probability`", "cross_sell",
         lambda r: crosssell.cross_sell_probability(r["lines"], period_start=month.start, rules=r["rules"])),
        ("other", "`cohort_table`", "cohorts", lambda r: cohorts.cohort_table(db, as_of, last_cohorts=18)),
        ("other", "`monthly_customer_flows`", "flows", lambda r: sales.monthly_customer_flows(db, as_of)),
    ]


def _pipeline(db: Any, as_of: dt.date) -> Any:
    from crm_helpers.analyses import lead_scoring, sales

    opps = sales.opportunities_as_of(db, as_of)
    return lead_scoring.open_pipeline(opps, lead_scoring.lead_backtest(opps).model)


def run(db_path: Path, as_of: str, repeats: int, label: str = "scale store") -> Section:
    """Time every step ``repeats`` times on the store at ``db_path`` as of ``as_of``."""
    section = Section("analyses", f"Analyses one by one on the {label}", busy=f"load average {load_average()} at start")
    db = open_db(db_path)
    results: dict[str, Any] = {}
    totals: dict[str, float] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for group, what, name, call in _steps(db, dt.date.fromisoformat(as_of)):
            log(f"analyses: {what}, {plural(repeats, 'run')}")
            try:
                timing, results[name] = measure(lambda: call(results), repeats, setup=clear_memos)
            except Exception as exc:  # a module still being changed: say so, keep the other steps
                section.notes.append(f"{group}, {what} failed: {traceback.format_exception_only(exc)[-1].strip()}")
                continue
            section.add(Row(f"{group}: {what}", timing))
            totals[group] = totals.get(group, 0.0) + timing.median
    section.notes.append(
        f"{plural(repeats, 'run')} each, as of {as_of}, in one process with the store's pages in the OS cache. Group "
        "totals (sum of medians): " + "; ".join(f"{g} {t:.2f} s" for g, t in totals.items()) + ".")
    return section
