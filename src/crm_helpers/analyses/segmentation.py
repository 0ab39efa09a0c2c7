"""Who the customers are: RFM scores and segments, K-means clusters, and segment history.

RFM
---
:func:`rfm_table` turns :func:`crm_helpers.analyses.features.customer_features` (buyers as of a day)
into R, F and M scores from 1 (worst) to 5 (best) and a named segment.

- Recency = days since the last paid order, frequency = paid orders, monetary = net revenue
  (paid orders only: refunded and cancelled orders are neither purchases nor revenue).
- **Scores and ties.** A customer's score is ``1 + floor(5 × p)`` (at most 5), where ``p`` is the
  mid-rank percentile: the share of customers with a strictly worse value plus half the share
  with the same value (worse = longer recency, fewer orders, less revenue). With all values
  different this is exactly the quintile (the best fifth gets 5). Customers with the same value
  always get the same score, whatever the row order; a tied group is placed by its middle, so a
  small change in how many customers sit below it does not flip the whole group (which placing
  it by its lowest rank would). Heavy ties (many one-time buyers) leave some scores unused
  rather than splitting equal customers at random. When every customer has the same value,
  ``p = 0.5`` and everyone gets the middle score 3.
- **F = 1 means one order.** One-time buyers are usually the largest tie (four in ten of the
  demo's buyers); scored with the others they sat at F = 2 and nobody ever had F = 1, so "New
  Customers" and "Promising" (R 5/4 with F 1) stayed empty. So one-time buyers get F = 1 and repeat
  buyers are scored 2..5 by the rule above among themselves (:func:`frequency_scores`).
- **Segments** come from the common R×F grid (:data:`SEGMENT_RULES`): each of the 25 (R, F)
  cells belongs to exactly one of ten segments. M is scored and stored but does not change the
  segment.

Clusters
--------
:class:`CustomerClusters` runs K-means on standardized log features, picks k by the silhouette
over a range, numbers clusters by value (1 = highest average revenue) and describes each in words.

History
-------
:func:`store_snapshot` writes each month's segment per customer into ``segment_snapshots``
(one row per month and customer; re-running a month replaces that month's rows, so it is
idempotent); :func:`migration_matrix` compares two months.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlite_utils import Database

from crm_helpers.errors import CrmError
from crm_helpers.store.queries import query_df, store_currency
from crm_helpers.analyses.features import as_date, customer_features
from crm_helpers.store.periods import Period, same_month_last_year
from crm_helpers.i18n import t, tn
from crm_helpers.store.values import Action, Headline, money_whole, named_list, span
from crm_helpers.store.schema import SEGMENT_SNAPSHOTS

SCORE_BINS = 5
NEW_BUYER = "(no purchase yet)"
"""Row label of the migration matrix for customers who were not buyers in the earlier month."""


@dataclass(frozen=True)
class SegmentRule:
    """One named segment: the R and F scores it covers, what it means and what to do."""

    segment: str
    r_scores: tuple[int, ...]
    f_scores: tuple[int, ...]
    meaning: str
    action: str


SEGMENT_RULES: tuple[SegmentRule, ...] = (
    SegmentRule("Champions", (5,), (4, 5), "bought very recently and often",
                "thank them, ask for reviews and referrals, offer early access"),
    SegmentRule("Loyal Customers", (3, 4), (4, 5), "buy often, fairly recently",
                "keep them close: loyalty perks, personal notes"),
    SegmentRule("Potential Loyalists", (4, 5), (2, 3), "recent, with a few orders",
                "suggest the next product, invite to a subscription"),
    SegmentRule("New Customers", (5,), (1,), "first order very recently",
                "welcome them, help them get the most from the first purchase"),
    SegmentRule("Promising", (4,), (1,), "one recent order",
                "a friendly follow-up and a reason to come back"),
    SegmentRule("Need Attention", (3,), (3,), "average on both, slipping",
                "a personal offer before they drift"),
    SegmentRule("About to Sleep", (3,), (1, 2), "few orders, not so recent",
                "a gentle reminder, a popular product"),
    SegmentRule("At Risk", (1, 2), (3, 4), "used to buy often, not for a long time",
                "reach out personally: what changed?"),
    SegmentRule("Can't Lose Them", (1, 2), (5,), "were among the most frequent, now gone quiet",
                "call them: win them back before a competitor does"),
    SegmentRule("Hibernating", (1, 2), (1, 2), "few orders, long ago",
                "low-cost reactivation only; do not over-invest"),
)
"""The common R×F grid: every (R, F) cell from 1 to 5 is covered exactly once."""

SEGMENT_ORDER: tuple[str, ...] = tuple(rule.segment for rule in SEGMENT_RULES)
AT_RISK_SEGMENTS: tuple[str, ...] = ("At Risk", "Can't Lose Them")
AT_RISK_MEANING = ("Customers in the RFM segments At Risk and Can't Lose Them: they used to buy often but have not "
                   "bought for a long time, compared with your other customers (the first step towards losing them).")
"""Customers at risk, the first step of the ladder at risk → probably lost → lost, in one plain sentence
as the index and the glossary print it."""

RFM_COLUMNS = ["customer_id", "recency_days", "frequency", "monetary", "tenure_days", "avg_order_value",
               "r_score", "f_score", "m_score", "segment"]


class SegmentError(CrmError, ValueError):
    """A segment name or a snapshot request that cannot be honoured (plain message)."""


def _cell_map() -> dict[tuple[int, int], str]:
    cells: dict[tuple[int, int], str] = {}
    for rule in SEGMENT_RULES:
        for r in rule.r_scores:
            for f in rule.f_scores:
                if (r, f) in cells:
                    raise SegmentError(f"cell R{r} F{f} is mapped to both {cells[(r, f)]} and {rule.segment}")
                cells[(r, f)] = rule.segment
    return cells


CELL_SEGMENT: dict[tuple[int, int], str] = _cell_map()


def canonical_segment(name: str) -> str:
    """The segment called ``name`` (any case, straight or curly apostrophe); SegmentError lists valid ones."""
    wanted = str(name).strip().replace("\u2019", "'").casefold()
    for segment in SEGMENT_ORDER:
        if segment.casefold() == wanted:
            return segment
    raise SegmentError(f"unknown segment {name!r}; the segments are: " + ", ".join(SEGMENT_ORDER))


def segment_rules() -> pd.DataFrame:
    """The rule table: segment, R scores, F scores, meaning, suggested action (one row per segment)."""
    return pd.DataFrame(
        [{"segment": r.segment, "R scores": _span(r.r_scores), "F scores": _span(r.f_scores),
          "meaning": r.meaning, "what to do": r.action} for r in SEGMENT_RULES]
    )


def _span(scores: tuple[int, ...]) -> str:
    return str(scores[0]) if len(scores) == 1 else span(str(min(scores)), str(max(scores)))


def segment_grid() -> pd.DataFrame:
    """The 25 cells as a 5×5 table: rows R 5 (most recent) to 1, columns F 1 to 5, cells the segment."""
    grid = pd.DataFrame(
        [[CELL_SEGMENT[(r, f)] for f in range(1, SCORE_BINS + 1)] for r in range(SCORE_BINS, 0, -1)],
        index=pd.Index([f"R{r}" for r in range(SCORE_BINS, 0, -1)], name="recency score"),
        columns=pd.Index([f"F{f}" for f in range(1, SCORE_BINS + 1)], name="frequency score"),
    )
    return grid


def quintile_scores(values: pd.Series, *, higher_is_better: bool = True, bins: int = SCORE_BINS) -> pd.Series:
    """Scores 1..``bins``: ``1 + floor(bins × mid-rank percentile)`` (see the module notes).

    Equal values get equal scores; the result does not depend on row order. If all values are
    equal, everyone gets the middle score. Returns an int64 Series aligned with ``values``.
    """
    n = len(values)
    if n == 0:
        return pd.Series([], index=values.index, dtype="int64")
    oriented = values.astype("float64") if higher_is_better else -values.astype("float64")
    # average rank - 0.5 = (strictly worse) + (equal) / 2, counted in customers
    percentile = (oriented.rank(method="average") - 0.5) / n
    return (1 + np.floor(bins * percentile)).clip(1, bins).astype("int64")


def frequency_scores(frequency: pd.Series) -> pd.Series:
    """F scores 1..5: 1 for one paid order; repeat buyers 2..5 by :func:`quintile_scores` among
    themselves (fourths). When every buyer has the same number of orders, everyone gets 3, as for
    any score without spread. Returns an int64 Series aligned with ``frequency``."""
    if frequency.nunique() <= 1:
        return quintile_scores(frequency)
    scores = pd.Series(1, index=frequency.index, dtype="int64")
    repeat = frequency > 1
    scores[repeat] = 1 + quintile_scores(frequency[repeat], bins=SCORE_BINS - 1)
    return scores


def segment_of(r_scores: pd.Series, f_scores: pd.Series) -> pd.Series:
    """Segment name per row from R and F scores (1..5), by :data:`SEGMENT_RULES`."""
    keys = pd.Series(list(zip(r_scores.astype(int), f_scores.astype(int))), index=r_scores.index, dtype=object)
    return keys.map(CELL_SEGMENT).astype(object)


def rfm_table(features: pd.DataFrame) -> pd.DataFrame:
    """Buyers' features -> RFM scores and segment, one row per buyer (columns :data:`RFM_COLUMNS`).

    Input: :func:`crm_helpers.analyses.features.customer_features` (customers without a paid order are
    dropped). Units: recency and tenure in days, monetary and average order value in the order
    currency, net of refunds (paid orders only). Ties are handled by :func:`quintile_scores`;
    F is :func:`frequency_scores` (one order = F 1).
    """
    buyers = features.loc[features["frequency"] > 0].copy()
    if buyers.empty:
        return pd.DataFrame({c: pd.Series(dtype="object" if c in ("customer_id", "segment") else "float64")
                             for c in RFM_COLUMNS})
    buyers["r_score"] = quintile_scores(buyers["recency_days"], higher_is_better=False)
    buyers["f_score"] = frequency_scores(buyers["frequency"])
    buyers["m_score"] = quintile_scores(buyers["monetary"])
    buyers["segment"] = segment_of(buyers["r_score"], buyers["f_score"])
    return buyers[RFM_COLUMNS].sort_values("customer_id").reset_index(drop=True)


def rfm_notes(rfm: pd.DataFrame) -> list[str]:
    """Plain warnings where quintile scores mean little (empty or tiny book, heavy ties)."""
    n = len(rfm)
    if n == 0:
        return ["No customer has a paid order by this date: there is nothing to segment yet."]
    notes = []
    if n < 2 * SCORE_BINS:
        notes.append(f"Only {n} buyers: scores by fifths are not meaningful with so few customers; "
                     "read the recency, frequency and revenue columns themselves.")
    labels = {"recency_days": "recency", "frequency": "number of orders", "monetary": "revenue"}
    for col, label in labels.items():
        distinct = rfm[col].nunique()
        score = {"recency_days": "r_score", "frequency": "f_score", "monetary": "m_score"}[col]
        unused = sorted(set(range(1, SCORE_BINS + 1)) - set(rfm[score].astype(int)))
        if distinct == 1:
            notes.append(f"Every buyer has the same {label}: its score is 3 for everyone and says nothing.")
        elif unused:
            top = rfm[col].value_counts(normalize=True)
            notes.append(
                f"Many buyers share the same {label} ({100 * top.iloc[0]:.0f}% have {top.index[0]:g}); equal "
                f"customers always get the same score, so score(s) {', '.join(map(str, unused))} "
                f"of the {label} are unused."
            )
    return notes


def segment_summary(rfm: pd.DataFrame) -> pd.DataFrame:
    """One row per segment (all ten, best first): customers, share, typical recency/orders, revenue.

    Columns: segment, customers, share_pct, median_recency_days, median_orders, revenue (net),
    revenue_share_pct, what to do.
    """
    grouped = rfm.groupby("segment", sort=False)
    out = pd.DataFrame(index=pd.Index(SEGMENT_ORDER, name="segment"))
    out["customers"] = grouped.size().reindex(out.index).fillna(0).astype("int64")
    total, revenue = max(len(rfm), 1), float(rfm["monetary"].sum()) if len(rfm) else 0.0
    out["share_pct"] = 100 * out["customers"] / total
    out["median_recency_days"] = grouped["recency_days"].median().reindex(out.index).astype("float64")
    out["median_orders"] = grouped["frequency"].median().reindex(out.index).astype("float64")
    out["revenue"] = grouped["monetary"].sum().reindex(out.index).fillna(0.0).astype("float64")
    out["revenue_share_pct"] = 100 * out["revenue"] / revenue if revenue else 0.0
    out["what to do"] = [r.action for r in SEGMENT_RULES]
    return out.reset_index()


def score_counts(rfm: pd.DataFrame) -> pd.DataFrame:
    """Customers per R score (rows 5..1) and F score (columns 1..5): how the grid is filled."""
    table = pd.crosstab(rfm["r_score"], rfm["f_score"])
    scores = range(1, SCORE_BINS + 1)
    table = table.reindex(index=list(reversed(scores)), columns=list(scores), fill_value=0)
    table.index = pd.Index([f"R{r}" for r in table.index], name="recency score")
    table.columns = pd.Index([f"F{f}" for f in table.columns], name="frequency score")
    return table


def at_risk_count(segments: pd.DataFrame) -> int:
    """Customers in the At Risk and Can't Lose Them segments (a frame with a ``segment`` column)."""
    return int(segments["segment"].isin(AT_RISK_SEGMENTS).sum()) if len(segments) else 0


