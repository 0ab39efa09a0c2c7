"""Segment export for an e-mail tool: consent, formula injection, permissions, errors, the CLI."""

from __future__ import annotations

import csv
import datetime as dt
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from crm_helpers.analyses.segment_export import EXPORT_COLUMNS, export_segment, segment_members
from crm_helpers.analyses.features import customer_features
from crm_helpers.analyses.segmentation import rfm_table
from crm_helpers.store.connection import memory_db

CRM = str(Path(sys.executable).with_name("crm"))


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def book():
    """Seven buyers (segments by hand in test_fixture_segments); c6 has no e-mail, c7 no consent."""
    db = memory_db()
    people = [
        ("c1", "Ann", "ann@example.com", 1), ("c2", "Ben", "ben@example.com", 1),
        ("c3", "Cy", "cy@example.com", 1), ("c4", "Dee", "dee@example.com", 1),
        ("c5", '=HYPERLINK("http://evil.example")', "eve@example.com", 1),
        ("c6", "Fay", None, 1), ("c7", "Gus", "gus@example.com", 0),
    ]
    db.table("customers").insert_all(
        [{"customer_id": c, "name": n, "email": e, "consent_marketing": k} for c, n, e, k in people])
    # customer, days before 2026-10-31 of the last order, number of paid orders (a week apart)
    plan = [("c1", 1, 10), ("c2", 10, 8), ("c3", 100, 1), ("c4", 200, 2), ("c5", 300, 12), ("c6", 290, 12),
            ("c7", 250, 2)]
    orders = [
        {"order_id": f"{cid}-{j}", "customer_id": cid, "order_date": _days_before(days + 7 * j),
         "amount": 10.0 * (j + 1), "status": "paid"}
        for cid, days, n in plan for j in range(n)
    ]
    db.table("orders").insert_all(orders)
    return db


def _days_before(days: int) -> str:
    return (dt.date(2026, 10, 31) - dt.timedelta(days=days)).isoformat()


def test_fixture_segments(book):
    # mid-rank percentiles of 7: recency c5 0.5/7 -> R1, c6 1.5/7 -> R2, ... c1 6.5/7 -> R5;
    # F: one order (c3) is F 1; the six repeat buyers are scored 2-5 among themselves (fourths):
    # c4 and c7 (2 orders) share (0 + 2/2)/6 = 0.17 -> F2, the two 12-order customers (4 + 2/2)/6 = 0.83 -> F5
    rfm = rfm_table(customer_features(book, "2026-10-31")).set_index("customer_id")
    assert rfm["r_score"].tolist() == [5, 4, 4, 3, 1, 2, 2]
    assert rfm["f_score"].tolist() == [4, 3, 1, 2, 5, 5, 2]
    assert rfm["segment"].tolist() == ["Champions", "Potential Loyalists", "Promising", "About to Sleep",
                                       "Can't Lose Them", "Can't Lose Them", "Hibernating"]


def test_export_honours_consent_and_neutralizes_formulas(book, tmp_path):
    target = tmp_path / "cant_lose.csv"
    n = export_segment(book, "Can't Lose Them", to=target, as_of="2026-10-31")
    rows = _read(target)
    assert n == len(rows) == 1, "c6 has no e-mail address"
    assert list(rows[0]) == EXPORT_COLUMNS
    assert rows[0]["customer_id"] == "c5" and rows[0]["name"].startswith("'=HYPERLINK")
    assert rows[0]["orders"] == "12" and rows[0]["consent_marketing"] == "1"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_customers_without_consent_only_on_request(book, tmp_path):
    assert export_segment(book, "hibernating", to=tmp_path / "a.csv", as_of="2026-10-31") == 0
    assert _read(tmp_path / "a.csv") == []  # a header-only file, no one to e-mail
    n = export_segment(book, "Hibernating", to=tmp_path / "b.csv", as_of="2026-10-31", include_without_consent=True)
    rows = _read(tmp_path / "b.csv")
    assert n == 1 and rows[0]["customer_id"] == "c7" and rows[0]["consent_marketing"] == "0"


def test_default_date_is_the_last_order(book):
    members = segment_members(book, "champions")  # as of 2026-10-30, the day of c1's last order
    assert members["customer_id"].tolist() == ["c1"] and members.loc[0, "recency_days"] == 0


def test_errors_are_plain(book, tmp_path):
    with pytest.raises(ValueError, match="unknown segment 'VIP'.*At Risk"):
        export_segment(book, "VIP", to=tmp_path / "x.csv")
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        export_segment(book, "At Risk", to=tmp_path / "x.csv", as_of="last week")
    with pytest.raises(ValueError, match="does not exist"):
        export_segment(book, "At Risk", to=tmp_path / "missing" / "x.csv")
    with pytest.raises(ValueError, match="no orders yet"):
        export_segment(memory_db(), "At Risk", to=tmp_path / "x.csv")


def test_cli_exports_the_demo_segment(demo_db_path, tmp_path):
    target = tmp_path / "at_risk.csv"
    proc = subprocess.run([CRM, "export", "segment", "At Risk", "--db", str(demo_db_path), "--to", str(target),
                           "--as-of", "2026-10-31"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rows = _read(target)
    assert rows and f"{len(rows)} customers of 'At Risk'" in proc.stdout
    assert {r["segment"] for r in rows} == {"At Risk"} and {r["consent_marketing"] for r in rows} == {"1"}
    bad = subprocess.run([CRM, "export", "segment", "Whales", "--db", str(demo_db_path), "--to", str(target)],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "Champions" in bad.stderr and "Traceback" not in bad.stderr
