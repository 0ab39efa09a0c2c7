"""Cross-sell: rules, next products and the cross-sell probability on a hand-built shop; the demo's planted pair."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest

from crm_helpers.analyses import crosssell
from crm_helpers.report import sentences
from crm_helpers.store.connection import memory_db

AS_OF = dt.date(2026, 4, 30)


@pytest.fixture
def shop():
    """Eight paid baskets with lines; a refunded basket and a paid order without lines are left out."""
    db = memory_db()
    db.table("customers").insert_all([{"customer_id": c, "name": f"Customer {c}"} for c in "ABCDEFG"])
    db.table("products").insert_all([
        {"product_id": "P1", "name": "Tea"}, {"product_id": "P2", "name": "Pot"},
        {"product_id": "P3", "name": "Cups"}, {"product_id": "P4", "name": "Whisk"},
    ])
    orders = [("O1", "A", "2026-01-05", "paid", ["P2", "P3"]), ("O2", "B", "2026-01-10", "paid", ["P2", "P3"]),
              ("O3", "C", "2026-01-12", "paid", ["P1"]), ("O4", "D", "2026-01-15", "paid", ["P1", "P2"]),
              ("O5", "E", "2026-02-01", "paid", ["P1"]), ("O6", "F", "2026-02-03", "refunded", ["P3"]),
              ("O7", "A", "2026-03-01", "paid", ["P1"]), ("O8", "D", "2026-03-05", "paid", ["P2"]),
              ("O9", "C", "2026-04-01", "paid", ["P2", "P3"]), ("O10", "G", "2026-04-02", "paid", [])]
    db.table("orders").insert_all({"order_id": o, "customer_id": c, "order_date": d, "amount": 10.0, "status": s}
                                  for o, c, d, s, _ in orders)
    db.table("order_items").insert_all({"order_id": o, "product_id": p, "quantity": 1}
                                       for o, _, _, _, items in orders for p in items)
    return db


def test_basket_matrix_is_sparse_one_hot_of_paid_orders(shop):
    basket = crosssell.basket_matrix(crosssell.paid_lines(shop, AS_OF))
    assert basket.shape == (8, 3) and list(basket.columns) == ["P1", "P2", "P3"]
    kept = {r[0] for r in shop.execute("SELECT rowid FROM orders WHERE order_id NOT IN ('O6', 'O10')").fetchall()}
    assert set(basket.index) == kept  # the refunded order and the order without lines are left out
    assert all(isinstance(t, pd.SparseDtype) for t in basket.dtypes)
    assert basket.sparse.to_dense().sum().tolist() == [4, 5, 3]
    assert crosssell.basket_matrix(crosssell.paid_lines(shop, AS_OF), start=dt.date(2026, 3, 1)).shape == (3, 3)


def test_rules_by_hand(shop):
    basket = crosssell.basket_matrix(crosssell.paid_lines(shop, AS_OF))
    rules = crosssell.association_rules_table(basket, crosssell.product_names(shop), min_support=0.1, min_lift=1.5)
    assert rules["antecedents"].tolist() == [("P3",), ("P2",)]
    assert rules["consequents"].tolist() == [("P2",), ("P3",)]
    first = rules.iloc[0]
    assert first["support"] == pytest.approx(3 / 8)
    assert first["confidence"] == pytest.approx(1.0)
    assert first["lift"] == pytest.approx(1 / (5 / 8))
    assert rules.iloc[1]["confidence"] == pytest.approx(3 / 5)
    assert first["in_words"].startswith("Customers who buy Cups also buy Pot 1.6× more often than average")
    # Tea and Pot are bought together less often than by chance (lift 0.4): not a rule
    assert crosssell.association_rules_table(basket, min_support=0.1, min_lift=0.3)["lift"].min() == pytest.approx(0.4)


def test_thresholds_and_empty_input(shop):
    basket = crosssell.basket_matrix(crosssell.paid_lines(shop, AS_OF))
    assert crosssell.association_rules_table(basket, min_support=0.5).empty
    assert crosssell.association_rules_table(basket, min_support=0.1, min_lift=2).empty
    empty = crosssell.basket_matrix(crosssell.paid_lines(memory_db(), AS_OF))
    assert empty.shape == (0, 0)
    assert list(crosssell.association_rules_table(empty).columns) == crosssell.RULE_COLUMNS
    with pytest.raises(ValueError, match="min_support"):
        crosssell.association_rules_table(basket, min_support=5)


def test_next_best_product_by_hand(shop):
    rules = crosssell.association_rules_table(crosssell.basket_matrix(crosssell.paid_lines(shop, AS_OF)), crosssell.product_names(shop),
                                              min_support=0.1, min_lift=1.5)
    offers = crosssell.next_best_products(shop, rules, lines=crosssell.paid_lines(shop, AS_OF))
    # A, B and C own Pot and Cups; E owns only Tea (no rule); D owns Pot without Cups
    assert offers[["customer_id", "name", "product_id", "product_name", "because"]].to_dict("records") == [
        {"customer_id": "D", "name": "Customer D", "product_id": "P3", "product_name": "Cups", "because": "Pot"}]
    assert offers.iloc[0]["confidence"] == pytest.approx(3 / 5)
    # active = a paid order in the 60 days up to as_of (after 2026-03-01): D still, A no longer
    lines = crosssell.paid_lines(shop, AS_OF)
    assert crosssell.next_best_products(shop, rules, lines=lines, active_days=60)["customer_id"].tolist() == ["D"]
    assert crosssell.next_best_products(shop, rules, lines=lines, active_days=30).empty  # only C (owns all) and G (no lines)
    assert crosssell.next_best_products(shop, rules.iloc[0:0], lines=crosssell.paid_lines(shop, AS_OF)).empty


def test_cross_sell_probability_by_hand(shop):
    rules = crosssell.association_rules_table(crosssell.basket_matrix(crosssell.paid_lines(shop, AS_OF)), crosssell.product_names(shop),
                                              min_support=0.1, min_lift=1.5)
    table = crosssell.cross_sell_probability(crosssell.paid_lines(shop, AS_OF), rules=rules).set_index("measure")
    # repeat orders with lines: O7 (A buys Tea, new), O8 (D buys Pot again), O9 (C buys Pot and Cups, new)
    overall = table.loc["any product new to the customer"]
    assert (overall["opportunities"], overall["successes"]) == (3, 2)
    assert overall["probability"] == pytest.approx(2 / 3)
    # Cups after Pot: only D's O8 (owned Pot, not Cups) is an opportunity, and it holds no Cups
    assert table.loc["Cups after Pot", ["opportunities", "successes"]].tolist() == [1, 0]
    assert math.isnan(table.loc["Pot after Cups", "probability"])  # nobody owned Cups without Pot
    later = crosssell.cross_sell_probability(crosssell.paid_lines(shop, AS_OF), period_start=dt.date(2026, 3, 3), rules=rules)
    later = later.set_index("measure")
    assert later.loc["any product new to the customer", ["period_opportunities", "period_successes"]].tolist() == [2, 1]
    assert later.loc["any product new to the customer", "period_probability"] == pytest.approx(0.5)
    assert later.loc["Cups after Pot", ["period_opportunities", "period_successes"]].tolist() == [1, 0]
    assert "period_probability" not in table.columns


def test_rules_described_in_words_or_with_the_reason(shop):
    basket = crosssell.basket_matrix(crosssell.paid_lines(shop, AS_OF))
    rules = crosssell.association_rules_table(basket, crosssell.product_names(shop), min_support=0.1, min_lift=1.5)
    text = sentences.describe_rules(basket, rules, top=1).splitlines()
    assert text == ["8 paid orders with recorded lines, 3 products, 2 rules.", rules["in_words"].iloc[0]]
    assert "lower min_support" in sentences.describe_rules(basket, rules.iloc[0:0])
    no_lines = crosssell.basket_matrix(crosssell.paid_lines(memory_db(), AS_OF))
    assert "import order_items" in sentences.describe_rules(no_lines, rules.iloc[0:0])


def test_store_without_items_runs():
    db = memory_db()
    db.table("customers").insert({"customer_id": "A"})
    db.table("orders").insert({"order_id": "O1", "customer_id": "A", "order_date": "2026-04-01", "amount": 5,
                               "status": "paid"})
    rules = crosssell.association_rules_table(crosssell.basket_matrix(crosssell.paid_lines(db, AS_OF)))
    assert rules.empty
    assert crosssell.next_best_products(db, rules, lines=crosssell.paid_lines(db, AS_OF)).empty
    probability = crosssell.cross_sell_probability(crosssell.paid_lines(db, AS_OF), rules=rules)
    assert probability["opportunities"].tolist() == [0] and probability["probability"].isna().all()


# -- the demo business --------------------------------------------------------------------------------

DEMO_AS_OF = dt.date(2026, 10, 31)
PAIR = {"P04", "P05"}


@pytest.fixture(scope="module")
def demo_rules(demo_db_path):
    from crm_helpers.store.connection import open_db

    db = open_db(demo_db_path)
    return crosssell.association_rules_table(crosssell.basket_matrix(crosssell.paid_lines(db, DEMO_AS_OF)), crosssell.product_names(db),
                                             min_support=0.01, min_lift=1.2)


def test_demo_planted_pair_is_the_top_rule_by_lift(demo_rules):
    top = demo_rules.iloc[0]
    assert set(top["antecedents"]) | set(top["consequents"]) == PAIR
    assert top["lift"] > 5
    others = demo_rules[demo_rules.apply(lambda r: set(r["antecedents"]) | set(r["consequents"]) != PAIR, axis=1)]
    assert others["lift"].max() < 2.5
    assert "Gaiwan teapot" in top["in_words"] and "Porcelain cup set (4)" in top["in_words"]


def test_demo_gaiwan_owners_without_cups_are_offered_the_cups(demo_db, demo_business, demo_rules):
    offers = crosssell.next_best_products(demo_db, demo_rules,
                                          lines=crosssell.paid_lines(demo_db, DEMO_AS_OF)).set_index("customer_id")
    orders, items = demo_business.tables["orders"], demo_business.tables["order_items"]
    paid = orders[(orders["status"] == "paid") & (orders["order_date"] <= DEMO_AS_OF.isoformat())]
    owned = items.merge(paid, on="order_id").groupby("customer_id")["product_id"].agg(set)
    active = set(paid.loc[paid["order_date"] > (DEMO_AS_OF - dt.timedelta(days=365)).isoformat(), "customer_id"])
    expected = {c for c, products in owned.items() if c in active and "P04" in products and "P05" not in products}
    assert expected and expected <= set(offers.index)
    assert (offers.loc[sorted(expected), "product_id"] == "P05").all()
    assert not any(p in owned[c] for c, p in offers["product_id"].items())  # never offer what they own


def test_demo_cross_sell_probability_counts_repeat_orders(demo_db, demo_business):
    orders, items = demo_business.tables["orders"], demo_business.tables["order_items"]
    paid = orders[orders["status"] == "paid"]
    first = paid.groupby("customer_id")["order_date"].min()
    lines = items.merge(paid, on="order_id")
    repeat = lines[lines["order_date"] > lines["customer_id"].map(first)]
    first_bought = lines.groupby(["customer_id", "product_id"])["order_date"].min().rename("first_bought")
    repeat = repeat.join(first_bought, on=["customer_id", "product_id"])
    successes = repeat.loc[repeat["order_date"] == repeat["first_bought"], "order_id"].nunique()
    table = crosssell.cross_sell_probability(crosssell.paid_lines(demo_db, DEMO_AS_OF)).iloc[0]
    assert table["opportunities"] == repeat["order_id"].nunique()
    assert table["successes"] == successes
    assert 0 < table["probability"] < 1


# -- the shared read against the queries each analysis ran on its own before (the definitions) ---------


def _sql_baskets(db, as_of: dt.date) -> set[tuple[int, str]]:
    rows = db.execute("SELECT o.rowid, i.product_id FROM order_items i JOIN orders o ON o.order_id = i.order_id "
                      "WHERE o.status = 'paid' AND o.order_date <= ?", [as_of.isoformat()]).fetchall()
    return set(rows)


def _sql_next_products(db, rules: pd.DataFrame, as_of: dt.date, active_days: int = 365) -> dict[str, str]:
    """Each active customer's first rule (by confidence, then lift) whose products they own but its consequent."""
    owned = db.execute(
        "SELECT o.customer_id, i.product_id FROM orders o JOIN order_items i ON i.order_id = o.order_id "
        "WHERE o.status = 'paid' AND o.order_date <= :as_of AND o.customer_id IN (SELECT customer_id FROM orders "
        "WHERE status = 'paid' AND order_date <= :as_of AND order_date > date(:as_of, :back))",
        {"as_of": as_of.isoformat(), "back": f"-{active_days} days"}).fetchall()
    products: dict[str, set[str]] = {}
    for customer, product in owned:
        products.setdefault(customer, set()).add(product)
    single = rules[rules["consequents"].map(len) == 1].sort_values(["confidence", "lift"], ascending=False,
                                                                   kind="stable")
    offers = {}
    for customer, held in products.items():
        for rule in single.itertuples():
            if set(rule.antecedents) <= held and rule.consequents[0] not in held:
                offers[customer] = rule.consequents[0]
                break
    return offers