def headline_figures(db: Database, *, period: Period, previous: Period | None = None) -> list[Headline]:
    """Customers at risk (:func:`at_risk_count`, a count) in the segments as of ``period``'s last day
    (:func:`rfm_table`) beside the stored snapshot of ``previous``'s month (default: the calendar
    month before ``period``, :func:`load_snapshot`; not available when none is stored) and the same
    month last year's (when the store holds that month, :func:`~crm_helpers.store.periods.same_month_last_year`:
    its stored snapshot, else the segments as of its last day), as a headline for the report index
    (a counted fact with no noise estimate: the index shows its move uncoloured)."""
    segments = rfm_table(customer_features(db, period.end))
    before = load_snapshot(db, month_key((previous or period.previous_month()).end))
    year = same_month_last_year(db, period)
    year_ago = None
    if year is not None:
        stored = load_snapshot(db, month_key(year.end))
        year_ago = at_risk_count(stored if len(stored) else rfm_table(customer_features(db, year.end)))
    return [Headline("at_risk_customers", at_risk_count(segments), "Customers at risk",
                     note=AT_RISK_MEANING,
                     previous=at_risk_count(before) if len(before) else None, year_ago=year_ago, exact=True,
                     lowest=0.0)]


def actions(db: Database, *, period: Period) -> list[Action]:
    """Contact the customers who moved into At Risk or Can't Lose Them (:data:`AT_RISK_SEGMENTS`) from a
    better segment between the stored snapshots of the month before ``period`` and of ``period``
    (:func:`movers`; none when either snapshot is missing), the three who spent most by name.

    Money at stake (store currency) = a year of their spend: each mover's net revenue per day since
    their first paid order (``monetary / tenure``, tenure counted as at least a year) × 365, summed;
    what losing them would cost in a year. No range: the segment gives no chance of losing them.
    """
    moved = movers(db, month_key(period.previous_month().end), to_month=month_key(period.end))
    if moved.empty:
        return []
    features = customer_features(db, period.end).set_index("customer_id")
    moved = moved.join(features[["monetary", "tenure_days"]], on="customer_id")
    yearly = moved["monetary"].fillna(0) / moved["tenure_days"].fillna(0).clip(lower=365) * 365
    currency = store_currency(db)
    biggest = moved.nlargest(3, "monetary")
    names = [t("{name} ({money} so far)", name=name or cid, money=money_whole(spent, currency))
             for cid, name, spent in zip(biggest["customer_id"], biggest["name"], biggest["monetary"])]
    cant_lose = int((moved["segment_now"] == "Can't Lose Them").sum())
    return [Action(
        "newly at risk",
        t("Contact the {count} customers who newly fell into At Risk or Can't Lose Them this month "
          "({cant_lose} into Can't Lose Them) before they lapse, first {names}.",
          count=f"{len(moved):,}", cant_lose=f"{cant_lose:,}", names=named_list(names)),
        float(yearly.sum()), currency=currency, page="02_segmentation", section="Newly at risk")]


