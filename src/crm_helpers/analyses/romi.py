"""Return on marketing: which campaigns paid for themselves, and which only seemed to.

For each campaign (``campaign_table``):

- **Attribution rule.** A paid order belongs to the campaign whose code it carries
  (``orders.campaign_id``). An order without a code belongs to a campaign that contacted its
  customer on or up to ``attribution_window_days`` days before the order; when several did,
  to the first contact (first touch, the default) or the last one (``touch="last"``). Orders
  carrying another campaign's code are never re-attributed.
- **Gross ROMI** as the owner's articles define it: attributed revenue ÷ cost × 100%.
  **Net ROMI**: (attributed margin − cost) ÷ cost × 100%. Margin is the order's amount minus its
  cost when the order carries a cost, else amount × ``margin``.
- **Incremental revenue**: what contacted customers spent in the campaign window (from the first
  contact to the last contact + the attribution window, every paid order, coded or not) minus
  what comparable customers who were *not* contacted spent over the same days, scaled to the
  number contacted. Comparable means: already known before the first contact and in the same
  stratum of marketing consent and prior activity (bought in the 180 days before, bought
  earlier, never bought); strata are weighted by the contacted customers they hold. A seeded
  bootstrap (customers resampled within stratum and group) gives the confidence interval.
  Attributed revenue counts orders that would have happened anyway; incremental revenue does not.
- Cost per acquired customer (customers whose first paid order is attributed to the campaign),
  payback time (days from the start until the cumulative attributed margin covers the cost).

A figure that cannot be computed is missing (``pd.NA`` in a nullable column, never inf or NaN)
and the ``note`` column says why: a campaign that cost nothing has no ROMI; a campaign with no
contacts recorded and no coded order has nothing attributed to it; without a contact list there
is no comparison group. Net revenue counts paid orders only (``status = 'paid'``): refunded and
cancelled orders are neither revenue nor purchases.
"""

from __future__ import annotations

import datetime as dt
import zlib
from typing import Literal

import numpy as np
import pandas as pd
from sqlite_utils import Database

from crm_helpers.errors import CrmError
from crm_helpers.store.queries import memoized, query_df, store_currency
from crm_helpers.store.facts import iso, net_revenue_sql, next_day, on_or_before_sql, order_margin, paid
from crm_helpers.store.periods import Period
from crm_helpers.i18n import t, tn
from crm_helpers.store.values import Action, Attention, Headline, money, money_span

ATTRIBUTION_WINDOW_DAYS = 30
"""Days after a contact in which an order counts as the campaign's (attributed), unless the order names another."""

PRIOR_ACTIVITY_DAYS = 180
"""A customer who bought within this many days before a campaign counts as active in the comparison."""

MONEY_COLUMNS = [
    "cost", "attributed_revenue", "attributed_margin", "gross_romi_pct", "net_romi_pct",
    "incremental_revenue", "incremental_ci_low", "incremental_ci_high", "incremental_net_romi_pct",
    "cost_per_acquired", "payback_days",
]

TABLE_COLUMNS = [
    "campaign_id", "name", "channel", "start_date", "kind", "cost", "contacted", "responded", "buyers",
    "attributed_orders", "attributed_revenue", "attributed_margin", "gross_romi_pct", "net_romi_pct",
    "comparison_customers", "incremental_revenue", "incremental_ci_low", "incremental_ci_high",
    "incremental_net_romi_pct", "acquired_customers", "cost_per_acquired", "payback_days", "note",
]


ATTRIBUTION_COLUMNS = [
    "campaign_id", "name", "channel", "start_date", "kind", "cost", "contacted", "buyers", "attributed_orders",
    "attributed_revenue", "attributed_margin", "gross_romi_pct", "net_romi_pct", "acquired_customers",
    "cost_per_acquired", "payback_days", "note",
]
"""The columns of :func:`campaign_table` about attributed orders, for display."""

LIFT_COLUMNS = [
    "campaign_id", "name", "cost", "contacted", "comparison_customers", "attributed_revenue", "incremental_revenue",
    "incremental_ci_low", "incremental_ci_high", "incremental_net_romi_pct",
]
"""The columns of :func:`campaign_table` about incremental revenue, for display."""