def _sql_cross_sells(db, as_of: dt.date, start: dt.date, rule: tuple[tuple[str, ...], str] | None) -> list[int]:
    """(opportunities, successes, period opportunities, period successes), one SQL pass per measure."""
    params = {"as_of": as_of.isoformat(), "start": start.isoformat()}
    if rule is None:
        sql = """
            WITH paid AS (
                SELECT order_id, customer_id, order_date, min(order_date) OVER (PARTITION BY customer_id) AS first_date
                FROM orders WHERE status = 'paid' AND order_date <= :as_of
            ), lines AS (
                SELECT p.order_id, p.order_date, p.first_date,
                       min(p.order_date) OVER (PARTITION BY p.customer_id, i.product_id) AS first_bought
                FROM paid p JOIN order_items i ON i.order_id = p.order_id
            ), chances AS (
                SELECT order_id, order_date, max(order_date = first_bought) AS success
                FROM lines WHERE order_date > first_date GROUP BY order_id
            )"""
    else:
        antecedents, consequent = rule
        names = {f"a{k}": product for k, product in enumerate(antecedents)}
        params |= names | {"y": consequent}
        firsts = ", ".join(f"max(CASE WHEN product_id = :{key} THEN first_bought END) AS {key}" for key in names)
        sql = f"""
            WITH fb AS (
                SELECT o.customer_id, i.product_id, min(o.order_date) AS first_bought
                FROM order_items i JOIN orders o ON o.order_id = i.order_id
                WHERE o.status = 'paid' AND o.order_date <= :as_of
                GROUP BY o.customer_id, i.product_id
            ), owners AS (
                SELECT customer_id, {firsts}, max(CASE WHEN product_id = :y THEN first_bought END) AS y
                FROM fb GROUP BY customer_id
            ), chances AS (
                SELECT o.order_date,
                       EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.order_id AND i.product_id = :y) AS success
                FROM owners w JOIN orders o ON o.customer_id = w.customer_id
                WHERE o.status = 'paid' AND o.order_date <= :as_of
                  AND {" AND ".join(f"w.{key} < o.order_date" for key in names)}
                  AND (w.y IS NULL OR w.y >= o.order_date)
                  AND EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.order_id)
            )"""
    sql += """
        SELECT count(*), coalesce(sum(success), 0), coalesce(sum(order_date >= :start), 0),
               coalesce(sum(success AND order_date >= :start), 0) FROM chances"""
    return list(db.execute(sql, params).fetchone())