# -- K-means ---------------------------------------------------------------------------------

CLUSTER_FEATURES: dict[str, tuple[str, str]] = {
    # feature: (word when high, word when low)
    "recency_days": ("lapsed", "recent"),
    "frequency": ("frequent", "infrequent"),
    "monetary": ("high spend", "low spend"),
    "tenure_days": ("long-standing", "new"),
    "avg_order_value": ("large baskets", "small baskets"),
    "interactions": ("often in touch", "rarely in touch"),
}
"""Features K-means uses by default, with the plain words that describe a cluster."""
WORD_SEPARATOR = ", "
"""Between the words of a cluster's description (in the language in use: Chinese writes "，")."""


class CustomerClusters:
    """K-means on standardized ``log(1 + x)`` behaviour features, k chosen by the silhouette.

    Parameters: ``k_range`` (smallest and largest k tried, inclusive), ``features`` (columns of
    :func:`customer_features`), ``n_init``, ``silhouette_sample`` (customers used to compute
    each silhouette, for speed on large books), ``random_state``.

    After :meth:`fit`: ``k_``; ``labels_`` (cluster number per customer_id, 1 = highest average
    revenue, so the same data always gives the same numbers); ``scores_`` (k, silhouette,
    inertia: the elbow/silhouette table); ``profiles_`` (one row per cluster: a short ``name`` from
    what sets it apart most, medians and a description in words); ``ok`` (False when the book is
    too small to cluster, in which case everyone is in cluster 1) and ``message`` (one plain
    sentence: the groups chosen and why, or why there are none).
    """

    def __init__(self, k_range: tuple[int, int] = (2, 8), features: tuple[str, ...] = tuple(CLUSTER_FEATURES),
                 *, n_init: int = 5, silhouette_sample: int = 3000, random_state: int = 0) -> None:
        self.k_range = k_range
        self.features = features
        self.n_init = n_init
        self.silhouette_sample = silhouette_sample
        self.random_state = random_state

    def _matrix(self, features: pd.DataFrame) -> np.ndarray:
        raw = features[list(self.features)].astype("float64").fillna(0.0).clip(lower=0.0)
        return np.log1p(raw.to_numpy())

    def fit(self, features: pd.DataFrame) -> "CustomerClusters":
        """Fit on buyers' features (one row per customer); returns self."""
        from sklearn.cluster import KMeans
        from sklearn.decomposition import PCA
        from sklearn.metrics import silhouette_score
        from sklearn.preprocessing import StandardScaler
        from threadpoolctl import threadpool_limits

        buyers = features.loc[features["frequency"] > 0].sort_values("customer_id").reset_index(drop=True)
        k_min, k_max = int(self.k_range[0]), int(self.k_range[1])
        if k_min < 2 or k_max < k_min:
            raise ValueError(f"k_range must be (smallest, largest) with 2 <= smallest <= largest, got {self.k_range}")
        x = self._matrix(buyers)
        self.scaler_ = StandardScaler().fit(x) if len(x) else None
        z = self.scaler_.transform(x) if self.scaler_ is not None else x
        distinct = len(np.unique(np.round(z, 9), axis=0)) if len(z) else 0
        ks = [k for k in range(k_min, k_max + 1) if k < distinct]
        self._note = ""
        rows = []
        best: tuple[float, int, np.ndarray, np.ndarray] | None = None
        for k in ks:
            with threadpool_limits(limits=1):  # OpenMP threads only wait on each other at this size
                model = KMeans(n_clusters=k, n_init=self.n_init, random_state=self.random_state).fit(z)
            sample = min(len(z), self.silhouette_sample)
            sil = float(silhouette_score(z, model.labels_, sample_size=sample, random_state=self.random_state))
            rows.append({"k": k, "silhouette": sil, "inertia": float(model.inertia_)})
            if best is None or sil > best[0] + 1e-12:
                best = (sil, k, model.labels_, model.cluster_centers_)
        self.scores_ = pd.DataFrame(rows, columns=["k", "silhouette", "inertia"])
        if best is None:
            self._note = (
                "No buyers by this date: there is nothing to cluster." if len(buyers) == 0 else
                f"Only {len(buyers)} buyers with {distinct} distinct behaviour profile(s): too few to form "
                f"{k_min} or more clusters, so everyone is shown as one group."
            )
            raw_labels = np.zeros(len(buyers), dtype=int)
            centers = z.mean(axis=0, keepdims=True) if len(z) else np.zeros((0, len(self.features)))
            self.k_ = 1 if len(buyers) else 0
        else:
            _, self.k_, raw_labels, centers = best
        order = self._value_order(buyers, raw_labels)
        self.centers_ = centers[order] if len(order) else centers
        mapping = {old: new + 1 for new, old in enumerate(order)}
        self.labels_ = pd.Series([mapping[v] for v in raw_labels], name="cluster", dtype="int64",
                                 index=pd.Index(buyers["customer_id"], name="customer_id"))
        self.pca_ = None
        if distinct >= 3 and z.shape[1] >= 2:
            self.pca_ = PCA(n_components=2, random_state=self.random_state).fit(z)
        self.profiles_ = self._profiles(buyers, z)
        return self

    @staticmethod
    def _value_order(buyers: pd.DataFrame, raw_labels: np.ndarray) -> list[int]:
        """Raw cluster ids sorted by mean revenue (highest first), ties by mean orders then id."""
        stats = buyers.assign(_c=raw_labels).groupby("_c").agg(m=("monetary", "mean"), f=("frequency", "mean"))
        stats = stats.reset_index().sort_values(["m", "f", "_c"], ascending=[False, False, True])
        return stats["_c"].tolist()

    def _profiles(self, buyers: pd.DataFrame, z: np.ndarray) -> pd.DataFrame:
        cols = list(self.features)
        if len(buyers) == 0:
            return pd.DataFrame(columns=["cluster", "name", "customers", "share_pct", *cols, "revenue_share_pct",
                                         "description"])
        frame = buyers[cols].astype("float64").assign(cluster=self.labels_.to_numpy())
        profile = frame.groupby("cluster").median()
        profile.insert(0, "customers", frame.groupby("cluster").size())
        profile.insert(1, "share_pct", 100 * profile["customers"] / len(frame))
        revenue = buyers["monetary"].groupby(self.labels_.to_numpy()).sum()
        total = float(buyers["monetary"].sum())
        profile["revenue_share_pct"] = 100 * revenue / total if total else 0.0
        zmean = pd.DataFrame(z, columns=cols).groupby(self.labels_.to_numpy()).mean()
        profile["description"] = [_describe(zmean.loc[c]) for c in profile.index]
        profile.insert(0, "name", _names(profile["description"]))
        return profile.reset_index()

    @property
    def ok(self) -> bool:
        """True when the buyers were split into two or more clusters (else :attr:`message` says why not)."""
        return not self._note

    @property
    def message(self) -> str:
        """One plain sentence: how many groups were chosen, why, and what tells them apart."""
        if self._note:
            return self._note
        scores = self.scores_.set_index("k")["silhouette"]
        groups = t("; ").join(
            tn("group {cluster}, {name}, {customers} customers with typically {n} order",
               "group {cluster}, {name}, {customers} customers with typically {n} orders", n=round(r.frequency),
               cluster=r.cluster, name=t(r.name).lower(), customers=f"{r.customers:,.0f}")
            for r in self.profiles_.itertuples()
        )
        if len(scores) < 2:
            return t("Your buyers fall most clearly into {k} groups: {groups}.", k=self.k_, groups=groups)
        runner = int(scores.drop(self.k_).idxmax())
        return t("Your buyers fall most clearly into {k} groups (how cleanly they separate: {score} against "
                 "{runner_score} for {runner} groups, on a scale where 1 is fully apart): {groups}.",
                 k=self.k_, score=f"{scores[self.k_]:.2f}", runner_score=f"{scores[runner]:.2f}", runner=runner,
                 groups=groups)

    def predict(self, features: pd.DataFrame) -> pd.Series:
        """Cluster number (1..k, by value) for each customer_id in ``features``."""
        if self.scaler_ is None or len(features) == 0 or len(self.centers_) == 0:
            return pd.Series(1, index=pd.Index(features["customer_id"], name="customer_id"), name="cluster",
                             dtype="int64")
        z = self.scaler_.transform(self._matrix(features))
        dist = ((z[:, None, :] - self.centers_[None, :, :]) ** 2).sum(axis=2)
        return pd.Series(dist.argmin(axis=1) + 1, index=pd.Index(features["customer_id"], name="customer_id"),
                         name="cluster", dtype="int64")

    def map_2d(self, features: pd.DataFrame) -> pd.DataFrame:
        """A 2-D view for a scatter plot: customer_id, cluster, pc1, pc2 (principal components)."""
        buyers = features.loc[features["frequency"] > 0].sort_values("customer_id")
        clusters = self.predict(buyers) if len(buyers) else pd.Series(dtype="int64")
        out = pd.DataFrame({"customer_id": buyers["customer_id"].to_numpy(), "cluster": clusters.to_numpy()})
        if self.pca_ is None or len(buyers) == 0:
            return out.assign(pc1=0.0, pc2=0.0)
        xy = self.pca_.transform(self.scaler_.transform(self._matrix(buyers)))
        return out.assign(pc1=xy[:, 0], pc2=xy[:, 1])