MONEY_COLUMNS = ["cost", "attributed_revenue", "attributed_margin", "incremental_revenue", "incremental_ci_low",
                 "incremental_ci_high"]
"""The columns of :func:`campaign_table` and :func:`channel_totals` in money (the store's currency),
whose headings name the currency on the page."""


class RomiError(CrmError, ValueError):
    """The ROMI analysis cannot run with these settings."""


def attributed_orders(
    db: Database, as_of: dt.date | str, *, attribution_window_days: int = ATTRIBUTION_WINDOW_DAYS,
    touch: Literal["first", "last"] = "first", margin: float = 0.3,
) -> pd.DataFrame:
    """Paid orders up to ``as_of`` attributed to a campaign under the rule in the module docstring.

    One row per attributed order: order_id, customer_id, order_date (datetime64), amount (gross
    revenue of a paid order), margin (same currency: amount − cost, or amount × ``margin``, the
    gross margin share, when the order carries no cost), campaign_id, how ("code" or "contact").
    """
    if attribution_window_days < 0:
        raise RomiError("the attribution window must be 0 days or more")
    if touch not in ("first", "last"):
        raise RomiError("touch must be 'first' or 'last'")
    end_next = next_day(as_of)
    coded = query_df(
        db,
        f"SELECT order_id, customer_id, order_date, {net_revenue_sql()} AS amount, cost, campaign_id FROM orders "
        f"WHERE {paid()} AND campaign_id IS NOT NULL AND {on_or_before_sql('order_date', '?')}",
        params=[end_next],
    )
    coded["how"] = "code"
    by_contact = query_df(
        db,
        f"SELECT o.order_id, o.customer_id, o.order_date, {net_revenue_sql('o')} AS amount, o.cost, cc.campaign_id, "
        "cc.contacted_at "
        "FROM campaign_contacts cc JOIN orders o ON o.customer_id = cc.customer_id "
        f"WHERE {paid('o')} AND o.campaign_id IS NULL AND {on_or_before_sql('o.order_date', '?')} "
        f"AND o.order_date >= cc.contacted_at AND {on_or_before_sql('o.order_date', 'date(cc.contacted_at, ?)')}",
        params=[end_next, f"+{int(attribution_window_days) + 1} days"],  # the window's last day, up to its end
    )
    by_contact = (
        by_contact.sort_values(["order_id", "contacted_at", "campaign_id"], ascending=[True, touch == "first", True])
        .drop_duplicates("order_id")
        .drop(columns="contacted_at")
    )
    by_contact["how"] = "contact"
    frame = pd.concat([coded, by_contact], ignore_index=True)
    frame["order_date"] = pd.to_datetime(frame["order_date"])
    frame["amount"] = frame["amount"].astype(float)
    frame["margin"] = order_margin(frame, margin).astype(float)
    return frame[["order_id", "customer_id", "order_date", "amount", "margin", "campaign_id", "how"]]


