"""A realistic demo business: a one-person online tea shop with a small consulting sideline.

``generate_demo()`` builds every table as DataFrames, deterministic per seed; ``write_demo()``
stores them. Each planted signal is documented in ``docs/demo-data.md`` and kept in the
``demo_truth`` table (demo stores only) so tests can check that the analyses recover it:

- three customer types with distinct purchase rates, basket values and dropout (a
  buy-till-you-die process: exponential gaps between purchases, a chance to leave after each);
- seasonality: December high, July–August low;
- a co-purchase pair: the gaiwan teapot (P04) is bought with the cup set (P05);
- campaigns: C01 (spring newsletter) truly lifts purchases of contacted customers, C02 (paid
  social ads) does not, although it tags orders that would have happened anyway;
- feedback: delivery delays lower satisfaction (delivery is the main driver of CSAT and
  NPS); a set of planted unhappy customers always answer as detractors; delays fall after
  a courier change, so satisfaction rises in the last months;
- tickets, interactions and a consulting opportunity pipeline where referrals win most;
- steady buyers: a small group added after the others, each reordering the same tea at their
  own nearly fixed interval (5 to 9 weeks); some stopped, so they are late for their usual
  reorder at the end (``demo_truth.usual_interval_days`` and ``late_for_reorder``).
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import itertools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlite_utils import Database

from crm_helpers.store.periods import month_end, parse_month
from crm_helpers.store.schema import LOAD_ORDER

DEMO_TRUTH = "demo_truth"

RATE_SHAPE = 12.0
"""Gamma shape of each buyer's purchase rate around their type's mean (larger: closer to it)."""

CUSTOMER_TYPES = {
    # share of buyers, monthly purchase rate, mean basket lines, units per line, product tier bias,
    # Beta(a, b) of the chance to leave after each purchase, contacts per order (binomial trials, p 0.35)
    "vip": dict(share=0.15, rate=1.1, lines=3.0, units=2.0, premium=3.0, drop=(1.0, 25.0), touch=2),
    "regular": dict(share=0.35, rate=0.6, lines=2.2, units=1.3, premium=1.0, drop=(1.0, 30.0), touch=1),
    "occasional": dict(share=0.50, rate=0.12, lines=1.0, units=1.0, premium=0.25, drop=(6.0, 2.0), touch=0),
}

# product_id, name, category, unit_price, unit_cost, tier (1 cheap .. 3 premium), base popularity
PRODUCTS = [
    ("P01", "Sencha green tea 100g", "tea", 9.5, 3.2, 1, 1.0),
    ("P02", "Darjeeling first flush 100g", "tea", 16.0, 6.0, 2, 0.8),
    ("P03", "Aged pu-erh cake 357g", "tea", 58.0, 24.0, 3, 0.45),
    ("P04", "Gaiwan teapot", "teaware", 34.0, 12.0, 2, 0.35),
    ("P05", "Porcelain cup set (4)", "teaware", 26.0, 9.0, 2, 0.04),
    ("P06", "Oolong Tie Guan Yin 100g", "tea", 14.0, 5.0, 2, 0.8),
    ("P07", "Jasmine pearls 100g", "tea", 12.0, 4.2, 1, 0.9),
    ("P08", "Matcha ceremonial 30g", "tea", 24.0, 10.0, 2, 0.6),
    ("P09", "Bamboo matcha whisk", "teaware", 15.0, 5.0, 1, 0.3),
    ("P10", "Cast iron kettle", "teaware", 89.0, 38.0, 3, 0.25),
    ("P11", "Tea tasting workshop (online)", "service", 45.0, 5.0, 3, 0.3),
    ("P12", "Monthly tea box", "subscription", 29.0, 13.0, 2, 0.5),
]
FORGOTTEN_WITHIN_DAYS = 120
"""Deals opened this many days before the end may have been forgotten (planted stale deals)."""

PAIR = ("P04", "P05")
PAIR_PROBABILITY = 0.7
OFFER_BUNDLE = ("P02", "P06", "P08")  # what campaign offers sell, two of each

SEASONALITY = {1: 0.85, 2: 0.85, 3: 0.95, 4: 1.0, 5: 1.0, 6: 0.9, 7: 0.7, 8: 0.7, 9: 0.95, 10: 1.05, 11: 1.3, 12: 1.8}

ACQUISITION_CHANNELS = {
    # channel: probabilities of vip, regular, occasional among its buyers
    "referral": (0.35, 0.45, 0.20),
    "search": (0.12, 0.38, 0.50),
    "social": (0.08, 0.30, 0.62),
    "marketplace": (0.05, 0.25, 0.70),
    "ads": (0.10, 0.30, 0.60),
}
CHANNEL_SHARE = {"referral": 0.18, "search": 0.3, "social": 0.22, "marketplace": 0.15, "ads": 0.15}

STEADY_SHARE = 0.05
"""Steady buyers added on top of the ``customers`` buyers, as a share of them (40 for 800)."""
STEADY_INTERVAL_DAYS = (35, 63)
"""Range of a steady buyer's usual interval between orders, in days (uniform: 5 to 9 weeks)."""
STEADY_SPREAD = (0.08, 0.2)
"""Range of the coefficient of variation of a steady buyer's intervals (Gamma-distributed gaps)."""
STEADY_LATE_SHARE = 0.4
"""Share of the steady buyers (chosen at random, exactly this many) who stopped: their last order is
:data:`STEADY_LATE_BY` (1.6 to 3.5) usual intervals before the end."""
STEADY_LATE_BY = (1.6, 3.5)
STEADY_FIRST_ROOM = 5.5
"""A steady buyer's first order leaves room for this many usual intervals before they stop (or the
end): uniform over the rest, so they have about six orders or more and join throughout the period."""
STEADY_TEAS = ("P01", "P02", "P06", "P07", "P08")
STEADY_STREAM = 27
"""Mixed into the seed for the steady buyers' own random stream, so adding them draws nothing from
the main stream and every other table stays as it was."""

