"""The importer: formats people's files come in, upserts, and every bad-input case named in the spine issue.

Each rejection test checks two things: the message names the file, row, column and reason, and
the store is exactly as it was before (same rows, nothing in the import log).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from crm_helpers.ingest.table_import import ImportRejected, import_file
from crm_helpers.store.connection import memory_db, table_counts

CRM = str(Path(sys.executable).with_name("crm"))


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def _snapshot(db) -> dict:
    """Everything a failed import must leave untouched."""
    counts = table_counts(db)
    counts["import_log"] = db.table("import_log").count
    counts["rows"] = {t: sorted(map(tuple, db.execute(f"SELECT * FROM {t}").fetchall()), key=repr)
                      for t in ("customers", "orders", "feedback")}
    return counts


@pytest.fixture
def db():
    """A store with two customers and two products."""
    db = memory_db()
    db.table("customers").insert_all([
        {"customer_id": "C1", "name": "Ada", "email": "ada@example.com"},
        {"customer_id": "C2", "name": "Bo", "email": "bo@example.com"},
    ])
    db.table("products").insert_all([
        {"product_id": "P1", "name": "Tea", "unit_price": 10.0},
        {"product_id": "P2", "name": "Pot", "unit_price": 30.0},
    ])
    return db


# ------------------------------------------------------------------------ upserts and matching
def test_reimporting_the_same_file_changes_nothing(db, tmp_path):
    f = _write(tmp_path / "orders.csv", "order_id,customer_id,order_date,amount,status\n"
                                        "O1,C1,2026-01-05,10,paid\nO2,C2,2026-01-06,20.5,paid\n")
    first = import_file(db, "orders", path=f)
    assert (first.inserted, first.updated, first.unchanged) == (2, 0, 0)
    again = import_file(db, "orders", path=f)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
    assert db.table("orders").count == 2


def test_an_updated_export_updates_only_the_rows_it_changed(db, tmp_path):
    import_file(db, "orders", path=_write(tmp_path / "a.csv", "order_id,customer_id,order_date,amount,status\n"
                                                         "O1,C1,2026-01-05,10,paid\nO2,C2,2026-01-06,20,paid\n"))
    result = import_file(db, "orders", path=_write(tmp_path / "b.csv", "order_id,customer_id,order_date,amount,status\n"
                                                                  "O1,C1,2026-01-05,10,refunded\nO2,C2,2026-01-06,20,paid\n"
                                                                  "O3,C2,2026-02-01,5,paid\n"))
    assert (result.inserted, result.updated, result.unchanged) == (1, 1, 1)
    assert db.table("orders").get("O1")["status"] == "refunded"


def test_customers_without_id_are_matched_on_normalized_email_and_duplicates_merged(db, tmp_path):
    f = _write(tmp_path / "customers.csv",
               "Name,E-mail,Phone\n"
               "Ada Lovelace,  ADA@Example.com ,+44 1\n"      # known customer C1, messy e-mail
               "Cy New,cy@example.com,\n"
               "Cy New,CY@example.com,+1 555 0100\n")         # same person twice in one file
    result = import_file(db, "customers", path=f)
    assert result.merged == 1
    assert (result.inserted, result.updated) == (1, 1)
    assert db.table("customers").get("C1")["name"] == "Ada Lovelace"
    rows = db.execute("SELECT customer_id, email, phone FROM customers WHERE email = 'cy@example.com'").fetchall()
    assert len(rows) == 1 and rows[0][2] == "+1 555 0100"  # later non-empty value wins
    again = import_file(db, "customers", path=f)
    assert (again.inserted, again.updated) == (0, 0)


def test_a_row_matched_by_email_to_another_rows_id_shares_its_clash_with_the_store(db, tmp_path):
    """Row 3 has only Ada's e-mail, row 4 gives it to C2; the store has it on C1. Both rows are bad
    (row 3 took C2 from row 4): neither may move Ada's e-mail to C2, and undo takes the rest back."""
    from crm_helpers.store.undo import undo_import

    before = db.execute("SELECT customer_id, email FROM customers ORDER BY customer_id").fetchall()
    c1 = db.table("customers").get("C1")["email"]
    f = _write(tmp_path / "customers.csv", f"customer_id,email,name\nC3,,Cy Again\n,{c1.upper()},\nC2,{c1},\n")
    result = import_file(db, "customers", path=f, skip_bad_rows=True)
    assert sorted((e.row, e.reason) for e in result.errors) == [(3, "already belongs to customer C1"),
                                                                  (4, "already belongs to customer C1")]
    assert db.table("customers").get("C1")["email"] == c1 and db.table("customers").get("C2")["email"] != c1
    undo_import(db, result.batch_id)
    assert db.execute("SELECT customer_id, email FROM customers ORDER BY customer_id").fetchall() == before