def _names(descriptions: pd.Series, words: int = 2) -> list[str]:
    """Short cluster names: the first ``words`` words of each description (its strongest
    differences), more where two clusters would otherwise share a name."""
    comma = t(WORD_SEPARATOR)
    parts = [d.split(comma) for d in descriptions]
    names = [comma.join(p[:words]) for p in parts]
    for n in range(words + 1, max((len(p) for p in parts), default=words) + 1):
        if len(set(names)) == len(names):
            break
        names = [comma.join(p[:n]) for p in parts]
    return [name[:1].upper() + name[1:] for name in names]


def _describe(z: pd.Series, threshold: float = 0.35) -> str:
    """Words for a cluster centre in standard units: features at least ``threshold`` SD from the mean."""
    words = []
    for feature, value in z.abs().sort_values(ascending=False).items():
        if value >= threshold and feature in CLUSTER_FEATURES:
            high, low = CLUSTER_FEATURES[feature]
            words.append(t(high if z[feature] > 0 else low))
    return t(WORD_SEPARATOR).join(words) if words else t("close to average on every measure")


# -- history ---------------------------------------------------------------------------------

def month_key(day: dt.date | str) -> str:
    """``YYYY-MM`` of a day (the snapshot key)."""
    return f"{as_date(day):%Y-%m}"