def _bootstrap_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``n_boot`` means of resamples (with replacement) of ``values``, drawing only the non-zero ones.

    Most customers spend nothing in a campaign window. A resample of n values holds
    K ~ Binomial(n, share of non-zero values) non-zero ones, each drawn uniformly among them, so
    drawing K and then K non-zero values gives exactly the ordinary bootstrap, at a fraction of
    the cost. Replicates are processed in blocks to bound memory.
    """
    n = len(values)
    nonzero = values[values != 0]
    if len(nonzero) == 0:
        return np.zeros(n_boot)
    counts = rng.binomial(n, len(nonzero) / n, size=n_boot)
    sums = np.empty(n_boot)
    block = max(1, 4_000_000 // max(int(counts.max()), 1))
    for start in range(0, n_boot, block):  # blocks of replicates, not customers
        part = counts[start:start + block]
        draws = nonzero[rng.integers(0, len(nonzero), size=int(part.sum()))]
        sums[start:start + block] = np.bincount(np.repeat(np.arange(len(part)), part), weights=draws,
                                                minlength=len(part))
    return sums / n


def _bootstrap_difference(
    strata: list[tuple[np.ndarray, np.ndarray, float]], n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """Bootstrap draws of Σ_s weight_s · (mean contacted_s − mean comparison_s), resampling within groups."""
    draws = np.zeros(n_boot)
    for treated, control, weight in strata:
        draws += weight * (_bootstrap_means(treated, n_boot, rng) - _bootstrap_means(control, n_boot, rng))
    return draws


def _customer_base(db: Database) -> pd.DataFrame:
    """Every customer with marketing consent, since when they are known, and their first paid order date.

    ``NOT INDEXED``: one scan of the orders and a sort beat a probe of the customer index per order
    (scale store, 1.25M orders: 1.0 s against 2.8 s of CPU)."""
    return query_df(
        db,
        "SELECT c.customer_id, coalesce(c.consent_marketing, 0) AS consent, "
        "coalesce(c.first_seen, f.first_order) AS known_since, f.first_order "
        "FROM customers c LEFT JOIN (SELECT customer_id, min(order_date) AS first_order FROM orders NOT INDEXED "
        f"WHERE {paid()} GROUP BY customer_id) f ON f.customer_id = c.customer_id",
    )


def incremental_revenue(
    db: Database,
    campaign_id: str,
    *,
    as_of: dt.date | str,
    attribution_window_days: int = ATTRIBUTION_WINDOW_DAYS,
    n_boot: int = 2000,
    confidence: float = 0.95,
    random_state: int = 0,
) -> dict[str, object]:
    """Incremental revenue of one campaign against not-contacted comparable customers, with a bootstrap CI.

    Returns a dict: ``incremental_revenue`` (total over the contacted customers, in the orders'
    currency, net revenue of paid orders), ``ci_low``, ``ci_high``, ``per_customer`` (difference
    of stratified means), ``contacted`` and ``comparison_customers`` (customers used),
    ``window_start``/``window_end`` (the calendar window both groups are measured over) and
    ``note`` (why it is not defined, or caveats; "" if none). Values are None when not defined.
    The bootstrap is seeded by ``random_state`` and the campaign id, so each campaign's interval
    is reproducible and does not change when other campaigns are added.
    """
    contacts = query_df(
        db, "SELECT customer_id, contacted_at FROM campaign_contacts WHERE campaign_id = ? "
        f"AND {on_or_before_sql('contacted_at', '?')}", params=[campaign_id, next_day(as_of)],
    )
    return _lift(db, _customer_base(db), campaign_id, contacts, as_of, attribution_window_days, n_boot, confidence,
                 random_state)


def _lift(
    db: Database, base: pd.DataFrame, campaign_id: str, contacts: pd.DataFrame, as_of: dt.date | str,
    attribution_window_days: int, n_boot: int, confidence: float, random_state: int,
) -> dict[str, object]:
    """:func:`incremental_revenue` given the customer base and the campaign's contacts (customer_id, contacted_at)."""
    end = dt.date.fromisoformat(iso(as_of))
    result: dict[str, object] = {
        "incremental_revenue": None, "ci_low": None, "ci_high": None, "per_customer": None,
        "contacted": 0, "comparison_customers": 0, "window_start": None, "window_end": None, "note": "",
    }
    if contacts.empty:
        result["note"] = "incremental revenue not defined: no contacts recorded, so there is no comparison group"
        return result
    start = dt.date.fromisoformat(contacts["contacted_at"].min())
    full_end = dt.date.fromisoformat(contacts["contacted_at"].max()) + dt.timedelta(days=int(attribution_window_days))
    window_end = min(full_end, end)
    result.update(window_start=start, window_end=window_end)
    active = query_df(  # bought in the PRIOR_ACTIVITY_DAYS before the first contact: a range of the date index
        db, f"SELECT DISTINCT customer_id FROM orders WHERE {paid()} AND order_date >= ? AND order_date < ?",
        params=[(start - dt.timedelta(days=PRIOR_ACTIVITY_DAYS)).isoformat(), start.isoformat()],
    )
    spent = query_df(
        db, f"SELECT customer_id, sum({net_revenue_sql()}) AS revenue FROM orders WHERE {paid()} "
        f"AND order_date >= ? AND {on_or_before_sql('order_date', '?')} GROUP BY customer_id",
        params=[start.isoformat(), next_day(window_end)],
    )
    contacted = base["customer_id"].isin(contacts["customer_id"])
    known_before = base["known_since"].notna() & (base["known_since"] < start.isoformat())
    people = base[contacted | known_before].assign(contacted=contacted)
    bought_before = people["first_order"].notna() & (people["first_order"] < start.isoformat())
    activity = np.where(people["customer_id"].isin(active["customer_id"]), "active",
                        np.where(bought_before, "lapsed", "never bought"))
    people = people.assign(
        stratum=people["consent"].astype(str) + "|" + activity,
        revenue=people["customer_id"].map(spent.set_index("customer_id")["revenue"]).fillna(0.0).astype(float),
    )
    strata, unmatched, n_comparison = [], 0, 0
    for _, group in people.groupby("stratum", sort=True):  # a handful of strata, not customers
        treated = group.loc[group["contacted"], "revenue"].to_numpy(dtype=float)
        control = group.loc[~group["contacted"], "revenue"].to_numpy(dtype=float)
        if len(treated) == 0:
            continue
        if len(control) == 0:
            unmatched += len(treated)
            continue
        strata.append((treated, control, len(treated)))
        n_comparison += len(control)
    result.update(contacted=int(people["contacted"].sum()), comparison_customers=n_comparison)
    if not strata:
        result["note"] = ("incremental revenue not defined: every customer comparable to the contacted ones "
                          "was contacted too, so there is no comparison group")
        return result
    matched = sum(w for _, _, w in strata)
    strata = [(t, c, w / matched) for t, c, w in strata]
    per_customer = sum(w * (t.mean() - c.mean()) for t, c, w in strata)
    seed = np.random.SeedSequence([int(random_state), zlib.crc32(campaign_id.encode())])
    draws = _bootstrap_difference(strata, n_boot, np.random.default_rng(seed)) * matched
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    result.update(incremental_revenue=float(per_customer * matched), ci_low=float(low), ci_high=float(high),
                  per_customer=float(per_customer))
    notes = []
    if unmatched:
        notes.append(t("{count} contacted customers had no uncontacted look-alike and are left out of the lift",
                       count=unmatched))
    if window_end < full_end:
        notes.append(f"the campaign window is still open on {end.isoformat()}")
    result["note"] = "; ".join(notes)
    return result


