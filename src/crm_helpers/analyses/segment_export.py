"""Lists for other tools: the customers of an RFM segment as a CSV for an e-mail tool.

``crm export segment "At Risk" --to at_risk.csv`` calls :func:`export_segment`. The file is
written with :mod:`crm_helpers.store.safe_csv`: cells that a spreadsheet would run as a formula
(starting with ``=``, ``+``, ``-``, ``@``) are neutralized, and the file is readable by the
owner only.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pandas as pd
from sqlite_utils import Database

from crm_helpers.store.queries import query_df
from crm_helpers.analyses.features import as_date, customer_features, last_order_date
from crm_helpers.store.safe_csv import write_safe_csv
from crm_helpers.analyses.segmentation import SEGMENT_ORDER, canonical_segment, rfm_table

EXPORT_COLUMNS = ["customer_id", "name", "email", "consent_marketing", "segment", "r_score", "f_score", "m_score",
                  "last_order", "recency_days", "orders", "net_revenue"]
"""Columns of the exported file (orders and net revenue count paid orders only)."""


def segment_members(
    db: Database, segment: str, *, as_of: dt.date | str | None = None, include_without_consent: bool = False
) -> pd.DataFrame:
    """The customers of ``segment`` as of ``as_of`` with contact details and key figures.

    ``segment`` is matched ignoring case; an unknown name raises ValueError listing the valid
    ones. ``as_of`` defaults to the date of the latest order in the store. Only customers who
    agreed to marketing e-mails (``consent_marketing = 1``; unknown counts as no) are kept,
    unless ``include_without_consent``; customers without an e-mail address are left out, since
    an e-mail tool cannot use them. Columns: :data:`EXPORT_COLUMNS`, sorted by net revenue
    (highest first), then customer_id.
    """
    name = canonical_segment(segment)
    day = as_date(as_of) if as_of else last_order_date(db)
    if day is None:
        raise ValueError("the store holds no orders yet: import some, or run `crm demo` first")
    features = customer_features(db, day)
    rfm = rfm_table(features)
    members = rfm.loc[rfm["segment"] == name].merge(features[["customer_id", "last_order"]], on="customer_id")
    contacts = query_df(db, "SELECT customer_id, name, email, consent_marketing FROM customers")
    out = members.merge(contacts, on="customer_id", how="left")
    out["consent_marketing"] = (pd.to_numeric(out["consent_marketing"], errors="coerce").fillna(0) == 1).astype(int)
    out = out.loc[out["email"].fillna("").astype(str).str.strip() != ""]
    if not include_without_consent:
        out = out.loc[out["consent_marketing"] == 1]
    out = out.rename(columns={"frequency": "orders", "monetary": "net_revenue"})
    out["last_order"] = out["last_order"].dt.strftime("%Y-%m-%d")
    out["net_revenue"] = out["net_revenue"].round(2)
    out = out.sort_values(["net_revenue", "customer_id"], ascending=[False, True])
    return out[EXPORT_COLUMNS].reset_index(drop=True)


def export_segment(
    db: Database,
    segment: str,
    *,
    to: str | os.PathLike[str],
    as_of: dt.date | str | None = None,
    include_without_consent: bool = False,
) -> int:
    """Write the customers of ``segment`` (see :func:`segment_members`) to the CSV file ``to``.

    Returns the number of customers written. Raises ValueError with a plain message for an
    unknown segment, a malformed date, an empty store or a folder that does not exist.
    """
    path = Path(to)
    if not path.parent.exists():
        raise ValueError(f"the folder {path.parent} does not exist")
    members = segment_members(db, segment, as_of=as_of, include_without_consent=include_without_consent)
    write_safe_csv(members, path)
    return len(members)


def exportable_counts(db: Database, rfm: pd.DataFrame) -> pd.DataFrame:
    """Per segment (all ten, best first): customers, with an e-mail, and with e-mail and consent.

    ``rfm`` is :func:`crm_helpers.analyses.segmentation.rfm_table`; the last column is what
    :func:`export_segment` writes by default.
    """
    contacts = query_df(db, "SELECT customer_id, email, consent_marketing FROM customers")
    joined = rfm[["customer_id", "segment"]].merge(contacts, on="customer_id", how="left")
    has_email = joined["email"].fillna("").astype(str).str.strip() != ""
    consent = pd.to_numeric(joined["consent_marketing"], errors="coerce").fillna(0) == 1
    frame = pd.DataFrame({"segment": joined["segment"], "customers": 1, "with_email": has_email.astype(int),
                          "exportable": (has_email & consent).astype(int)})
    table = frame.groupby("segment").sum().reindex(list(SEGMENT_ORDER), fill_value=0)
    return table.rename_axis("segment").reset_index()