def store_snapshot(db: Database, month: str, *, rfm: pd.DataFrame) -> int:
    """Write ``rfm``'s segments as the snapshot of ``month`` (``YYYY-MM``); returns rows written.

    The month's previous rows are replaced in one transaction (an upsert by month and
    customer, plus removal of customers no longer in the table), so re-running a month gives
    the same table.
    """
    month_key(f"{month}-01")  # validates the form
    records = [
        {"month": month, "customer_id": str(row.customer_id), "segment": str(row.segment),
         "r_score": int(row.r_score), "f_score": int(row.f_score), "m_score": int(row.m_score)}
        for row in rfm[["customer_id", "segment", "r_score", "f_score", "m_score"]].itertuples(index=False)
    ]
    with db.atomic():
        db.execute(f"DELETE FROM {SEGMENT_SNAPSHOTS} WHERE month = ?", [month])
        if records:
            db.table(SEGMENT_SNAPSHOTS).upsert_all(records, pk=("month", "customer_id"), batch_size=5000)
    return len(records)


def snapshot_month(db: Database, as_of: dt.date | str, *, replace: bool = True) -> int:
    """Compute the RFM segments as of ``as_of`` and store them as its month's snapshot; returns rows written.

    With ``replace=False`` a month already stored is left as it was recorded and 0 is returned
    (used to fill in a previous month that was never reported, without rewriting one that was).
    """
    month = month_key(as_of)
    if not replace and has_snapshot(db, month):
        return 0
    return store_snapshot(db, month, rfm=rfm_table(customer_features(db, as_of)))