def _payback_days(orders: pd.DataFrame, cost: float, start: pd.Timestamp) -> float | None:
    """Days from ``start`` until the cumulative attributed margin first covers ``cost``; None if never."""
    if orders.empty:
        return None
    ordered = orders.sort_values("order_date")
    reached = ordered["margin"].cumsum().to_numpy() >= cost
    if not reached.any():
        return None
    return float(max((ordered["order_date"].to_numpy()[reached.argmax()] - start.to_datetime64())
                     / np.timedelta64(1, "D"), 0.0))


def _pct(numerator: float, cost: float) -> float | None:
    return None if cost <= 0 else 100.0 * numerator / cost


@memoized
def campaign_table(
    db: Database,
    as_of: dt.date | str,
    *,
    attribution_window_days: int = ATTRIBUTION_WINDOW_DAYS,
    margin: float = 0.3,
    touch: Literal["first", "last"] = "first",
    n_boot: int = 2000,
    confidence: float = 0.95,
    random_state: int = 0,
) -> pd.DataFrame:
    """One row per campaign started on or before ``as_of``: cost, reach, attribution, ROMI, lift.

    Columns: campaign_id, name, channel, start_date, kind ("acquisition" when most of its buyers
    made their first purchase through it, else "retention"), cost, contacted (customers in the
    contact list), responded (recorded opens/clicks/replies), buyers (customers with an attributed
    order), attributed_orders, attributed_revenue (gross amount of attributed paid orders),
    attributed_margin, gross_romi_pct (revenue ÷ cost × 100, the articles' ROMI), net_romi_pct
    ((margin − cost) ÷ cost × 100), comparison_customers, incremental_revenue with
    incremental_ci_low/high (``confidence`` bootstrap interval), incremental_net_romi_pct
    ((incremental revenue × margin share − cost) ÷ cost × 100), acquired_customers,
    cost_per_acquired, payback_days (from the start until attributed margin covers the cost),
    note (why a figure is missing). Money in the orders' currency. Missing figures are ``pd.NA``.
    ``margin`` (share of revenue) is used for orders that carry no cost. Memoized
    (:func:`~crm_helpers.store.queries.memoized`): the page and :func:`headline_figures` share one
    table, treat it as read-only.
    """
    if not 0 <= margin <= 1:
        raise RomiError("the margin is a share of revenue between 0 and 1")
    if not 0 < confidence < 1:
        raise RomiError("the confidence level must be between 0 and 1, e.g. 0.95")
    end, end_next = iso(as_of), next_day(as_of)
    campaigns = query_df(
        db,
        "SELECT c.campaign_id, c.name, c.channel, "
        "coalesce(c.start_date, k.first_contact, o.first_order) AS start_date, "
        "c.cost, coalesce(k.contacted, 0) AS contacted, coalesce(k.responded, 0) AS responded "
        "FROM campaigns c LEFT JOIN (SELECT campaign_id, count(*) AS contacted, "
        "  sum(coalesce(responded, 0)) AS responded, "
        f"  min(contacted_at) AS first_contact FROM campaign_contacts WHERE {on_or_before_sql('contacted_at', '?')} "
        "  GROUP BY campaign_id) k "
        "ON k.campaign_id = c.campaign_id "
        "LEFT JOIN (SELECT campaign_id, min(order_date) AS first_order FROM orders "
        f"  WHERE {paid()} AND campaign_id IS NOT NULL GROUP BY campaign_id) o ON o.campaign_id = c.campaign_id "
        f"WHERE {on_or_before_sql('coalesce(c.start_date, k.first_contact, o.first_order)', '?')} "
        "ORDER BY start_date, c.campaign_id",
        params=[end_next, end_next],
    )
    if campaigns.empty:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    orders = attributed_orders(db, end, attribution_window_days=attribution_window_days, touch=touch, margin=margin)
    base = _customer_base(db)
    orders = orders.merge(base[["customer_id", "first_order"]], on="customer_id", how="left")
    orders["acquired"] = orders["order_date"] == pd.to_datetime(orders["first_order"])
    by_campaign = dict(tuple(orders.groupby("campaign_id")))
    contacts = query_df(
        db, "SELECT campaign_id, customer_id, contacted_at FROM campaign_contacts "
        f"WHERE {on_or_before_sql('contacted_at', '?')}", params=[end_next]
    )
    contacts_of = dict(tuple(contacts.groupby("campaign_id")))
    rows = []
    for c in campaigns.itertuples(index=False):  # one row per campaign: a handful, not customers
        mine = by_campaign.get(c.campaign_id, orders.iloc[0:0])
        cost_known = c.cost is not None and not pd.isna(c.cost)
        cost = float(c.cost) if cost_known else 0.0
        revenue, margin_sum = float(mine["amount"].sum()), float(mine["margin"].sum())
        buyers = mine["customer_id"].nunique()
        acquired = mine.loc[mine["acquired"], "customer_id"].nunique()
        notes: list[str] = []
        gross = net = None
        if not cost_known:
            notes.append("ROMI not defined: no cost is recorded for the campaign")
        elif cost <= 0:
            notes.append("ROMI not defined: the campaign cost nothing (ROMI divides by the cost)")
        elif c.contacted == 0 and mine.empty:
            notes.append("ROMI not defined: no contacts recorded and no order carries its code, "
                         "so nothing can be attributed to it")
        else:
            gross, net = _pct(revenue, cost), _pct(margin_sum - cost, cost)
        lift = _lift(db, base, c.campaign_id, contacts_of.get(c.campaign_id, contacts.iloc[0:0]), end,
                     attribution_window_days, n_boot, confidence, random_state)
        if lift["note"]:
            notes.append(str(lift["note"]))
        share = margin_sum / revenue if revenue > 0 else margin
        inc = lift["incremental_revenue"]
        inc_net = None if inc is None else _pct(float(inc) * share - cost, cost)
        payback = None
        if cost > 0:
            payback = _payback_days(mine, cost, pd.Timestamp(c.start_date))
            if payback is None and gross is not None:
                notes.append(f"payback not reached by {end}")
        per_acquired = cost / acquired if cost > 0 and acquired > 0 else None
        rows.append({
            "campaign_id": c.campaign_id, "name": c.name, "channel": c.channel, "start_date": c.start_date,
            "kind": "acquisition" if buyers and acquired / buyers >= 0.5 else "retention",
            "cost": cost if cost_known else None, "contacted": int(c.contacted), "responded": int(c.responded),
            "buyers": int(buyers),
            "attributed_orders": int(len(mine)), "attributed_revenue": revenue, "attributed_margin": margin_sum,
            "gross_romi_pct": gross, "net_romi_pct": net,
            "comparison_customers": int(lift["comparison_customers"]), "incremental_revenue": inc,
            "incremental_ci_low": lift["ci_low"], "incremental_ci_high": lift["ci_high"],
            "incremental_net_romi_pct": inc_net, "acquired_customers": int(acquired),
            "cost_per_acquired": per_acquired, "payback_days": payback,
            "note": t("; ").join(t(note) for note in notes),
        })
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    for col in MONEY_COLUMNS:
        table[col] = pd.array(table[col].tolist(), dtype="Float64")
    return table


