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
- tickets, interactions and a consulting opportunity pipeline where referrals win most.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlite_utils import Database

from .periods import month_end, parse_month
from .schema import LOAD_ORDER

DEMO_TRUTH = "demo_truth"

CUSTOMER_TYPES = {
    # share of buyers, monthly purchase rate, mean basket lines, units per line, product tier bias,
    # Beta(a, b) of the chance to leave after each purchase
    "vip": dict(share=0.15, rate=1.1, lines=3.0, units=2.0, premium=3.0, drop=(1.0, 25.0)),
    "regular": dict(share=0.35, rate=0.35, lines=1.6, units=1.3, premium=1.0, drop=(2.0, 12.0)),
    "occasional": dict(share=0.50, rate=0.12, lines=1.0, units=1.0, premium=0.25, drop=(3.0, 4.0)),
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
    customers: int = 800, months: int = 24, seed: int = 42, end: str | None = None
) -> DemoBusiness:
    """Build the demo business: ``customers`` buyers over ``months`` months ending with ``end``.

    Deterministic for a given (customers, months, seed, end). ``end`` defaults to the last
    complete month before today. About 10% more people are added as prospects who only
    appear in the opportunity pipeline.
    """
    if customers < 5:
        raise ValueError("the demo needs at least 5 customers")
    if months < 3:
        raise ValueError("the demo needs at least 3 months")
    return _Generator(customers, months, seed, end or default_end()).run()


