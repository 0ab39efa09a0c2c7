"""Cross-sell: association rules from order baskets, the next product to offer, and the cross-sell rate.

The seeds name association rules for "finding links in what customers buy", and give a
cross-sell formula. Here:

- a **basket** is the set of products in one *paid* order (refunded and cancelled orders are not
  purchases); orders without recorded lines are left out;
- **support** of an itemset: share of baskets holding it; **confidence** of X → Y: share of the
  baskets with X that also hold Y; **lift**: confidence / support of Y, i.e. how many times more
  often Y is in a basket with X than in the average basket (1 = no link);
- rules come from mlxtend's ``fpgrowth`` on a sparse one-hot basket matrix (built with SQL and
  scipy.sparse, no Python loop over orders) and ``association_rules``.

**Cross-sell probability** (the seeds: successful cross-sells / cross-sell opportunities). The
seeds nest two ratios (a "success rate" = actual / potential cross-sells, then divided by the
number of sales opportunities), which would divide a share by a count; we measure the inner ratio,
with these definitions:

- a *cross-sell opportunity* is a repeat order: a paid order, with its lines recorded, placed by a
  customer on a later day than their first paid order;
- a *successful cross-sell* is such an order that holds at least one product the customer had
  never bought in an earlier paid order;
- for one rule X → Y, the opportunity is a repeat order of a customer who already owned every
  product of X but not Y, and the success is that the order holds Y.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from scipy import sparse
from sqlite_utils import Database

from .data import query_df
from .facts import iso, paid

RULE_COLUMNS = [
    "antecedents", "consequents", "antecedent_names", "consequent_names", "antecedent_support",
    "consequent_support", "support", "confidence", "lift", "in_words",
]




def basket_matrix(db: Database, as_of: dt.date, *, start: dt.date | None = None) -> pd.DataFrame:
    """One-hot basket matrix of paid orders placed in [start, as_of] (``start`` None = from the beginning).

    A sparse boolean DataFrame: one row per paid order with recorded lines (index ``order_rowid``,
    the order's SQLite rowid: integers travel from SQLite much faster than text ids), one column
    per product bought at least once (``product_id``, sorted); True when the order holds the
    product (quantities are ignored). Built with ``scipy.sparse``; an empty store gives a 0 × 0 frame.
    """
    lines = query_df(
        db,
        "SELECT o.rowid AS order_rowid, i.product_id FROM order_items i JOIN orders o ON o.order_id = i.order_id "
        f"WHERE {paid('o')} AND o.order_date <= :as_of AND (:start IS NULL OR o.order_date >= :start)",
        {"as_of": as_of.isoformat(), "start": iso(start)},
    )
    if lines.empty:
        return pd.DataFrame(index=pd.Index([], name="order_rowid"))
    rows, orders = pd.factorize(lines["order_rowid"], sort=True)
    cols, products = pd.factorize(lines["product_id"], sort=True)
    matrix = sparse.csr_matrix((np.ones(len(lines), dtype=bool), (rows, cols)), shape=(len(orders), len(products)))
    frame = pd.DataFrame.sparse.from_spmatrix(matrix, index=pd.Index(orders, name="order_rowid"),
                                              columns=list(products))
    return frame.astype(pd.SparseDtype(bool, False))


def product_names(db: Database) -> dict[str, str]:
    """``{product_id: name}`` for every product (the id itself when the name is blank)."""
    frame = query_df(db, "SELECT product_id, coalesce(nullif(name, ''), product_id) AS name FROM products")
    return dict(zip(frame["product_id"], frame["name"]))


def _label(items: tuple[str, ...], names: dict[str, str]) -> str:
    return " + ".join(names.get(p, p) for p in items)


def _in_words(row: pd.Series) -> str:
    return (
        f"Customers who buy {row['antecedent_names']} also buy {row['consequent_names']} "
        f"{row['lift']:.1f}× more often than average ({row['confidence']:.0%} of orders with "
        f"{row['antecedent_names']} hold it, against {row['consequent_support']:.0%} of all orders)."
    )


def association_rules_table(
    basket: pd.DataFrame,
    names: dict[str, str] | None = None,
    *,
    min_support: float = 0.01,
    min_lift: float = 1.5,
    max_len: int = 2,
) -> pd.DataFrame:
    """Association rules X → Y with lift ≥ ``min_lift`` among itemsets with support ≥ ``min_support``.

    Input: :func:`basket_matrix` and optional product names. Columns: ``antecedents``,
    ``consequents`` (tuples of product ids), ``antecedent_names``, ``consequent_names`` (names
    joined with " + "), ``antecedent_support``, ``consequent_support``, ``support``,
    ``confidence`` (shares 0-1), ``lift`` (× the average), ``in_words`` (a sentence). Sorted by
    lift, then confidence and support, strongest first. Empty (same columns) when there are no
    baskets or no rule passes the thresholds.
    """
    from mlxtend.frequent_patterns import association_rules, fpgrowth

    if not 0 < min_support <= 1:
        raise ValueError(f"min_support must be a share between 0 and 1 (e.g. 0.01), not {min_support}")
    if min_lift < 0:
        raise ValueError(f"min_lift must be 0 or more, not {min_lift}")
    empty = pd.DataFrame(columns=RULE_COLUMNS)
    if basket.shape[0] == 0 or basket.shape[1] < 2:
        return empty
    itemsets = fpgrowth(basket, min_support=min_support, use_colnames=True, max_len=max_len)
    if itemsets.empty or itemsets["itemsets"].map(len).max() < 2:
        return empty
    rules = association_rules(itemsets, num_itemsets=len(basket), metric="lift", min_threshold=min_lift)
    if rules.empty:
        return empty
    names = names or {}
    table = pd.DataFrame({
        "antecedents": rules["antecedents"].map(lambda s: tuple(sorted(s))),
        "consequents": rules["consequents"].map(lambda s: tuple(sorted(s))),
        "antecedent_support": rules["antecedent support"],
        "consequent_support": rules["consequent support"],
        "support": rules["support"],
        "confidence": rules["confidence"],
        "lift": rules["lift"],
    })
    table["antecedent_names"] = table["antecedents"].map(lambda items: _label(items, names))
    table["consequent_names"] = table["consequents"].map(lambda items: _label(items, names))
    table = table.sort_values(
        ["lift", "confidence", "support", "antecedent_names", "consequent_names"],
        ascending=[False, False, False, True, True],
    ).reset_index(drop=True)
    table["in_words"] = table.apply(_in_words, axis=1)
    return table[RULE_COLUMNS]


def describe_rules(basket: pd.DataFrame, rules: pd.DataFrame, top: int = 5) -> str:
    """Plain text: how many baskets and rules there are, then the ``top`` rules in words (or why there are none)."""
    head = f"{basket.shape[0]:,} paid orders with recorded lines, {basket.shape[1]} products, {len(rules)} rules."
    if basket.shape[0] == 0:
        return head + " No order lines are recorded, so there is nothing to learn from: import order_items."
    if rules.empty:
        return head + " No rule passes the thresholds: lower min_support or min_lift to see weaker links."
    return "\n".join([head, *rules["in_words"].head(top)])


def next_best_products(
    db: Database,
    rules: pd.DataFrame,
    as_of: dt.date,
    *,
    active_days: int = 365,
    max_rules: int = 200,
) -> pd.DataFrame:
    """For each active customer, the best product they have not bought yet, and the rule behind it.

    *Active*: a paid order in the ``active_days`` days up to ``as_of``. A rule X → Y (single
    product Y) applies to a customer who has bought every product of X and never Y (paid orders
    up to ``as_of``). Every rule in ``rules`` already passed the lift threshold (a real link), so
    the best applicable rule is the one with the highest confidence (the likeliest purchase),
    then the highest lift; ``max_rules`` caps how many single-product rules are considered.
    Computed with sparse matrix products, no loop over customers. Columns: ``customer_id, name,
    product_id, product_name, because`` (the products of X), ``lift, confidence, rule`` (the rule
    in words). Customers to whom no rule applies are left out; sorted by confidence, then lift
    and customer id.
    """
    columns = ["customer_id", "name", "product_id", "product_name", "because", "lift", "confidence", "rule"]
    if rules.empty:
        return pd.DataFrame(columns=columns)
    single = rules[rules["consequents"].map(len) == 1]
    single = single.sort_values(["confidence", "lift"], ascending=False, kind="stable").head(max_rules)
    if single.empty:
        return pd.DataFrame(columns=columns)
    owned = query_df(
        db,
        f"""
        SELECT o.customer_id, i.product_id FROM orders o JOIN order_items i ON i.order_id = o.order_id
        WHERE {paid('o')} AND o.order_date <= :as_of AND o.customer_id IN (
            SELECT customer_id FROM orders
            WHERE {paid()} AND order_date <= :as_of AND order_date > date(:as_of, :back)
        )
        GROUP BY o.customer_id, i.product_id
        """,
        {"as_of": as_of.isoformat(), "back": f"-{active_days} days"},
    )
    if owned.empty:
        return pd.DataFrame(columns=columns)
    cust_codes, customers = pd.factorize(owned["customer_id"], sort=True)
    rule_products = {p for items in single["antecedents"] for p in items} | {c[0] for c in single["consequents"]}
    products = pd.Index(sorted(set(owned["product_id"]) | rule_products))
    held = sparse.csr_matrix(
        (np.ones(len(owned)), (cust_codes, products.get_indexer(owned["product_id"]))),
        shape=(len(customers), len(products)),
    )
    ante_rows = np.repeat(np.arange(len(single)), single["antecedents"].map(len).to_numpy())
    ante_cols = products.get_indexer([p for items in single["antecedents"] for p in items])
    antecedent = sparse.csr_matrix((np.ones(len(ante_rows)), (ante_rows, ante_cols)),
                                   shape=(len(single), len(products)))
    consequent = sparse.csr_matrix(
        (np.ones(len(single)), (np.arange(len(single)), products.get_indexer([c[0] for c in single["consequents"]]))),
        shape=(len(single), len(products)),
    )
    has_antecedent = (held @ antecedent.T).toarray() >= single["antecedents"].map(len).to_numpy()
    lacks_consequent = (held @ consequent.T).toarray() == 0
    applies = has_antecedent & lacks_consequent
    chosen = applies.argmax(axis=1)
    keep = applies[np.arange(len(customers)), chosen]
    picked = single.iloc[chosen[keep]].reset_index(drop=True)
    result = pd.DataFrame({
        "customer_id": customers[keep],
        "product_id": picked["consequents"].map(lambda c: c[0]),
        "product_name": picked["consequent_names"],
        "because": picked["antecedent_names"],
        "lift": picked["lift"],
        "confidence": picked["confidence"],
        "rule": picked["in_words"],
    })
    people = query_df(db, "SELECT customer_id, name FROM customers")
    result = result.merge(people, on="customer_id", how="left")
    result = result.sort_values(["confidence", "lift", "customer_id"], ascending=[False, False, True])
    return result.reset_index(drop=True)[columns]


def cross_sell_probability(
    db: Database,
    as_of: dt.date,
    *,
    period_start: dt.date | None = None,
    rules: pd.DataFrame | None = None,
    top_rules: int = 3,
) -> pd.DataFrame:
    """The seeds' cross-sell probability = successful cross-sells / cross-sell opportunities.

    Definitions in the module docstring; repeat orders placed up to ``as_of`` (every earlier order
    counts for what a customer already owned). First row: any product new to the customer; then
    one row per rule for the ``top_rules`` single-product rules of ``rules``. Columns: ``measure,
    opportunities, successes, probability`` (0-1, NaN when there is no opportunity) and, when
    ``period_start`` is given, the same three for the repeat orders placed in [period_start,
    as_of] (``period_opportunities``, ...). All counting happens in SQLite, one pass per row.
    """
    params: dict[str, str | None] = {"as_of": as_of.isoformat(), "start": iso(period_start)}
    overall = db.execute(
        f"""
        WITH paid AS (
            SELECT order_id, customer_id, order_date, min(order_date) OVER (PARTITION BY customer_id) AS first_date
            FROM orders WHERE {paid()} AND order_date <= :as_of
        ), lines AS (
            SELECT p.order_id, p.order_date, p.first_date,
                   min(p.order_date) OVER (PARTITION BY p.customer_id, i.product_id) AS first_bought
            FROM paid p JOIN order_items i ON i.order_id = p.order_id
        ), repeat_orders AS (
            SELECT order_id, order_date, max(order_date = first_bought) AS has_new
            FROM lines WHERE order_date > first_date GROUP BY order_id
        )
        SELECT count(*), coalesce(sum(has_new), 0),
               coalesce(sum(order_date >= :start), 0), coalesce(sum(has_new AND order_date >= :start), 0)
        FROM repeat_orders
        """,
        params,
    ).fetchone()
    rows = [("any product new to the customer", *overall)]
    if rules is not None and not rules.empty:
        single = rules[rules["consequents"].map(len) == 1].head(top_rules)
        for rule in single.itertuples():
            counts = _rule_cross_sell(db, rule.antecedents, rule.consequents[0], params)
            rows.append((f"{rule.consequent_names} after {rule.antecedent_names}", *counts))
    table = pd.DataFrame(rows, columns=["measure", "opportunities", "successes", "period_opportunities",
                                        "period_successes"])
    table["probability"] = table["successes"] / table["opportunities"].replace(0, np.nan)
    table["period_probability"] = table["period_successes"] / table["period_opportunities"].replace(0, np.nan)
    columns = ["measure", "opportunities", "successes", "probability"]
    if period_start is not None:
        columns += ["period_opportunities", "period_successes", "period_probability"]
    return table[columns]


def _rule_cross_sell(
    db: Database, antecedents: tuple[str, ...], consequent: str, params: dict[str, str | None]
) -> tuple[int, int, int, int]:
    """(opportunities, successes, period opportunities, period successes) of one rule X → Y, in SQL.

    The customers' first purchase dates of the rule's products come from the product index; only
    the repeat orders of customers who own X are then looked at.
    """
    names = {f"a{k}": product for k, product in enumerate(antecedents)}
    firsts = ", ".join(f"max(CASE WHEN product_id = :{key} THEN first_bought END) AS {key}" for key in names)
    owned_before = " AND ".join(f"w.{key} < o.order_date" for key in names)
    placeholders = ", ".join(":" + key for key in [*names, "y"])
    sql = f"""
        WITH fb AS (
            SELECT o.customer_id, i.product_id, min(o.order_date) AS first_bought
            FROM order_items i JOIN orders o ON o.order_id = i.order_id
            WHERE {paid('o')} AND o.order_date <= :as_of AND i.product_id IN ({placeholders})
            GROUP BY o.customer_id, i.product_id
        ), owners AS (
            SELECT customer_id, {firsts}, max(CASE WHEN product_id = :y THEN first_bought END) AS y
            FROM fb GROUP BY customer_id
        ), chances AS (
            SELECT o.order_date,
                   EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.order_id AND i.product_id = :y) AS success
            FROM owners w JOIN orders o ON o.customer_id = w.customer_id
            WHERE {paid('o')} AND o.order_date <= :as_of AND {owned_before}
              AND (w.y IS NULL OR w.y >= o.order_date)
              AND EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.order_id)
        )
        SELECT count(*), coalesce(sum(success), 0),
               coalesce(sum(order_date >= :start), 0), coalesce(sum(success AND order_date >= :start), 0)
        FROM chances
    """
    row = db.execute(sql, {**params, **names, "y": consequent}).fetchone()
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])
