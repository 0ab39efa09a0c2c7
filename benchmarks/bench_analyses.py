"""The analyses one by one on the scale store, through the modules' public functions, so that a
regression shows where it is: RFM + segmentation, churn scoring, forecasting, association rules
(and the other per-notebook analyses that are cheap to time)."""

from __future__ import annotations

import datetime as dt
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable

from crm_helpers.store import open_db

from .results import Row, Section, load_average, log, measure, plural


def _steps(db: Any, as_of: dt.date) -> list[tuple[str, str, Callable[[], Any]]]:
    """(group, what, call) for every timed step, called as the notebooks call them; each call is
    independent of the others (their inputs are computed once here)."""
    from crm_helpers import cohorts, crosssell, forecast, sales, scoring, segmentation
    from crm_helpers.features import customer_features
    from crm_helpers.periods import Period

    month = Period(as_of.replace(day=1), as_of)
    previous = month.previous_month().end
    features = customer_features(db, as_of)
    basket = crosssell.basket_matrix(db, as_of)
    names = crosssell.product_names(db)
    rules = crosssell.association_rules_table(basket, names)
    model = scoring.churn_backtest(db, as_of).model
    scored = scoring.score_customers(db, as_of, model, previous_as_of=previous)
    opps = scoring.opportunities(db, as_of)
    pipeline = scoring.open_pipeline(opps, scoring.lead_backtest(opps).model)
    return [
        ("RFM + segmentation", "`customer_features` (one SQL aggregate)", lambda: customer_features(db, as_of)),
        ("RFM + segmentation", "`rfm_table` + `segment_summary`",
         lambda: segmentation.segment_summary(segmentation.rfm_table(features))),
        ("RFM + segmentation", "`CustomerClusters(k_range=(2, 8)).fit`",
         lambda: segmentation.CustomerClusters(random_state=0).fit(features)),
        ("churn scoring", "`churn_backtest` (two snapshots, logistic + boosting)",
         lambda: scoring.churn_backtest(db, as_of)),
        ("churn scoring", "`score_customers` (now and a month ago)",
         lambda: scoring.score_customers(db, as_of, model, previous_as_of=previous)),
        ("churn scoring", "`follow_up_queue`", lambda: scoring.follow_up_queue(db, as_of, scored, pipeline)),
        ("forecasting", "`forecast_sales` (history, fits, backtests)", lambda: forecast.forecast_sales(db, as_of, 6)),
        ("association rules", "`basket_matrix`", lambda: crosssell.basket_matrix(db, as_of)),
        ("association rules", "`association_rules_table`", lambda: crosssell.association_rules_table(basket, names)),
        ("association rules", "`next_best_products`", lambda: crosssell.next_best_products(db, rules, as_of)),
        ("association rules", "`cross_sell_probability`",
         lambda: crosssell.cross_sell_probability(db, as_of, period_start=month.start, rules=rules)),
        ("other", "`cohort_table`", lambda: cohorts.cohort_table(db, as_of, last_cohorts=18)),
        ("other", "`monthly_customer_flows`", lambda: sales.monthly_customer_flows(db, as_of)),
    ]


def run(db_path: Path, as_of: str, repeats: int, label: str = "scale store") -> Section:
    """Time every step ``repeats`` times on the store at ``db_path`` as of ``as_of``."""
    section = Section("analyses", f"Analyses one by one on the {label}", busy=f"load average {load_average()} at start")
    db = open_db(db_path)
    day = dt.date.fromisoformat(as_of)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            steps = _steps(db, day)
        except Exception as exc:  # a module still being finished: say so, keep the other parts
            section.notes.append(f"Could not prepare the analyses: {traceback.format_exception_only(exc)[-1].strip()}")
            return section
        totals: dict[str, float] = {}
        for group, what, call in steps:
            log(f"analyses: {what}, {plural(repeats, 'run')}")
            try:
                timing, _ = measure(call, repeats)
            except Exception as exc:
                section.notes.append(f"{group}, {what} failed: {traceback.format_exception_only(exc)[-1].strip()}")
                continue
            section.add(Row(f"{group}: {what}", timing))
            totals[group] = totals.get(group, 0.0) + timing.median
    section.notes.append(
        f"{plural(repeats, 'run')} each, as of {as_of}, in one process with the store's pages in the OS cache. Group "
        "totals (sum of medians): " + "; ".join(f"{g} {t:.2f} s" for g, t in totals.items()) + ".")
    return section