class _Generator:
    def __init__(self, n: int, months: int, seed: int, end: str) -> None:
        self.n = n
        self.rng = np.random.default_rng(seed)
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

    # -- helpers -------------------------------------------------------------------------
    def day(self, offset: float) -> dt.date:
        return self.start + dt.timedelta(days=int(offset))

    def season(self, offsets: np.ndarray) -> np.ndarray:
        months = np.array([self.day(o).month for o in offsets])
        return np.vectorize(SEASONALITY.get)(months)

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
        customers = pd.concat([customers, prospects], ignore_index=True)
        truth = pd.concat(
            [truth, pd.DataFrame({"customer_id": prospects["customer_id"], "customer_type": "prospect",
                                  "unhappy": 0, "purchase_rate": 0.0, "dropout_p": 0.0})],
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
        types = np.array([rng.choice(list(CUSTOMER_TYPES), p=ACQUISITION_CHANNELS[c]) for c in channels])
        # acquisition grows over time: density rising linearly by half over the period
        u = rng.random(n)
        offsets = (np.sqrt(1 + 3 * u) - 1) / 1.0 * self.days * 0.95
        offsets = np.sort(offsets)
        rng.shuffle(types)  # keep types independent of acquisition date
        ids = [f"C{i + 1:05d}" for i in range(n)]
        first = [self.day(o) for o in offsets]
        names, emails, phones = self.people(n)
        cities = [CITIES[i] for i in rng.integers(0, len(CITIES), n)]
        rates = np.array([CUSTOMER_TYPES[t]["rate"] for t in types]) * rng.gamma(6.0, 1 / 6.0, n)
        drop = np.array([rng.beta(*CUSTOMER_TYPES[t]["drop"]) for t in types])
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

    def people(self, n: int) -> tuple[list[str], list[str], list[str]]:
        rng = self.rng
        names, emails, phones = [], [], []
        for i in range(n):
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
                rows.append((c.campaign_id, customers["customer_id"].iat[idx], contacted.isoformat(), 0))
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
        for i in range(self.n):
            rate = truth["purchase_rate"].iat[i] / 30.4 * max_season  # per day, before thinning
            p_drop = truth["dropout_p"].iat[i]
            t = float(first_offsets[i])
            purchases.append((i, t, None, False))
            while True:
                if rng.random() < p_drop:
                    alive_until[i] = t
                    break
                while True:  # thinning: seasonal purchase rate
                    t += rng.exponential(1 / rate)
                    if t >= self.days or rng.random() < self.season(np.array([t]))[0] / max_season:
                        break
                if t >= self.days:
                    break
                purchases.append((i, t, None, False))
        index = {cid: i for i, cid in enumerate(customers["customer_id"])}
        referral_campaign = campaigns.set_index("campaign_id")
        # campaign lift: extra purchases of contacted customers who are still alive
        for c in contacts.itertuples():
            camp = referral_campaign.loc[c.campaign_id]
            i = index[c.customer_id]
            t0 = (dt.date.fromisoformat(c.contacted_at) - self.start).days
            # a mailing with an offer also wakes up lapsed customers, at half the rate
            respond = camp["lift"] if t0 < alive_until[i] else camp["lift"] / 2
            if camp["lift"] > 0 and rng.random() < respond:
                t = t0 + rng.uniform(1, 21)
                if t < self.days:
                    purchases.append((i, t, c.campaign_id if rng.random() < 0.6 else None, True))
        frame = pd.DataFrame(purchases, columns=["idx", "offset", "campaign_id", "bundle"]).sort_values(["offset", "idx"])
        frame = frame.reset_index(drop=True)
        frame["customer_id"] = customers["customer_id"].to_numpy()[frame["idx"]]
        frame["order_date"] = [self.day(o) for o in frame["offset"]]
        # organic orders of contacted customers tagged by an ineffective campaign (C02)
        for c in campaigns[campaigns["attribute_organic"] > 0].itertuples():
            window_start = dt.date.fromisoformat(c.start_date)
            window_end = window_start + dt.timedelta(days=30)
            reached = set(contacts.loc[contacts["campaign_id"] == c.campaign_id, "customer_id"])
            mask = (
                frame["customer_id"].isin(reached)
                & frame["campaign_id"].isna()
                & (frame["order_date"] >= window_start)
                & (frame["order_date"] <= window_end)
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
        after_change = frame["order_date"].to_numpy() >= self.courier_change
        delay = np.where(after_change, np.maximum(delay - 2, 0), delay)
        orders = pd.DataFrame(
            {
                "order_id": frame["order_id"],
                "customer_id": frame["customer_id"],
                "order_date": [d.isoformat() for d in frame["order_date"]],
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
            weights[t] = w / w.sum()
        pids = prods["product_id"].to_numpy()
        prices = prods.set_index("product_id")["unit_price"]
        for oid, t, offer in zip(order_ids, ctype, bundle):
            spec = CUSTOMER_TYPES[t]
            if offer:
                rows += [(oid, pid, 2, float(prices[pid])) for pid in OFFER_BUNDLE]
                continue
            n_lines = min(1 + rng.poisson(spec["lines"] - 1), 6)
            chosen = list(rng.choice(pids, size=n_lines, replace=False, p=weights[t]))
            if PAIR[0] in chosen and PAIR[1] not in chosen and rng.random() < PAIR_PROBABILITY:
                chosen.append(PAIR[1])
            for pid in chosen:
                qty = 1 + rng.poisson(spec["units"] - 1)
                rows.append((oid, pid, int(qty), float(prices[pid])))
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
        for k, o in enumerate(asked.itertuples()):
            submitted = dt.date.fromisoformat(o.order_date) + dt.timedelta(days=int(rng.integers(3, 15)))
            if submitted > self.end:
                continue
            d = delays[o.order_id]
            quality = np.clip(np.rint(4.3 + rng.normal(0, 0.7)), 1, 5)
            delivery = np.clip(np.rint(5.0 - 0.55 * d + rng.normal(0, 0.5)), 1, 5)
            price = np.clip(np.rint(3.8 + rng.normal(0, 0.8)), 1, 5)
            service = np.clip(np.rint(4.2 + rng.normal(0, 0.7)), 1, 5)
            latent = 0.15 * quality + 0.55 * delivery + 0.1 * price + 0.2 * service + rng.normal(0, 0.3)
            if o.customer_id in unhappy:
                quality, delivery, service = (min(v, float(rng.integers(1, 3))) for v in (quality, delivery, service))
                latent = 1.5 + rng.normal(0, 0.3)
            csat = int(np.clip(np.rint(latent), 1, 5))
            nps = int(np.clip(np.rint(2.6 * latent - 2.6 + rng.normal(0, 0.8)), 0, 10))
            if o.customer_id in unhappy:
                nps = int(rng.integers(0, 5))
            pool = POSITIVE_COMMENTS if nps >= 9 else NEGATIVE_COMMENTS if nps <= 6 else NEUTRAL_COMMENTS
            comment = pool[rng.integers(len(pool))] if rng.random() < 0.6 else None
            rows.append((f"F{k + 1:06d}", o.customer_id, submitted.isoformat(), nps, csat,
                         int(quality), int(delivery), int(price), int(service), comment))
        return pd.DataFrame(rows, columns=["feedback_id", "customer_id", "submitted_at", "nps", "csat",
                                           "score_quality", "score_delivery", "score_price", "score_service",
                                           "comment"])

    def tickets(self, orders: pd.DataFrame, truth: pd.DataFrame, delays: pd.Series) -> pd.DataFrame:
        rng = self.rng
        unhappy = set(truth.loc[truth["unhappy"] == 1, "customer_id"])
        rows = []
        for o in orders.itertuples():
            d = delays[o.order_id]
            p = 0.04 + (0.25 if d >= 5 else 0.0) + (0.3 if o.customer_id in unhappy else 0.0)
            if rng.random() >= p:
                continue
            opened = pd.Timestamp(o.order_date) + pd.Timedelta(hours=float(rng.uniform(24, 24 * 12)))
            if opened.date() > self.end:
                continue
            category = "complaint" if (d >= 5 or o.customer_id in unhappy) and rng.random() < 0.7 else \
                rng.choice(["question", "request", "feedback"])
            first = opened + pd.Timedelta(hours=float(rng.lognormal(np.log(5), 0.9)))
            closed = first + pd.Timedelta(hours=float(rng.lognormal(np.log(30), 1.0)))
            end_ts = pd.Timestamp(self.end) + pd.Timedelta(hours=23, minutes=59)
            status = "closed" if closed <= end_ts else "open"
            hours = (closed - opened).total_seconds() / 3600
            csat = int(np.clip(np.rint(5 - hours / 48 + rng.normal(0, 0.6)), 1, 5)) if status == "closed" else None
            rows.append((
                f"T{len(rows) + 1:05d}", o.customer_id, opened.strftime("%Y-%m-%d %H:%M:%S"),
                first.strftime("%Y-%m-%d %H:%M:%S") if first <= end_ts else None,
                closed.strftime("%Y-%m-%d %H:%M:%S") if status == "closed" else None,
                category, rng.choice(["low", "normal", "normal", "high"]), status, csat,
            ))
        return pd.DataFrame(rows, columns=["ticket_id", "customer_id", "opened_at", "first_response_at", "closed_at",
                                           "category", "priority", "status", "csat"])

    def interactions(self, orders: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
        rng = self.rng
        vip = set(truth.loc[truth["customer_type"] == "vip", "customer_id"])
        rows = []
        for o in orders.itertuples():
            k = 1 + (1 if o.customer_id in vip else 0)
            for _ in range(rng.binomial(k, 0.35)):
                when = pd.Timestamp(o.order_date) + pd.Timedelta(hours=float(rng.uniform(2, 24 * 20)))
                if when.date() > self.end:
                    continue
                channel = rng.choice(["email", "email", "chat", "call", "meeting", "social"])
                direction = rng.choice(["inbound", "outbound"])
                subject = rng.choice(["Order follow-up", "Brewing tips", "Question about delivery",
                                      "Thank-you note", "New harvest", "Workshop invitation"])
                rows.append((o.customer_id, when.strftime("%Y-%m-%d %H:%M:%S"), channel, direction, subject,
                             rng.choice(["answered", "no reply", "ordered", "scheduled"])))
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
        rows = []
        for k in range(n_opps):
            who = pool.iloc[int(rng.integers(len(pool)))]
            source = rng.choice(list(base), p=src_p)
            amount = float(np.round(rng.lognormal(np.log(2500), 0.8), -1))
            opened = self.day(rng.uniform(0, self.days - 1))
            logit = base[source] - 0.9 * np.log(amount / 2500)
            won = rng.random() < 1 / (1 + np.exp(-logit))
            cycle = int(rng.gamma(3.0, 15.0)) + 5
            closed = opened + dt.timedelta(days=cycle)
            if closed <= self.end:
                stage = "won" if won else "lost"
                closed_at, last = closed.isoformat(), closed.isoformat()
                lost_reason = None if won else rng.choice(["price", "timing", "competitor", "no response"])
            else:
                progress = (self.end - opened).days / cycle
                stage = ["lead", "qualified", "proposal", "negotiation"][min(int(progress * 4), 3)]
                closed_at, lost_reason = None, None
                stale = rng.random() < 0.25
                last = (opened if stale else self.end - dt.timedelta(days=int(rng.integers(0, 14))))
                last = max(last, opened).isoformat()
            expected = opened + dt.timedelta(days=int(rng.gamma(3.0, 15.0)) + 10)
            rows.append((
                f"OP{k + 1:04d}", who["customer_id"], rng.choice(["Tea workshop series", "Corporate gift boxes",
                                                                 "Office tea subscription", "Tasting event"]),
                source, stage, amount, stage_prob[stage], opened.isoformat(), expected.isoformat(), closed_at,
                last, lost_reason,
            ))
        opps = pd.DataFrame(rows, columns=["opportunity_id", "customer_id", "title", "source", "stage", "amount",
                                           "probability", "opened_at", "expected_close", "closed_at",
                                           "last_activity_at", "lost_reason"])
        return prospects, opps


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
    path: str, customers: int = 800, months: int = 24, seed: int = 42, end: str | None = None
) -> dict[str, int]:
    """Create (or refill) a demo store at ``path``; returns row counts per table."""
    from .store import open_db

    db = open_db(path)
    return write_demo(db, generate_demo(customers=customers, months=months, seed=seed, end=end))


def stable_digest(business: DemoBusiness) -> str:
    """A short hash of all tables, to check that a seed reproduces the same business."""
    h = hashlib.sha256()
    for name in LOAD_ORDER:
        h.update(pd.util.hash_pandas_object(business.tables[name], index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


__all__ = ["DemoBusiness", "generate_demo", "write_demo", "build_demo_store", "default_end", "month_end"]