def has_snapshot(db: Database, month: str) -> bool:
    """Whether ``month`` (``YYYY-MM``) has a stored snapshot."""
    return db.execute(f"SELECT 1 FROM {SEGMENT_SNAPSHOTS} WHERE month = ? LIMIT 1", [month]).fetchone() is not None


def stored_months(db: Database) -> list[str]:
    """Months that have a snapshot, oldest first."""
    return [r[0] for r in db.execute(f"SELECT DISTINCT month FROM {SEGMENT_SNAPSHOTS} ORDER BY month")]


def load_snapshot(db: Database, month: str) -> pd.DataFrame:
    """The stored snapshot of ``month``: customer_id, segment, r_score, f_score, m_score (may be empty)."""
    return query_df(
        db, f"SELECT customer_id, segment, r_score, f_score, m_score FROM {SEGMENT_SNAPSHOTS} "
        "WHERE month = ? ORDER BY customer_id", params=[month],
    )


def migration_matrix(db: Database, from_month: str, *, to_month: str) -> pd.DataFrame:
    """Customers by segment in ``from_month`` (rows) and ``to_month`` (columns), from the snapshots.

    Rows and columns follow :data:`SEGMENT_ORDER`; customers who were not buyers yet in
    ``from_month`` form the row :data:`NEW_BUYER`. Rows and columns that would be all zero are
    kept, so the table always has the same shape.
    """
    before, after = load_snapshot(db, from_month), load_snapshot(db, to_month)
    joined = after[["customer_id", "segment"]].merge(
        before[["customer_id", "segment"]], on="customer_id", how="left", suffixes=("", "_before"))
    joined["segment_before"] = joined["segment_before"].fillna(NEW_BUYER)
    table = pd.crosstab(joined["segment_before"], joined["segment"]) if len(joined) else pd.DataFrame()
    table = table.reindex(index=[*SEGMENT_ORDER, NEW_BUYER], columns=list(SEGMENT_ORDER), fill_value=0)
    table.index.name = t("segment in {month}", month=from_month)
    table.columns.name = t("segment in {month}", month=to_month)
    return table.astype("int64")


def movers(db: Database, from_month: str, *, to_month: str, into: tuple[str, ...] = AT_RISK_SEGMENTS) -> pd.DataFrame:
    """Customers who moved into one of the ``into`` segments between two snapshots, from another one.

    Columns: customer_id, name, segment_before, segment_now, sorted by segment_now then name.
    New buyers are not listed (they had no segment before).
    """
    placeholders = ",".join("?" * len(into))
    return query_df(
        db,
        f"SELECT a.customer_id, c.name, b.segment AS segment_before, a.segment AS segment_now "
        f"FROM {SEGMENT_SNAPSHOTS} a JOIN {SEGMENT_SNAPSHOTS} b ON b.customer_id = a.customer_id AND b.month = ? "
        f"JOIN customers c ON c.customer_id = a.customer_id "
        f"WHERE a.month = ? AND a.segment IN ({placeholders}) AND b.segment NOT IN ({placeholders}) "
        f"ORDER BY a.segment, c.name, a.customer_id",
        params=[from_month, to_month, *into, *into],
    )