def channel_totals(table: pd.DataFrame) -> pd.DataFrame:
    """Totals per marketing channel of a :func:`campaign_table`.

    Columns: channel, campaigns, cost, attributed_revenue, attributed_margin, gross_romi_pct,
    net_romi_pct (over the channel's campaigns whose ROMI is defined), incremental_revenue (sum
    over the campaigns where it is defined; missing if none), note.
    """
    if table.empty:
        return pd.DataFrame(columns=["channel", "campaigns", "cost", "attributed_revenue", "attributed_margin",
                                     "gross_romi_pct", "net_romi_pct", "incremental_revenue", "note"])
    frame = table.assign(channel=table["channel"].fillna("unknown"), defined=table["gross_romi_pct"].notna())
    rows = []
    for channel, group in frame.groupby("channel", sort=True):
        ok = group[group["defined"]]
        cost = float(ok["cost"].sum())
        inc = group["incremental_revenue"].dropna()
        note = "" if len(ok) == len(group) else (
            tn("{n} campaign without a defined ROMI left out of the channel's ROMI",
               "{n} campaigns without a defined ROMI left out of the channel's ROMI", n=len(group) - len(ok)))
        rows.append({
            "channel": channel, "campaigns": len(group), "cost": float(group["cost"].sum()),
            "attributed_revenue": float(group["attributed_revenue"].sum()),
            "attributed_margin": float(group["attributed_margin"].sum()),
            "gross_romi_pct": _pct(float(ok["attributed_revenue"].sum()), cost),
            "net_romi_pct": _pct(float(ok["attributed_margin"].sum()) - cost, cost),
            "incremental_revenue": float(inc.sum()) if len(inc) else None,
            "note": note if cost > 0 else "ROMI not defined: no campaign of this channel has a defined ROMI",
        })
    out = pd.DataFrame(rows)
    for col in ("gross_romi_pct", "net_romi_pct", "incremental_revenue"):
        out[col] = pd.array(out[col].tolist(), dtype="Float64")
    return out


