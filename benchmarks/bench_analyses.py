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
    """(group, what, call) for every timed step; each call is independent of the others."""
    from crm_helpers import cohorts, crosssell, forecast, scoring, segmentation
    from crm_helpers.features import customer_features

    features = customer_features(db, as_of)
    basket = crosssell.basket_matrix(db, as_of)
    names = crosssell.product_names(db)
    rules = crosssell.association_rules_table(basket, names)
    churn = scoring.churn_backtest(db, as_of)
    model = churn.model
    return [
        ("RFM + segmentation", "`customer_features` (one SQL aggregate)", lambda: customer_features(db, as_of)),
        ("RFM + segmentation", "`rfm_table` + `segment_summary`",
         lambda: segmentation.segment_summary(segmentation.rfm_table(features))),
        ("RFM + segmentation", "`CustomerClusters(k_range=(2, 8)).fit`",
         lambda: segmentation.CustomerClusters(random_state=0).fit(features)),
        ("churn scoring", "`churn_backtest` (two snapshots, logistic + boosting)",
         lambda: scoring.churn_backtest(db, as_of)),
        ("churn scoring", "`score_customers`", lambda: scoring.score_customers(db, as_of, model)),
        ("forecasting", "`forecast_sales` (history, fits, backtest)", lambda: forecast.forecast_sales(db, as_of)),
        ("association rules", "`basket_matrix`", lambda: crosssell.basket_matrix(db, as_of)),
        ("association rules", "`association_rules_table`", lambda: crosssell.association_rules_table(basket, names)),
        ("association rules", "`next_best_products`", lambda: crosssell.next_best_products(db, rules, as_of)),
        ("other", "`cohort_table`", lambda: cohorts.cohort_table(db, as_of)),
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