FIRST_NAMES = [
    "Anna", "Ben", "Clara", "David", "Elena", "Felix", "Grace", "Hugo", "Ines", "Jonas", "Katrin",
    "Lukas", "Maria", "Noah", "Olivia", "Paul", "Quinn", "Rosa", "Samuel", "Tara", "Uwe", "Vera",
    "William", "Xenia", "Yusuf", "Zoe", "Mei", "Wei", "Aiko", "Ravi", "Sofia", "Mateo", "Lea", "Omar",
]
LAST_NAMES = [
    "Schmidt", "Müller", "Rossi", "Dubois", "Novak", "Jensen", "García", "Kowalski", "Smith", "Brown",
    "Chen", "Wang", "Tanaka", "Patel", "Silva", "Nielsen", "Weber", "Fischer", "Moreau", "Larsen",
    "O'Brien", "Costa", "Li", "Zhang", "Kim", "Nguyen", "Haddad", "Ivanova", "Horvat", "Berg",
]
CITIES = [
    ("Germany", "Berlin"), ("Germany", "Hamburg"), ("Germany", "Munich"), ("Austria", "Vienna"),
    ("Switzerland", "Zurich"), ("France", "Lyon"), ("Netherlands", "Utrecht"), ("Denmark", "Aarhus"),
    ("Italy", "Milan"), ("Spain", "Valencia"), ("China", "Shanghai"), ("United Kingdom", "Leeds"),
]
EMAIL_DOMAINS = ["example.com", "example.org", "example.net", "mail.example.com"]

POSITIVE_COMMENTS = [
    "Lovely tea, fast delivery", "Great quality as always", "Beautiful packaging and great taste",
    "Quick shipping, will order again", "Excellent service, thank you", "质量很好，发货很快",
    "The workshop was inspiring", "Perfect gift, arrived on time",
]
NEUTRAL_COMMENTS = ["Good tea but a bit pricey", "Fine overall", "OK, nothing special", "还可以"]
NEGATIVE_COMMENTS = [
    "Late delivery, parcel took two weeks", "Delivery was late again", "Slow shipping and no update",
    "Package arrived late and damaged", "Too expensive for the quality", "发货太慢，等了两个星期",
    "Waited ages for delivery, disappointed", "No reply to my email about the late parcel",
]


@dataclass
class DemoBusiness:
    """Every table of the demo store as a DataFrame, plus the planted truth per customer."""

    tables: dict[str, pd.DataFrame]
    truth: pd.DataFrame
    start: dt.date
    end: dt.date
    facts: dict[str, object] = field(default_factory=dict)


def default_end(today: dt.date | None = None) -> str:
    """The last complete calendar month before ``today`` as ``YYYY-MM``."""
    today = today or dt.date.today()
    last = today.replace(day=1) - dt.timedelta(days=1)
    return f"{last:%Y-%m}"


def generate_demo(
    customers: int = 800,
    months: int = 24,
    *,
    seed: int = 42,
    end: str | None = None,
    purchase_rate_scale: float = 1.0,
    dropout_scale: float = 1.0,
) -> DemoBusiness:
    """Build the demo business: ``customers`` buyers over ``months`` months ending with ``end``.

    Deterministic for a given (customers, months, seed, end, scales). ``end`` defaults to the
    last complete month before today. About 10% more people are added as prospects who only
    appear in the opportunity pipeline.

    ``purchase_rate_scale`` multiplies every buyer's purchase rate and ``dropout_scale`` their
    chance to leave after a purchase (both kept in ``truth``); the defaults (1.0) give the
    documented demo business. The benchmarks use them to build a store with about ten orders
    per customer.
    """
    if customers < 5:
        raise ValueError("the demo needs at least 5 customers")
    if months < 3:
        raise ValueError("the demo needs at least 3 months")
    if purchase_rate_scale <= 0 or not 0 < dropout_scale <= 1:
        raise ValueError("purchase_rate_scale must be positive and dropout_scale in (0, 1]")
    return _Generator(customers, months, seed, end or default_end(), purchase_rate_scale, dropout_scale).run()