@pytest.mark.parametrize("as_of, start", [(DEMO_AS_OF, dt.date(2026, 10, 1)), (dt.date(2025, 6, 30), dt.date(2025, 1, 1))])
def test_demo_shared_lines_count_as_the_sql_definitions(demo_db, as_of, start):
    lines = crosssell.paid_lines(demo_db, as_of)
    basket = crosssell.basket_matrix(lines)
    coo = basket.sparse.to_coo()
    assert {(int(basket.index[r]), basket.columns[c]) for r, c in zip(coo.row, coo.col)} == _sql_baskets(demo_db, as_of)
    rules = crosssell.association_rules_table(basket, crosssell.product_names(demo_db), min_support=0.01, min_lift=1.2)
    # a rule naming a product nobody bought: it never applies and counts nothing
    ghost = pd.DataFrame([{"antecedents": ("P04",), "consequents": ("NEVER",), "antecedent_names": "x",
                           "consequent_names": "y", "lift": 9.0, "confidence": 0.99, "in_words": ""},
                          {"antecedents": ("NEVER",), "consequents": ("P05",), "antecedent_names": "y",
                           "consequent_names": "z", "lift": 9.0, "confidence": 0.98, "in_words": ""}])
    for table in (rules, pd.concat([ghost, rules], ignore_index=True)):
        offers = crosssell.next_best_products(demo_db, table, lines=lines)
        assert len(offers) > 10
        assert dict(zip(offers["customer_id"], offers["product_id"])) == _sql_next_products(demo_db, table, as_of)
        probability = crosssell.cross_sell_probability(lines, period_start=start, rules=table, top_rules=4)
        expected = [_sql_cross_sells(demo_db, as_of, start, None)] + [
            _sql_cross_sells(demo_db, as_of, start, (r.antecedents, r.consequents[0])) for r in table.head(4).itertuples()]
        counts = ["opportunities", "successes", "period_opportunities", "period_successes"]
        assert probability[counts].to_numpy().tolist() == expected
        assert probability["opportunities"].iloc[0] > 100