# ---------------------------------------------------------------------------- file formats
@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "gb18030"])
def test_chinese_headers_in_common_encodings(db, tmp_path, encoding):
    f = _write(tmp_path / "orders.csv", "订单号,客户编号,日期,金额,状态\nO9,C1,2026年3月4日,\"￥1,288.50\",paid\n", encoding)
    result = import_file(db, "orders", path=f)
    assert result.inserted == 1
    row = db.table("orders").get("O9")
    assert (row["customer_id"], row["order_date"], row["amount"]) == ("C1", "2026-03-04", 1288.5)


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_european_numbers_and_other_delimiters(db, tmp_path, delimiter):
    lines = ["Order Number", "Customer ID", "Order Date", "Total", "status"], \
            ["O1", "C1", "31.01.2026", "1.234,56 €", "paid"], ["O2", "C2", "05.02.2026", "$7", "paid"]
    f = _write(tmp_path / "orders.csv", "\n".join(delimiter.join(r) for r in lines) + "\n")
    import_file(db, "orders", path=f)
    assert db.table("orders").get("O1")["amount"] == pytest.approx(1234.56)
    assert db.table("orders").get("O1")["order_date"] == "2026-01-31"
    assert db.table("orders").get("O2")["order_date"] == "2026-02-05"  # decided for the whole file: day first


def test_excel_serial_dates_and_xlsx(db, tmp_path):
    path = tmp_path / "orders.xlsx"
    pd.DataFrame({"Order ID": ["X1", "X2"], "customer_id": ["C1", "C2"], "Order Date": [46027, 46028],
                  "Total": [12.5, 30], "status": ["paid", "cancelled"]}).to_excel(path, index=False)
    result = import_file(db, "orders", path=path)
    assert result.inserted == 2
    assert db.table("orders").get("X1")["order_date"] == "2026-01-05"  # Excel serial 46027


def test_explicit_mapping_and_invalid_map_target(db, tmp_path):
    f = _write(tmp_path / "c.csv", "Kundennummer,Vorname,Mail\nK7,Eva,eva@example.com\n")
    import_file(db, "customers", path=f, mapping={"Kundennummer": "customer_id", "Vorname": "name", "Mail": "email"})
    assert db.table("customers").get("K7")["email"] == "eva@example.com"
    with pytest.raises(ImportRejected, match="--map target shoe_size is not a column of customers"):
        import_file(db, "customers", path=f, mapping={"Vorname": "shoe_size"})


