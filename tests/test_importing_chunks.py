"""A large file is imported a chunk at a time inside one transaction: the store ends as if the
whole file had been imported at once (``chunk_rows`` small here to make a few rows several chunks).
A known tool's export (``crm import FILE``) is cut between orders, so an order's lines meet."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_helpers.ingest.table_import import ImportRejected, import_file
from crm_helpers.ingest.export_import import import_export
from crm_helpers.store.connection import memory_db
from crm_helpers.store.undo import Packer, pack, table_items, undo_import, unpack

HEADER = "order_id,customer_id,order_date,amount,status\n"


@pytest.fixture
def db():
    db = memory_db()
    db.table("customers").insert_all([{"customer_id": f"C{k}", "email": f"c{k}@example.com"} for k in (1, 2, 3)])
    return db


def _orders(db) -> list[tuple]:
    return db.execute("SELECT order_id, customer_id, order_date, amount, refunded_amount, status FROM orders "
                      "ORDER BY order_id").fetchall()


def _file(tmp_path: Path, lines: list[str], name: str = "orders.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


LINES = [f"O{k:02d},C{k % 3 + 1},2026-01-{k + 1:02d},{10 + k}.50,paid" for k in range(9)]


def test_chunks_store_what_one_pass_stores_and_reimport_is_unchanged(db, tmp_path):
    whole = memory_db()
    whole.table("customers").insert_all([{"customer_id": f"C{k}"} for k in (1, 2, 3)])
    f = _file(tmp_path, LINES)
    one = import_file(whole, "orders", path=f)
    chunked = import_file(db, "orders", path=f, chunk_rows=2)
    assert (chunked.inserted, chunked.updated, chunked.unchanged) == (one.inserted, 0, 0) == (9, 0, 0)
    assert _orders(db) == _orders(whole)
    assert _orders(db)[3] == ("O03", "C1", "2026-01-04", 13.5, 0.0, "paid")
    again = import_file(db, "orders", path=f, chunk_rows=4)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 9)


def test_a_key_met_again_in_a_later_chunk_is_merged_and_undo_takes_it_all_back(db, tmp_path):
    lines = [*LINES[:4], "O01,C2,2026-01-02,99,refunded"]  # O01 again, four rows later
    result = import_file(db, "orders", path=_file(tmp_path, lines), chunk_rows=2)
    assert (result.inserted, result.merged) == (4, 1)
    assert dict((r[0], r[3:]) for r in _orders(db))["O01"] == (99.0, 99.0, "refunded")
    undo_import(db, result.batch_id)
    assert _orders(db) == []


def test_an_update_in_a_later_chunk_keeps_the_row_as_it_was_before_for_undo(db, tmp_path):
    import_file(db, "orders", path=_file(tmp_path, LINES))
    before = _orders(db)
    changed = [*LINES[:7], "O07,C2,2026-01-08,1.25,paid", LINES[8]]
    result = import_file(db, "orders", path=_file(tmp_path, changed, "changed.csv"), chunk_rows=3)
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 8)
    assert _orders(db)[7][3] == 1.25
    undo_import(db, result.batch_id)
    assert _orders(db) == before


def test_a_bad_row_in_the_last_chunk_leaves_the_store_as_it_was(db, tmp_path):
    f = _file(tmp_path, [*LINES, "O99,C1,2026-02-30,5,paid"])
    with pytest.raises(ImportRejected, match=r"row 11, column order_date: '2026-02-30' impossible date"):
        import_file(db, "orders", path=f, chunk_rows=2)
    assert _orders(db) == [] and db.table("import_log").count == 0


def test_day_month_order_is_decided_by_a_date_in_a_later_chunk(db, tmp_path):
    lines = ["A1,C1,03/04/2026,10,paid", "A2,C1,05/04/2026,10,paid", "A3,C2,07/04/2026,10,paid",
             "A4,C2,25/04/2026,10,paid"]  # only the last says the day comes first
    import_file(db, "orders", path=_file(tmp_path, lines), chunk_rows=2)
    assert [r[2] for r in _orders(db)] == ["2026-04-03", "2026-04-05", "2026-04-07", "2026-04-25"]


def test_skip_bad_rows_over_chunks_writes_the_good_ones_and_lists_the_bad(db, tmp_path):
    lines = [*LINES[:3], "B1,C9,2026-01-05,5,paid", *LINES[3:6], "B2,C1,soon,5,paid"]
    result = import_file(db, "orders", path=_file(tmp_path, lines), chunk_rows=3, skip_bad_rows=True)
    assert (result.inserted, result.rejected) == (6, 2)
    rejects = result.rejects_path.read_text(encoding="utf-8-sig").splitlines()
    assert [r.split(",")[0] for r in rejects[1:]] == ["5", "9"]
    assert "unknown customer" in rejects[1] and "soon" in rejects[2]


def test_the_packer_writes_what_pack_writes_and_compact_rows_come_back_as_records():
    packer = Packer()
    packer.write('{"keys": ')
    packer.array_start()
    packer.items(table_items([("O1",), ("O2",)]))
    packer.items(b"")
    packer.items(table_items([("O3",)]))
    packer.write('], "created_customers": []}')
    assert unpack(packer.close()) == unpack(pack({"keys": [["O1"], ["O2"], ["O3"]], "created_customers": []}))
    rows = Packer()
    rows.write('{"columns": ["order_id", "amount"], "rows": [')
    rows.items(table_items([("O1", 1.5), ("O2", None)]))
    rows.write("]}")
    assert unpack(rows.close()) == [{"order_id": "O1", "amount": 1.5}, {"order_id": "O2", "amount": None}]


# ------------------------------------------------------------------ a known tool's export, in chunks
SOURCES = Path(__file__).parent / "fixtures" / "sources"
SHOPIFY = SOURCES / "shopify_orders_export.csv"
SHOPIFY_HEADER = ("Name,Email,Financial Status,Paid at,Created at,Currency,Total,Lineitem quantity,Lineitem name,"
                  "Lineitem price,Lineitem sku,Billing Name\n")


def _store(db) -> dict[str, list[tuple]]:
    return {t: db.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
            for t in ("customers", "products", "orders", "order_items")}


def _shopify(tmp_path: Path, lines: list[str]) -> Path:
    """A Shopify orders export of ``lines`` (order fields on an order's first line only)."""
    path = tmp_path / "orders_export.csv"
    path.write_text(SHOPIFY_HEADER + "".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


@pytest.mark.parametrize("chunk_rows", [2, 3, 5])
def test_an_export_in_chunks_stores_what_one_pass_stores_and_undo_takes_it_all_back(chunk_rows):
    whole, db = memory_db(), memory_db()
    one = import_export(whole, SHOPIFY)
    result = import_export(db, SHOPIFY, chunk_rows=chunk_rows)
    assert _store(db) == _store(whole)
    assert {t: (r.inserted, r.updated) for t, r in result.tables.items()} == \
        {t: (r.inserted, r.updated) for t, r in one.tables.items()}
    assert result.guest_orders == one.guest_orders == 1
    # #1001's two lines are cut apart by a chunk of 2 or 3 rows: still one order of 33.00 with two items
    assert db.execute("SELECT amount, status FROM orders WHERE order_id = '#1001'").fetchone() == (33.0, "paid")
    assert db.execute("SELECT count(*) FROM order_items WHERE order_id = '#1001'").fetchone()[0] == 2
    again = import_export(db, SHOPIFY, chunk_rows=chunk_rows)
    assert all((r.inserted, r.updated) == (0, 0) for r in again.tables.values()) and again.batch_ids == []
    undo_import(db, result.batch_ids[0])
    assert all(rows == [] for rows in _store(db).values())


def test_an_order_straddling_a_chunk_edge_gets_its_first_lines_fields_and_sums_its_product(tmp_path):
    lines = ["#1,ann@example.com,paid,,2026-03-02 10:00:00 +0100,EUR,30.00,1,Mug,10.00,MUG,Ann Lee",
             "#2,bo@example.com,paid,,2026-03-03 10:00:00 +0100,EUR,5.00,1,Tea,5.00,TEA,Bo Chen",
             "#2,,,,,,,,,,,",  # a line Shopify writes with nothing of an item: not an item
             "#2,,,,,,,,,,,",
             "#3,ann@example.com,refunded,,2026-03-04 10:00:00 +0100,EUR,40.00,2,Mug,10.00,MUG,Ann Lee",
             "#3,,,,,,,1,Tea,5.00,TEA,",
             "#3,,,,,,,3,Tea,5.00,TEA,"]
    db = memory_db()
    import_export(db, _shopify(tmp_path, lines), chunk_rows=3)  # chunks end inside #2 and inside #3
    orders = db.execute("SELECT order_id, customer_id, order_date, amount, refunded_amount, status FROM orders "
                        "ORDER BY order_id").fetchall()
    ann = db.execute("SELECT customer_id FROM customers WHERE email = 'ann@example.com'").fetchone()[0]
    assert orders[2] == ("#3", ann, "2026-03-04", 40.0, 40.0, "refunded")
    assert orders[0][1] == ann and len(orders) == 3
    assert db.execute("SELECT product_id, quantity FROM order_items WHERE order_id = '#3' ORDER BY 1").fetchall() == \
        [("MUG", 2), ("TEA", 4)]


def test_the_lines_of_an_order_apart_in_the_file_are_refused_over_chunks(tmp_path):
    lines = ["#1,ann@example.com,paid,,2026-03-02,EUR,10.00,1,Mug,10.00,MUG,",
             "#2,bo@example.com,paid,,2026-03-03,EUR,5.00,1,Tea,5.00,TEA,",
             "#3,cy@example.com,paid,,2026-03-04,EUR,5.00,1,Tea,5.00,TEA,",
             "#1,,,,,,,1,Tea,5.00,TEA,"]
    db = memory_db()
    with pytest.raises(ImportRejected, match="orders_export.csv: the lines of order #1 are not next to each other"):
        import_export(db, _shopify(tmp_path, lines), chunk_rows=2)
    assert all(rows == [] for rows in _store(db).values())
    import_export(db, _shopify(tmp_path, lines))  # in one chunk they are found and summed
    assert db.execute("SELECT amount FROM orders WHERE order_id = '#1'").fetchone()[0] == 10.0
    assert db.execute("SELECT count(*) FROM order_items WHERE order_id = '#1'").fetchone()[0] == 2


def test_a_bad_line_in_the_last_chunk_of_an_export_leaves_the_store_as_it_was(tmp_path):
    lines = [f"#{k},c{k % 3}@example.com,paid,,2026-03-0{k},EUR,10.00,1,Mug,10.00,MUG," for k in range(1, 8)]
    lines[-1] = lines[-1].replace(",1,Mug,", ",two,Mug,")
    db = memory_db()
    import_export(db, SHOPIFY)
    before, cache = _store(db), db.execute("PRAGMA cache_size").fetchone()
    with pytest.raises(ImportRejected, match=r"(?s)orders_export.csv: 1 bad row.*row 8, column Lineitem quantity: 'two'"):
        import_export(db, _shopify(tmp_path, lines), chunk_rows=3)
    assert _store(db) == before
    assert db.execute("PRAGMA cache_size").fetchone() == cache  # the import's larger page cache is given back


def test_day_month_order_of_an_export_is_decided_by_a_date_in_a_later_chunk(tmp_path):
    lines = [f"#{k},c{k}@example.com,paid,,0{k}/04/2026,EUR,10.00,1,Mug,10.00,MUG," for k in range(1, 6)]
    lines.append("#9,c9@example.com,paid,,25/04/2026,EUR,10.00,1,Mug,10.00,MUG,")
    db = memory_db()
    import_export(db, _shopify(tmp_path, lines), chunk_rows=3)
    assert db.execute("SELECT order_date FROM orders WHERE order_id = '#2'").fetchone()[0] == "2026-04-02"


def test_skip_bad_rows_over_export_chunks_leaves_out_the_whole_order_of_a_bad_line(tmp_path):
    lines = ["#1,ann@example.com,paid,,2026-03-02,EUR,10.00,1,Mug,10.00,MUG,",
             "#2,bo@example.com,paid,,2026-03-03,EUR,15.00,1,Tea,5.00,TEA,",
             "#2,,,,,,,x,Mug,10.00,MUG,",
             "#3,cy@example.com,paid,,2026-03-04,EUR,5.00,1,Tea,5.00,TEA,"]
    path = _shopify(tmp_path, lines)
    db = memory_db()
    result = import_export(db, path, chunk_rows=3, skip_bad_rows=True)
    assert [r[0] for r in db.execute("SELECT order_id FROM orders ORDER BY 1")] == ["#1", "#3"]
    assert result.rejected == 2 and result.rejects_path is not None
    rejects = result.rejects_path.read_text(encoding="utf-8-sig").splitlines()
    assert [r.split(",")[0] for r in rejects[1:]] == ["3", "4"]