def lift_ranking(table: pd.DataFrame, currency: str = "") -> pd.DataFrame:
    """Campaigns ranked by measured extra revenue (the lift against not-contacted customers), every
    campaign included, each with a plain verdict.

    Columns: campaign_id, name, start_date, cost, incremental_revenue, incremental_ci_low,
    incremental_ci_high, measurable (the interval excludes 0), verdict (one sentence). A campaign
    whose interval includes 0 has "no measurable effect", however good its attributed ROMI; one
    without a comparison group (no contact list) cannot be measured and is ranked last, with what
    its tagged orders brought. Highest measured extra revenue first.
    """
    columns = ["campaign_id", "name", "start_date", "cost", "incremental_revenue", "incremental_ci_low",
               "incremental_ci_high", "measurable", "verdict"]
    if table.empty:
        return pd.DataFrame(columns=columns)
    frame = table.copy()
    mid = frame["incremental_revenue"].astype("Float64")
    low, high = frame["incremental_ci_low"].astype("Float64"), frame["incremental_ci_high"].astype("Float64")
    frame["measurable"] = ((low > 0) | (high < 0)).fillna(False).astype(bool)
    verdicts = []
    for row, m, lo, hi, real in zip(frame.itertuples(), mid, low, high, frame["measurable"]):
        cost = (t("cost {money}", money=money(float(row.cost), currency)) if float(row.cost or 0) > 0
                else t("cost nothing"))
        fields = dict(name=row.name, cost=cost)
        if not pd.isna(m):
            fields.update(range=money_span(float(lo), float(hi), currency=currency))
        if pd.isna(m):
            verdicts.append(t("{name} {cost}; its effect cannot be measured (no list of contacted customers to "
                              "compare); orders tagged with it brought {brought}.",
                              brought=money(float(row.attributed_revenue), currency), **fields))
        elif real and m > 0:
            verdicts.append(t("{name} {cost} and brought about {lift} of extra revenue (95 % range {range}).",
                              lift=money(float(m), currency), **fields))
        elif real:
            verdicts.append(t("{name} {cost} and came with {lift} less revenue than from customers not contacted "
                              "(95 % range {range}).", lift=money(-float(m), currency), **fields))
        else:
            verdicts.append(t("{name} {cost} and brought no measurable extra revenue (95 % range {range}).",
                              **fields))
    frame["verdict"] = verdicts
    frame["_rank"] = mid.astype("float64").fillna(-np.inf)
    frame = frame.sort_values(["_rank", "campaign_id"], ascending=[False, True])
    return frame[columns].reset_index(drop=True)


