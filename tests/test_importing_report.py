"""The monthly pack on a store filled only from one tool's exports (slow: renders every notebook)."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_helpers.store.periods import latest_complete_month
from crm_helpers.report.runner import render_report
from crm_helpers.ingest.export_import import import_export
from crm_helpers.store.connection import open_db

FIXTURES = Path(__file__).parent / "fixtures" / "sources"


@pytest.mark.slow
@pytest.mark.parametrize("exports", [
    ("shopify_customers_export.csv", "shopify_orders_export.csv"),
    ("stripe_payments.csv",),
], ids=["shopify only", "stripe only"])
def test_the_pack_renders_on_a_store_filled_from_one_tools_exports(tmp_path, exports):
    db_path = tmp_path / "crm.db"
    db = open_db(db_path)
    for name in exports:
        import_export(db, FIXTURES / name)
    period = latest_complete_month(db)
    assert period is not None
    result = render_report(db_path, period, out_dir=tmp_path / "report", jobs=2, progress=False)
    assert result.ok, [(r.name, r.error) for r in result.failed]
    assert result.index.exists()
    assert all((tmp_path / "report" / f"{r.name}.html").exists() for r in result.runs)