def test_apriori_finds_the_itemsets_of_fpgrowth(demo_db):
    from mlxtend.frequent_patterns import apriori, fpgrowth

    basket = crosssell.basket_matrix(crosssell.paid_lines(demo_db, DEMO_AS_OF))
    fast = apriori(basket, min_support=0.01, use_colnames=True, max_len=2, low_memory=True)
    tree = fpgrowth(basket, min_support=0.01, use_colnames=True, max_len=2)
    assert len(fast) > 12
    assert dict(zip(fast["itemsets"], fast["support"])) == dict(zip(tree["itemsets"], tree["support"]))


def test_an_order_without_lines_still_makes_the_next_one_a_repeat_order(shop):
    shop.table("orders").insert({"order_id": "O11", "customer_id": "G", "order_date": "2026-04-10", "amount": 10.0,
                                 "status": "paid"})
    shop.table("order_items").insert({"order_id": "O11", "product_id": "P4", "quantity": 1})
    table = crosssell.cross_sell_probability(crosssell.paid_lines(shop, AS_OF), period_start=dt.date(2026, 4, 1))
    assert table[["opportunities", "successes", "period_opportunities", "period_successes"]].iloc[0].tolist() == [
        4, 3, 2, 2] == _sql_cross_sells(shop, AS_OF, dt.date(2026, 4, 1), None)