def _recent_ranking(db: Database, period: Period, previous: Period, *, attribution_window_days: int,
                    margin: float) -> pd.DataFrame:
    """:func:`lift_ranking` of the campaigns of :func:`campaign_table` as of ``period``'s last day that
    ran in ``previous`` or ``period`` (:func:`near_period`)."""
    table = campaign_table(db, period.end, attribution_window_days=attribution_window_days, margin=margin)
    return lift_ranking(near_period(db, table, start=previous.start, end=period.end, months=0), store_currency(db))


def attention_items(db: Database, *, period: Period, attribution_window_days: int = ATTRIBUTION_WINDOW_DAYS,
                    margin: float = 0.3) -> list[Attention]:
    """Campaigns of ``period`` or the calendar month before (:func:`near_period`; settings as
    :func:`campaign_table`'s) that cost money and brought no measurable extra revenue, each with its
    verdict and its cost (store currency) as the money at stake."""
    ranking = _recent_ranking(db, period, period.previous_month(), attribution_window_days=attribution_window_days,
                              margin=margin)
    wasted = ranking.loc[(ranking["cost"].astype("float64") > 0)
                         & ~(ranking["measurable"] & (ranking["incremental_revenue"].astype("float64") > 0))]
    return [Attention(f"campaign {row.campaign_id}", row.verdict, money=float(row.cost))
            for row in wasted.itertuples()]


def headline_figures(db: Database, *, period: Period, previous: Period | None = None,
                     attribution_window_days: int = ATTRIBUTION_WINDOW_DAYS, margin: float = 0.3) -> list[Headline]:
    """The ``best_campaign_lift`` headline: the largest measurable extra revenue (store currency,
    :func:`lift_ranking`) of the campaigns that ran in ``period`` or ``previous`` (default: the
    calendar month before ``period``; settings as :func:`campaign_table`'s), with its 95 % interval
    and verdict; None with a plain note when no campaign brought measurable extra revenue."""
    currency = store_currency(db)
    ranking = _recent_ranking(db, period, previous or period.previous_month(),
                              attribution_window_days=attribution_window_days, margin=margin)
    best = ranking[ranking["measurable"] & (ranking["incremental_revenue"] > 0)].head(1)
    label = "Extra revenue of the best recent campaign"
    if best.empty:
        return [Headline("best_campaign_lift", None, label, unit=currency, good="up",
                         missing="no campaign with a measurable effect",
                         note="no campaign of this month or the last brought extra revenue clearly above zero "
                              "(its 95 % range)")]
    row = best.iloc[0]
    return [Headline("best_campaign_lift", float(row["incremental_revenue"]), label, unit=currency, good="up",
                     interval=(row["incremental_ci_low"], row["incremental_ci_high"]), note=row["verdict"])]