# ------------------------------------------------------------------------------ rejections
BAD_FILES = {
    "unknown customer": ("orders", "order_id,customer_id,order_date,amount,status\nO1,C1,2026-01-05,10,paid\n"
                                   "O2,C404,2026-01-05,10,paid\n", r"row 3, column customer_id: 'C404' unknown customer"),
    "impossible date": ("orders", "order_id,customer_id,order_date,amount,status\nO1,C1,2026-02-30,10,paid\n",
                        r"row 2, column order_date: '2026-02-30' impossible date"),
    "not a number": ("orders", "order_id,customer_id,order_date,amount,status\nO1,C1,2026-01-05,ten,paid\n",
                     r"row 2, column amount: 'ten' not a number"),
    "NPS out of range": ("feedback", "feedback_id,customer_id,submitted_at,nps\nF1,C1,2026-01-05,9\nF2,C2,2026-01-05,11\n",
                         r"row 3, column nps: '11' out of range 0 to 10"),
    "status not allowed": ("orders", "order_id,customer_id,order_date,amount,status\nO1,C1,2026-01-05,10,shipped\n",
                           r"row 2, column status: 'shipped' not one of paid, refunded, cancelled"),
    "missing required column": ("orders", "order_id,customer_id,amount\nO1,C1,10\n",
                                r"missing required column order_date for orders"),
    "ambiguous day/month": ("orders", "order_id,customer_id,order_date,amount,status\nO1,C1,03/04/2026,10,paid\n",
                            r"could be 3 April or 4 March.*--dayfirst"),
    "empty file": ("orders", "", r"bad\.csv: the file is empty"),
    "header only": ("orders", "order_id,customer_id,order_date,amount,status\n", r"only a header row"),
    "unclosed quote": ("orders", 'order_id,customer_id,order_date,amount,status\nO1,C1,2026-01-05,"10,paid\n',
                       r"malformed CSV.*unclosed quote"),
}


@pytest.mark.parametrize("case", BAD_FILES, ids=list(BAD_FILES))
def test_bad_input_is_rejected_with_a_clear_message_and_the_store_unchanged(db, tmp_path, case):
    table, text, message = BAD_FILES[case]
    before = _snapshot(db)
    with pytest.raises(ImportRejected, match=message) as info:
        import_file(db, table, path=_write(tmp_path / "bad.csv", text))
    assert "bad.csv" in str(info.value)
    assert _snapshot(db) == before


def test_skip_bad_rows_writes_the_good_ones_and_the_rejects_with_reasons(db, tmp_path):
    f = _write(tmp_path / "fb.csv", "feedback_id,customer_id,submitted_at,nps\nF1,C1,2026-01-05,9\n"
                                    "F2,C2,2026-01-05,11\nF3,C9,2026-01-06,3\n")
    result = import_file(db, "feedback", path=f, skip_bad_rows=True)
    assert (result.inserted, result.rejected) == (1, 2)
    rejects = pd.read_csv(result.rejects_path)
    assert list(rejects["row"]) == [3, 4]
    assert "out of range" in rejects["reasons"][0] and "unknown customer" in rejects["reasons"][1]
    assert (result.rejects_path.stat().st_mode & 0o777) == 0o600


def test_dry_run_counts_but_writes_nothing(db, tmp_path):
    before = _snapshot(db)
    result = import_file(db, "orders", path=_write(tmp_path / "o.csv", "order_id,customer_id,order_date,amount,status\n"
                                                                  "O1,C1,2026-01-05,10,paid\n"), dry_run=True)
    assert result.inserted == 1 and _snapshot(db) == before


def test_create_missing_customers(db, tmp_path):
    f = _write(tmp_path / "o.csv", "order_id,customer_id,order_date,amount,status\nO1,NEW1,2026-01-05,10,paid\n")
    result = import_file(db, "orders", path=f, create_missing_customers=True)
    assert result.created_customers == 1 and db.table("customers").get("NEW1")


def test_cli_reports_a_bad_file_without_a_traceback(tmp_path):
    store = tmp_path / "crm.db"
    subprocess.run([CRM, "init", "--db", str(store)], check=True, capture_output=True)
    bad = _write(tmp_path / "orders.csv", "order_id,customer_id,order_date,amount,status\nO1,C404,2026-01-05,10,paid\n")
    proc = subprocess.run([CRM, "import", "orders", str(bad), "--db", str(store)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "orders.csv: 1 bad row; nothing was imported" in proc.stderr
    assert "row 2, column customer_id: 'C404' unknown customer" in proc.stderr
    assert "Traceback" not in proc.stderr