class _Generator:
    def __init__(
        self, n: int, months: int, seed: int, end: str, purchase_rate_scale: float = 1.0, dropout_scale: float = 1.0
    ) -> None:
        self.n = n
        self.purchase_rate_scale = purchase_rate_scale
        self.dropout_scale = dropout_scale
        self.rng = np.random.default_rng(seed)
        self.steady_rng = np.random.default_rng([seed, STEADY_STREAM])
        last = parse_month(end)
        self.end = last.end
        first = last.start
        for _ in range(months - 1):
            first = (first - dt.timedelta(days=1)).replace(day=1)
        self.start = first
        self.days = (self.end - self.start).days + 1
        self.courier_change = self.start + dt.timedelta(days=int(self.days * 0.75))
        self.products = pd.DataFrame(
            PRODUCTS, columns=["product_id", "name", "category", "unit_price", "unit_cost", "tier", "popularity"]
        )
        # per day offset: its ISO date and its month's seasonal factor (lookups, not date
        # arithmetic, inside the per-purchase loops)
        dates = [self.start + dt.timedelta(days=k) for k in range(self.days + 1)]
        self.iso_dates = np.array([d.isoformat() for d in dates], dtype=object)
        self.season_by_day = [SEASONALITY[d.month] for d in dates]

    # -- helpers -------------------------------------------------------------------------
    def day(self, offset: float) -> dt.date:
        return self.start + dt.timedelta(days=int(offset))

    # -- tables --------------------------------------------------------------------------
    def run(self) -> DemoBusiness:
        customers, truth = self.customers()
        campaigns = self.campaigns()
        contacts = self.campaign_contacts(customers, truth, campaigns)
        orders, items, delays = self.orders(customers, truth, campaigns, contacts)
        feedback = self.feedback(orders, truth, delays)
        tickets = self.tickets(orders, truth, delays)
        interactions = self.interactions(orders, truth)
        prospects, opportunities = self.opportunities(customers, truth)
        steady, steady_truth, steady_orders, steady_items = self.steady_buyers(first_order_number=len(orders) + 1)
        orders = pd.concat([orders, steady_orders], ignore_index=True)
        items = pd.concat([items, steady_items], ignore_index=True)
        customers = pd.concat([customers, steady, prospects], ignore_index=True)
        truth = pd.concat(
            [truth.assign(usual_interval_days=np.nan, late_for_reorder=0), steady_truth,
             pd.DataFrame({"customer_id": prospects["customer_id"], "customer_type": "prospect",
                           "unhappy": 0, "purchase_rate": 0.0, "dropout_p": 0.0,
                           "usual_interval_days": np.nan, "late_for_reorder": 0})],
            ignore_index=True,
        )
        tables = {
            "customers": customers,
            "products": self.products.drop(columns=["tier", "popularity"]),
            "campaigns": campaigns.drop(columns=["lift", "attribute_organic"]),
            "orders": orders,
            "order_items": items,
            "interactions": interactions,
            "campaign_contacts": contacts,
            "feedback": feedback,
            "tickets": tickets,
            "opportunities": opportunities,
        }
        facts = {
            "effective_campaign": "C01",
            "ineffective_campaign": "C02",
            "co_purchase_pair": PAIR,
            "courier_change": self.courier_change.isoformat(),
            "peak_month": 12,
        }
        return DemoBusiness(tables, truth, self.start, self.end, facts)

    def customers(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        rng, n = self.rng, self.n
        channels = rng.choice(list(CHANNEL_SHARE), size=n, p=list(CHANNEL_SHARE.values()))
        types = self._types_by_channel(channels)
        # acquisition grows over time: density rising linearly by half over the period, to its last day
        u = rng.random(n)
        offsets = (np.sqrt(1 + 3 * u) - 1) * self.days
        offsets = np.sort(offsets)
        # (channel, type) pairs in a random order, together: the channel mix stays with the buyer
        order = rng.permutation(n)
        channels, types = channels[order], types[order]
        ids = [f"C{i + 1:05d}" for i in range(n)]
        first = [self.day(o) for o in offsets]
        names, emails, phones = self.people(n)
        cities = [CITIES[i] for i in rng.integers(0, len(CITIES), n)]
        rates = np.array([CUSTOMER_TYPES[t]["rate"] for t in types]) * rng.gamma(RATE_SHAPE, 1 / RATE_SHAPE, n)
        # array parameters draw element by element, like one call per customer
        drop = rng.beta(np.array([CUSTOMER_TYPES[t]["drop"][0] for t in types], dtype=float),
                        np.array([CUSTOMER_TYPES[t]["drop"][1] for t in types], dtype=float))
        if self.purchase_rate_scale != 1.0:
            rates = rates * self.purchase_rate_scale
        if self.dropout_scale != 1.0:
            drop = drop * self.dropout_scale
        unhappy = rng.random(n) < 0.05
        industries = rng.choice(["private", "private", "private", "office", "café", "studio"], size=n)
        frame = pd.DataFrame(
            {
                "customer_id": ids,
                "name": names,
                "email": emails,
                "phone": phones,
                "company": [f"{nm.split()[-1]} {ind.title()}" if ind != "private" else None
                            for nm, ind in zip(names, industries)],
                "country": [c for c, _ in cities],
                "city": [c for _, c in cities],
                "industry": industries,
                "acquisition_channel": channels,
                "first_seen": [d.isoformat() for d in first],
                "consent_marketing": (rng.random(n) < 0.72).astype(int),
                "tags": None,
                "notes": None,
            }
        )
        truth = pd.DataFrame(
            {"customer_id": ids, "customer_type": types, "unhappy": unhappy.astype(int),
             "purchase_rate": rates, "dropout_p": drop}
        )
        return frame, truth

    def _types_by_channel(self, channels: np.ndarray) -> np.ndarray:
        """One customer type per buyer from their channel's mix: one uniform draw each, mapped
        through the channel's cumulative probabilities (what ``rng.choice(types, p=...)`` does)."""
        u = self.rng.random(len(channels))
        names = np.array(list(CUSTOMER_TYPES))
        types = np.empty(len(channels), dtype=names.dtype)
        for channel, p in ACQUISITION_CHANNELS.items():
            cdf = np.asarray(p, dtype=float).cumsum()
            cdf /= cdf[-1]
            here = channels == channel
            types[here] = names[cdf.searchsorted(u[here], side="right")]
        return types

    def people(
        self, n: int, *, rng: np.random.Generator | None = None, number_from: int = 1
    ) -> tuple[list[str], list[str], list[str]]:
        """``n`` fake names, e-mail addresses and phone numbers, drawn from ``rng`` (default: the main
        stream); the e-mail addresses are numbered from ``number_from``, which keeps them unique."""
        rng = rng or self.rng
        names, emails, phones = [], [], []
        for i in range(number_from - 1, number_from - 1 + n):
            first = FIRST_NAMES[rng.integers(len(FIRST_NAMES))]
            last = LAST_NAMES[rng.integers(len(LAST_NAMES))]
            names.append(f"{first} {last}")
            local = f"{first}.{last}".lower().replace("'", "").replace("ü", "ue").replace("í", "i")
            emails.append(f"{local}{i + 1}@{EMAIL_DOMAINS[rng.integers(len(EMAIL_DOMAINS))]}")
            phones.append(f"+49 15{rng.integers(1, 8)} {rng.integers(1000000, 9999999)}")
        return names, emails, phones

    def campaigns(self) -> pd.DataFrame:
        d = self.days

        def at(frac: float) -> dt.date:
            return self.day(d * frac)

        rows = [
            # id, name, channel, start, length days, cost, target, lift probability, tags organic orders
            ("C01", "Spring newsletter: new harvest", "email", at(0.62), 14, 120.0, "consenting customers", 0.85, 0.0),
            ("C02", "Paid social ads", "ads", at(0.70), 30, 1500.0, "consenting customers", 0.0, 0.35),
            ("C03", "Autumn tasting webinar", "event", at(0.40), 7, 300.0, "consenting customers", 0.15, 0.0),
            ("C04", "Referral rewards", "referral", self.start, d - 1, 600.0, "new customers", 0.0, 0.0),
            ("C05", "Holiday gift guide", "email", at(0.45), 21, 200.0, "consenting customers", 0.30, 0.0),
            ("C06", "Blog series on brewing", "content", at(0.30), 60, 0.0, "everyone", 0.05, 0.0),
            ("C07", "Trade fair booth", "event", at(0.55), 3, 800.0, "new contacts", 0.0, 0.0),
        ]
        frame = pd.DataFrame(
            rows, columns=["campaign_id", "name", "channel", "start", "length", "cost", "target_segment",
                           "lift", "attribute_organic"]
        )
        frame["start_date"] = [s.isoformat() for s in frame["start"]]
        frame["end_date"] = [(s + dt.timedelta(days=int(n))).isoformat() for s, n in zip(frame["start"], frame["length"])]
        return frame[["campaign_id", "name", "channel", "start_date", "end_date", "cost", "target_segment",
                      "lift", "attribute_organic"]]

    def campaign_contacts(self, customers: pd.DataFrame, truth: pd.DataFrame, campaigns: pd.DataFrame) -> pd.DataFrame:
        rng = self.rng
        rows = []
        ids = customers["customer_id"].to_numpy()
        first_seen = pd.to_datetime(customers["first_seen"]).dt.date.to_numpy()
        consent = customers["consent_marketing"].to_numpy() == 1
        for c in campaigns.itertuples():
            if c.campaign_id in ("C04", "C07"):
                continue  # acquisition campaigns: no list of existing customers contacted
            start = dt.date.fromisoformat(c.start_date)
            eligible = np.flatnonzero((first_seen < start) & (consent | (c.channel == "content")))
            if len(eligible) == 0:
                continue
            chosen = eligible[rng.random(len(eligible)) < 0.5]  # random half: a clean comparison group
            for idx in chosen:
                contacted = start + dt.timedelta(days=int(rng.integers(0, 3)))
                rows.append((c.campaign_id, ids[idx], contacted.isoformat(), 0))
        frame = pd.DataFrame(rows, columns=["campaign_id", "customer_id", "contacted_at", "responded"])
        return frame

    def orders(
        self, customers: pd.DataFrame, truth: pd.DataFrame, campaigns: pd.DataFrame, contacts: pd.DataFrame
    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
        rng = self.rng
        max_season = max(SEASONALITY.values())
        first_offsets = (pd.to_datetime(customers["first_seen"]) - pd.Timestamp(self.start)).dt.days.to_numpy()
        purchases: list[tuple[int, float, str | None, bool]] = []  # (customer, day offset, campaign, offer bundle)
        alive_until = np.full(self.n, float(self.days))
        days, random, exponential = self.days, rng.random, rng.exponential
        # acceptance chance of the seasonal thinning, per day offset
        accept = [s / max_season for s in self.season_by_day]
        rates = (truth["purchase_rate"].to_numpy() / 30.4 * max_season).tolist()  # per day, before thinning
        drops = truth["dropout_p"].tolist()
        for i, (rate, p_drop, t) in enumerate(zip(rates, drops, first_offsets.astype(float).tolist())):
            purchases.append((i, t, None, False))
            while True:
                if random() < p_drop:
                    alive_until[i] = t
                    break
                while True:  # thinning: seasonal purchase rate
                    t += exponential(1 / rate)
                    if t >= days or random() < accept[int(t)]:
                        break
                if t >= days:
                    break
                purchases.append((i, t, None, False))
        index = {cid: i for i, cid in enumerate(customers["customer_id"])}
        lift = dict(zip(campaigns["campaign_id"], campaigns["lift"]))
        # campaign lift: extra purchases of contacted customers who are still alive
        for campaign_id, customer_id, contacted_at in zip(
            contacts["campaign_id"].tolist(), contacts["customer_id"].tolist(), contacts["contacted_at"].tolist()
        ):
            i = index[customer_id]
            t0 = (dt.date.fromisoformat(contacted_at) - self.start).days
            # a mailing with an offer also wakes up lapsed customers, at half the rate
            respond = lift[campaign_id] if t0 < alive_until[i] else lift[campaign_id] / 2
            if lift[campaign_id] > 0 and random() < respond:
                t = t0 + rng.uniform(1, 21)
                if t < days:
                    purchases.append((i, t, campaign_id if random() < 0.6 else None, True))
        frame = pd.DataFrame(purchases, columns=["idx", "offset", "campaign_id", "bundle"]).sort_values(["offset", "idx"])
        frame = frame.reset_index(drop=True)
        frame["customer_id"] = customers["customer_id"].to_numpy()[frame["idx"]]
        day = frame["offset"].to_numpy().astype(np.int64)  # whole days since the start, as self.day() counts
        # organic orders of contacted customers tagged by an ineffective campaign (C02)
        for c in campaigns[campaigns["attribute_organic"] > 0].itertuples():
            window_start = (dt.date.fromisoformat(c.start_date) - self.start).days
            reached = set(contacts.loc[contacts["campaign_id"] == c.campaign_id, "customer_id"])
            mask = (
                frame["customer_id"].isin(reached)
                & frame["campaign_id"].isna()
                & (day >= window_start)
                & (day <= window_start + 30)
                & (rng.random(len(frame)) < c.attribute_organic)
            )
            frame.loc[mask, "campaign_id"] = c.campaign_id
        # referral programme: first orders of referred customers
        first_order = ~frame.duplicated("customer_id")
        referred = frame["customer_id"].map(customers.set_index("customer_id")["acquisition_channel"]) == "referral"
        frame.loc[first_order & referred & frame["campaign_id"].isna(), "campaign_id"] = "C04"
        frame["order_id"] = [f"O{k + 1:06d}" for k in range(len(frame))]
        ctype = truth["customer_type"].to_numpy()[frame["idx"]]
        items = self.basket(frame["order_id"].to_numpy(), ctype, frame["bundle"].to_numpy())
        amounts = (items["quantity"] * items["unit_price"]).groupby(items["order_id"]).sum()
        unit_cost = items["product_id"].map(self.products.set_index("product_id")["unit_cost"])
        costs = (items["quantity"] * unit_cost).groupby(items["order_id"]).sum()
        status = rng.choice(["paid", "refunded", "cancelled"], size=len(frame), p=[0.955, 0.03, 0.015])
        delay = rng.poisson(1.0, len(frame)) + (rng.random(len(frame)) < 0.18) * rng.integers(4, 11, len(frame))
        after_change = day >= (self.courier_change - self.start).days
        delay = np.where(after_change, np.maximum(delay - 2, 0), delay)
        orders = pd.DataFrame(
            {
                "order_id": frame["order_id"],
                "customer_id": frame["customer_id"],
                "order_date": self.iso_dates[day],
                "amount": frame["order_id"].map(amounts).round(2).to_numpy(),
                "cost": (frame["order_id"].map(costs) + 4.9).round(2).to_numpy(),
                "currency": "EUR",
                "channel": rng.choice(["shop", "shop", "shop", "marketplace", "invoice"], size=len(frame)),
                "campaign_id": frame["campaign_id"].astype(object).where(frame["campaign_id"].notna(), None),
                "status": status,
            }
        )
        return orders, items, pd.Series(delay, index=orders["order_id"])

    def basket(self, order_ids: np.ndarray, ctype: np.ndarray, bundle: np.ndarray) -> pd.DataFrame:
        """Order lines by customer type; campaign offers buy the new-harvest bundle (P02, P06, P08)."""
        rng = self.rng
        prods = self.products
        rows = []
        weights = {}
        for t, spec in CUSTOMER_TYPES.items():
            w = prods["popularity"].to_numpy() * np.power(spec["premium"], prods["tier"].to_numpy() - 2)
            weights[t] = (w / w.sum()).tolist()
        pids = list(prods["product_id"].to_numpy())
        prices = {pid: float(price) for pid, price in zip(prods["product_id"], prods["unit_price"])}
        poisson, random = rng.poisson, rng.random
        for oid, t, offer in zip(order_ids, ctype, bundle):
            spec = CUSTOMER_TYPES[t]
            if offer:
                rows += [(oid, pid, 2, prices[pid]) for pid in OFFER_BUNDLE]
                continue
            n_lines = min(1 + poisson(spec["lines"] - 1), 6)
            chosen = [pids[k] for k in _choice_without_replacement(random, weights[t], n_lines)]
            if PAIR[0] in chosen and PAIR[1] not in chosen and random() < PAIR_PROBABILITY:
                chosen.append(PAIR[1])
            for pid in chosen:
                qty = 1 + poisson(spec["units"] - 1)
                rows.append((oid, pid, int(qty), prices[pid]))
        return pd.DataFrame(rows, columns=["order_id", "product_id", "quantity", "unit_price"])

    def feedback(self, orders: pd.DataFrame, truth: pd.DataFrame, delays: pd.Series) -> pd.DataFrame:
        rng = self.rng
        paid = orders[orders["status"] == "paid"]
        asked = paid[rng.random(len(paid)) < 0.3]
        unhappy = set(truth.loc[truth["unhappy"] == 1, "customer_id"])
        # every planted unhappy customer who bought answers at least once
        extra = paid[paid["customer_id"].isin(unhappy) & ~paid["customer_id"].isin(asked["customer_id"])]
        asked = pd.concat([asked, extra.drop_duplicates("customer_id")]).sort_values("order_date")
        rows = []
        integers, normal, random = rng.integers, rng.normal, rng.random
        asked_delays = asked["order_id"].map(delays).tolist()
        answers = zip(asked["order_date"].tolist(), asked["customer_id"].tolist(), asked_delays)
        for k, (order_date, customer_id, d) in enumerate(answers):
            submitted = dt.date.fromisoformat(order_date) + dt.timedelta(days=int(integers(3, 15)))
            if submitted > self.end:
                continue
            quality = _score(4.3 + normal(0, 0.7), 1, 5)
            delivery = _score(5.0 - 0.55 * d + normal(0, 0.5), 1, 5)
            price = _score(3.8 + normal(0, 0.8), 1, 5)
            service = _score(4.2 + normal(0, 0.7), 1, 5)
            latent = 0.15 * quality + 0.55 * delivery + 0.1 * price + 0.2 * service + normal(0, 0.3)
            if customer_id in unhappy:
                quality, delivery, service = (min(v, float(integers(1, 3))) for v in (quality, delivery, service))
                latent = 1.5 + normal(0, 0.3)
            csat = int(_score(latent, 1, 5))
            nps = int(_score(2.6 * latent - 2.6 + normal(0, 0.8), 0, 10))
            if customer_id in unhappy:
                nps = int(integers(0, 5))
            pool = POSITIVE_COMMENTS if nps >= 9 else NEGATIVE_COMMENTS if nps <= 6 else NEUTRAL_COMMENTS
            comment = pool[integers(len(pool))] if random() < 0.6 else None
            rows.append((f"F{k + 1:06d}", customer_id, submitted.isoformat(), nps, csat,
                         int(quality), int(delivery), int(price), int(service), comment))
        return pd.DataFrame(rows, columns=["feedback_id", "customer_id", "submitted_at", "nps", "csat",
                                           "score_quality", "score_delivery", "score_price", "score_service",
                                           "comment"])

    def tickets(self, orders: pd.DataFrame, truth: pd.DataFrame, delays: pd.Series) -> pd.DataFrame:
        rng = self.rng
        unhappy = set(truth.loc[truth["unhappy"] == 1, "customer_id"])
        rows = []
        end_ts = pd.Timestamp(self.end) + pd.Timedelta(hours=23, minutes=59)
        random = rng.random
        for order_date, customer_id, d in zip(orders["order_date"].tolist(), orders["customer_id"].tolist(),
                                              delays.tolist()):
            p = 0.04 + (0.25 if d >= 5 else 0.0) + (0.3 if customer_id in unhappy else 0.0)
            if random() >= p:
                continue
            opened = pd.Timestamp(order_date) + pd.Timedelta(hours=float(rng.uniform(24, 24 * 12)))
            if opened.date() > self.end:
                continue
            category = "complaint" if (d >= 5 or customer_id in unhappy) and rng.random() < 0.7 else \
                rng.choice(["question", "request", "feedback"])
            first = opened + pd.Timedelta(hours=float(rng.lognormal(np.log(5), 0.9)))
            closed = first + pd.Timedelta(hours=float(rng.lognormal(np.log(30), 1.0)))
            status = "closed" if closed <= end_ts else "open"
            hours = (closed - opened).total_seconds() / 3600
            csat = int(np.clip(np.rint(5 - hours / 48 + rng.normal(0, 0.6)), 1, 5)) if status == "closed" else None
            rows.append((
                f"T{len(rows) + 1:05d}", customer_id, opened.strftime("%Y-%m-%d %H:%M:%S"),
                first.strftime("%Y-%m-%d %H:%M:%S") if first <= end_ts else None,
                closed.strftime("%Y-%m-%d %H:%M:%S") if status == "closed" else None,
                category, rng.choice(["low", "normal", "normal", "high"]), status, csat,
            ))
        return pd.DataFrame(rows, columns=["ticket_id", "customer_id", "opened_at", "first_response_at", "closed_at",
                                           "category", "priority", "status", "csat"])

    def interactions(self, orders: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
        rng = self.rng
        touches = dict(zip(truth["customer_id"], truth["customer_type"].map(lambda t: CUSTOMER_TYPES[t]["touch"])))
        rows = []
        # rng.choice(a_list) is a_list[rng.integers(0, len(a_list))] as a numpy string: the same draws
        # and values, without building an array per call
        channels = list(np.array(["email", "email", "chat", "call", "meeting", "social"]))
        directions = list(np.array(["inbound", "outbound"]))
        subjects = list(np.array(["Order follow-up", "Brewing tips", "Question about delivery", "Thank-you note",
                                  "New harvest", "Workshop invitation"]))
        outcomes = list(np.array(["answered", "no reply", "ordered", "scheduled"]))
        binomial, uniform, integers = rng.binomial, rng.uniform, rng.integers
        stamps: dict[str, pd.Timestamp] = {}
        for order_date, customer_id in zip(orders["order_date"].tolist(), orders["customer_id"].tolist()):
            for _ in range(binomial(touches[customer_id], 0.35)):
                base = stamps.get(order_date)
                if base is None:
                    base = stamps[order_date] = pd.Timestamp(order_date)
                when = base + pd.Timedelta(hours=float(uniform(2, 24 * 20)))
                if when.date() > self.end:
                    continue
                channel = channels[integers(0, len(channels))]
                direction = directions[integers(0, len(directions))]
                subject = subjects[integers(0, len(subjects))]
                rows.append((customer_id, when.strftime("%Y-%m-%d %H:%M:%S"), channel, direction, subject,
                             outcomes[integers(0, len(outcomes))]))
        frame = pd.DataFrame(rows, columns=["customer_id", "occurred_at", "channel", "direction", "subject", "outcome"])
        frame = frame.sort_values(["occurred_at", "customer_id"]).reset_index(drop=True)
        frame.insert(0, "interaction_id", [f"I{k + 1:06d}" for k in range(len(frame))])
        frame["notes"] = None
        return frame

    def opportunities(self, customers: pd.DataFrame, truth: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Consulting and corporate-gifting deals; referrals win most, large deals win less."""
        rng = self.rng
        n_prospects = max(self.n // 10, 3)
        names, emails, phones = self.people(n_prospects)
        emails = [e.replace("@", f".lead{k}@") for k, e in enumerate(emails)]
        prospects = pd.DataFrame(
            {
                "customer_id": [f"L{k + 1:05d}" for k in range(n_prospects)],
                "name": names, "email": emails, "phone": phones,
                "company": [f"{nm.split()[-1]} GmbH" for nm in names],
                "country": "Germany", "city": "Berlin", "industry": "office",
                "acquisition_channel": rng.choice(["referral", "search", "social"], n_prospects),
                "first_seen": [self.day(o).isoformat() for o in np.sort(rng.uniform(0, self.days, n_prospects))],
                "consent_marketing": 0, "tags": "prospect", "notes": None,
            }
        )
        pool = pd.concat([customers[["customer_id", "first_seen"]], prospects[["customer_id", "first_seen"]]])
        n_opps = max(int(self.n * 0.45), 10)
        base = {"referral": 0.8, "website": -0.4, "linkedin": -0.9, "cold_email": -2.2, "event": -0.2}
        src_p = [0.25, 0.25, 0.2, 0.2, 0.1]
        stage_prob = {"lead": 0.1, "qualified": 0.25, "proposal": 0.5, "negotiation": 0.7, "won": 1.0, "lost": 0.0}
        pool_ids = pool["customer_id"].to_numpy()
        rows = []
        for k in range(n_opps):
            who = pool_ids[int(rng.integers(len(pool)))]
            source = rng.choice(list(base), p=src_p)
            amount = float(np.round(rng.lognormal(np.log(2500), 0.8), -1))
            opened = self.day(rng.uniform(0, self.days - 1))
            logit = base[source] - 0.9 * np.log(amount / 2500)
            won = rng.random() < 1 / (1 + np.exp(-logit))
            cycle = int(rng.gamma(3.0, 15.0)) + 5
            closed = opened + dt.timedelta(days=cycle)
            # a quarter of the deals opened in the last four months were forgotten: still open,
            # no activity since the day they were opened (the stale list should find them)
            forgotten = (self.end - opened).days <= FORGOTTEN_WITHIN_DAYS and rng.random() < 0.25
            if closed <= self.end and not forgotten:
                stage = "won" if won else "lost"
                closed_at, last = closed.isoformat(), closed.isoformat()
                lost_reason = None if won else rng.choice(["price", "timing", "competitor", "no response"])
            else:
                progress = (self.end - opened).days / cycle
                stage = ["lead", "qualified", "proposal", "negotiation"][min(int(progress * 4), 3)]
                closed_at, lost_reason = None, None
                last = (opened if forgotten else self.end - dt.timedelta(days=int(rng.integers(0, 14))))
                last = max(last, opened).isoformat()
            expected = opened + dt.timedelta(days=int(rng.gamma(3.0, 15.0)) + 10)
            rows.append((
                f"OP{k + 1:04d}", who, rng.choice(["Tea workshop series", "Corporate gift boxes",
                                                                 "Office tea subscription", "Tasting event"]),
                source, stage, amount, stage_prob[stage], opened.isoformat(), expected.isoformat(), closed_at,
                last, lost_reason,
            ))
        opps = pd.DataFrame(rows, columns=["opportunity_id", "customer_id", "title", "source", "stage", "amount",
                                           "probability", "opened_at", "expected_close", "closed_at",
                                           "last_activity_at", "lost_reason"])
        return prospects, opps


    def steady_buyers(self, *, first_order_number: int) -> tuple[pd.DataFrame, ...]:
        """The planted steady buyers: customers, truth, orders and order lines, from their own stream.

        ``round(STEADY_SHARE × n)`` customers numbered after the ``n`` buyers. Each has a usual
        interval (days, uniform in :data:`STEADY_INTERVAL_DAYS`) and a spread (coefficient of
        variation in :data:`STEADY_SPREAD`); their gaps are Gamma with that mean and spread, from a
        first order uniform up to :data:`STEADY_FIRST_ROOM` intervals before they stop or the period
        ends. Every order is paid, through the shop, and holds the same basket, a supply for the
        weeks to come: 3 to 6 packs of a favourite tea and 1 to 3 of a second (about 100 EUR, between
        the regular and VIP types' orders, so the planted link of frequent buyers to big baskets
        stays). A share :data:`STEADY_LATE_SHARE` stopped: orders after
        ``end − U(STEADY_LATE_BY) × interval`` are dropped (the first order always stays), so they are
        late for their usual reorder at ``end``.
        Order ids continue from ``first_order_number``.
        """
        rng, k = self.steady_rng, round(STEADY_SHARE * self.n)
        ids = [f"C{self.n + j + 1:05d}" for j in range(k)]
        interval = rng.uniform(*STEADY_INTERVAL_DAYS, k)
        spread = rng.uniform(*STEADY_SPREAD, k)
        late = np.zeros(k, dtype=bool)
        late[rng.permutation(k)[:round(STEADY_LATE_SHARE * k)]] = True
        stop = np.where(late, self.days - 1 - rng.uniform(*STEADY_LATE_BY, k) * interval, self.days)
        prices = dict(zip(self.products["product_id"], self.products["unit_price"].astype(float)))
        costs = dict(zip(self.products["product_id"], self.products["unit_cost"].astype(float)))
        orders, items, first_days = [], [], []
        for j in range(k):
            teas = list(rng.choice(STEADY_TEAS, size=2, replace=False))
            basket = [(str(teas[0]), int(rng.integers(3, 7))), (str(teas[1]), int(rng.integers(1, 4)))]
            shape = 1 / spread[j] ** 2
            t = rng.uniform(0, max(min(stop[j], self.days) - STEADY_FIRST_ROOM * interval[j], 1))
            first_days.append(t)
            while t < self.days and (t < stop[j] or t == first_days[-1]):
                order_id = f"O{first_order_number + len(orders):06d}"
                amount = sum(q * prices[pid] for pid, q in basket)
                cost = sum(q * costs[pid] for pid, q in basket) + 4.9
                orders.append((order_id, ids[j], self.iso_dates[int(t)], round(amount, 2), round(cost, 2)))
                items += [(order_id, pid, q, prices[pid]) for pid, q in basket]
                t += rng.gamma(shape, interval[j] / shape)
        names, emails, phones = self.people(k, rng=rng, number_from=self.n + 1)
        cities = [CITIES[i] for i in rng.integers(0, len(CITIES), k)]
        customers = pd.DataFrame({
            "customer_id": ids, "name": names, "email": emails, "phone": phones, "company": None,
            "country": [c for c, _ in cities], "city": [c for _, c in cities], "industry": "private",
            "acquisition_channel": rng.choice(list(CHANNEL_SHARE), size=k, p=list(CHANNEL_SHARE.values())),
            "first_seen": [self.iso_dates[int(t)] for t in first_days],
            "consent_marketing": (rng.random(k) < 0.72).astype(int), "tags": None, "notes": None,
        })
        truth = pd.DataFrame({
            "customer_id": ids, "customer_type": "regular", "unhappy": 0, "purchase_rate": 30.4 / interval,
            "dropout_p": 1 / 31, "usual_interval_days": interval.round(1), "late_for_reorder": late.astype(int),
        })
        frame = pd.DataFrame(orders, columns=["order_id", "customer_id", "order_date", "amount", "cost"])
        frame = frame.assign(currency="EUR", channel="shop", campaign_id=None, status="paid")
        lines = pd.DataFrame(items, columns=["order_id", "product_id", "quantity", "unit_price"])
        return customers, truth, frame, lines


def _score(value: float, low: int, high: int) -> float:
    """``np.clip(np.rint(value), low, high)`` for one number (round half to even, like ``np.rint``)."""
    return float(min(max(round(value), low), high))


def _choice_without_replacement(random, p: list[float], k: int) -> list[int]:
    """``k`` distinct indices drawn with probabilities ``p``: the same draws and result as numpy's
    ``Generator.choice(len(p), size=k, replace=False, p=p)`` (rounds of ``random(k - found)``
    uniforms through the cumulative probabilities of what is left, first occurrences kept), in
    plain Python because numpy's per-call overhead dominates for 12 products."""
    p = list(p)
    found: list[int] = []
    while len(found) < k:
        draws = random(k - len(found)).tolist()
        for j in found:
            p[j] = 0.0
        cdf = list(itertools.accumulate(p))
        total = cdf[-1]
        cdf = [c / total for c in cdf]
        for u in draws:
            j = bisect.bisect_right(cdf, u)
            if j not in found:
                found.append(j)
    return found


def write_demo(db: Database, business: DemoBusiness) -> dict[str, int]:
    """Store every table of ``business`` (replacing rows with the same keys) in one transaction.

    Also writes the ``demo_truth`` table. Returns the row count written per table.
    """
    counts: dict[str, int] = {}
    with db.atomic():
        for name in LOAD_ORDER:
            frame = business.tables[name]
            records = frame.astype(object).where(frame.notna(), None).to_dict("records")
            db.table(name).insert_all(records, replace=True, batch_size=2000)
            counts[name] = len(records)
        truth = business.truth.astype(object).where(business.truth.notna(), None).to_dict("records")
        db.table(DEMO_TRUTH).insert_all(truth, pk="customer_id", replace=True)
    return counts


def build_demo_store(
    path: str, customers: int = 800, *, months: int = 24, seed: int = 42, end: str | None = None
) -> dict[str, int]:
    """Create (or refill) a demo store at ``path``; returns row counts per table."""
    from crm_helpers.store.connection import open_db

    db = open_db(path)
    return write_demo(db, generate_demo(customers=customers, months=months, seed=seed, end=end))


def stable_digest(business: DemoBusiness) -> str:
    """A short hash of all tables, to check that a seed reproduces the same business."""
    h = hashlib.sha256()
    for name in LOAD_ORDER:
        h.update(pd.util.hash_pandas_object(business.tables[name], index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


__all__ = ["DemoBusiness", "generate_demo", "write_demo", "build_demo_store", "default_end", "month_end"]