STOP_CAMPAIGN_KEY = "stop campaign "
"""The key of a "stop this campaign" :class:`~crm_helpers.store.values.Action`: this prefix and the campaign's id."""

ACTION_MONTHS = 12
"""The campaigns :func:`actions` weighs: those that ran in the report month or the 11 months before."""


def actions(db: Database, *, period: Period, attribution_window_days: int = ATTRIBUTION_WINDOW_DAYS,
            margin: float = 0.3) -> list[Action]:
    """Campaigns of the last :data:`ACTION_MONTHS` months up to ``period``'s end to repeat or to stop
    (settings as :func:`campaign_table`'s; money in the store's currency).

    Repeat: a campaign whose extra revenue is measurable and above zero (:func:`lift_ranking`);
    the money is what a repeat would bring if it did as well, extra revenue − cost, its range the
    95 % interval of the extra revenue − cost. Stop: a campaign that cost money and brought no
    measurable extra revenue; the money is its cost, saved by not repeating it (a fact: no range).
    Campaigns without a list of contacted customers cannot be measured and give no action.
    """
    currency = store_currency(db)
    table = campaign_table(db, period.end, attribution_window_days=attribution_window_days, margin=margin)
    ranking = lift_ranking(near_period(db, table, start=period.start, end=period.end, months=ACTION_MONTHS - 1),
                           currency)
    found = []
    for row in ranking.itertuples():
        cost, lift = float(row.cost or 0.0), row.incremental_revenue
        if pd.isna(lift):
            continue
        section = "Campaigns ranked by what they really brought"
        if row.measurable and lift > 0:
            found.append(Action(
                f"repeat campaign {row.campaign_id}",
                t("Repeat \"{name}\": it cost {cost} and brought about {lift} of extra revenue over customers not "
                  "contacted (95 % range {range}).", name=row.name, cost=money(cost, currency),
                  lift=money(float(lift), currency),
                  range=money_span(float(row.incremental_ci_low), float(row.incremental_ci_high), currency=currency)),
                float(lift) - cost, currency=currency, low=float(row.incremental_ci_low) - cost,
                high=float(row.incremental_ci_high) - cost, page="04_clv_romi", section=section))
        elif cost > 0 and not (row.measurable and lift > 0):
            found.append(Action(
                f"{STOP_CAMPAIGN_KEY}{row.campaign_id}",
                t("Stop \"{name}\" or test it against customers left out: it cost {cost} and brought no measurable "
                  "extra revenue (95 % range {range}).", name=row.name, cost=money(cost, currency),
                  range=money_span(float(row.incremental_ci_low), float(row.incremental_ci_high),
                                   currency=currency).replace('-', '−')),
                cost, currency=currency, page="04_clv_romi", section=section, replaces=f"campaign {row.campaign_id}"))
    return found


def near_period(db: Database, table: pd.DataFrame, *, start: dt.date, end: dt.date, months: int = 1) -> pd.DataFrame:
    """The rows of ``table`` whose campaign ran in [start, end] or in the ``months`` before it
    (start date on or before ``end``, end date, else start date, on or after ``start`` − months)."""
    if table.empty:
        return table
    since = (pd.Timestamp(start) - pd.DateOffset(months=months)).date().isoformat()
    ends = dict(db.execute("SELECT campaign_id, coalesce(end_date, start_date) FROM campaigns").fetchall())
    last = table["campaign_id"].map(ends).fillna(table["start_date"]).astype(str).str[:10]
    keep = (table["start_date"].astype(str).str[:10] <= iso(end)) & (last >= since)
    return table[keep.to_numpy()]
