"""A large file is imported a chunk at a time inside one transaction: the store ends as if the
whole file had been imported at once (``chunk_rows`` small here to make a few rows several chunks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_helpers.importing import ImportRejected, import_file
from crm_helpers.store import memory_db
from crm_helpers.undo import Packer, pack, table_items, undo_import, unpack

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
    one = import_file(whole, "orders", f)
    chunked = import_file(db, "orders", f, chunk_rows=2)
    assert (chunked.inserted, chunked.updated, chunked.unchanged) == (one.inserted, 0, 0) == (9, 0, 0)
    assert _orders(db) == _orders(whole)
    assert _orders(db)[3] == ("O03", "C1", "2026-01-04", 13.5, 0.0, "paid")
    again = import_file(db, "orders", f, chunk_rows=4)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 9)


def test_a_key_met_again_in_a_later_chunk_is_merged_and_undo_takes_it_all_back(db, tmp_path):
    lines = [*LINES[:4], "O01,C2,2026-01-02,99,refunded"]  # O01 again, four rows later
    result = import_file(db, "orders", _file(tmp_path, lines), chunk_rows=2)
    assert (result.inserted, result.merged) == (4, 1)
    assert dict((r[0], r[3:]) for r in _orders(db))["O01"] == (99.0, 99.0, "refunded")
    undo_import(db, result.batch_id)
    assert _orders(db) == []


def test_an_update_in_a_later_chunk_keeps_the_row_as_it_was_before_for_undo(db, tmp_path):
    import_file(db, "orders", _file(tmp_path, LINES))
    before = _orders(db)
    changed = [*LINES[:7], "O07,C2,2026-01-08,1.25,paid", LINES[8]]
    result = import_file(db, "orders", _file(tmp_path, changed, "changed.csv"), chunk_rows=3)
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 8)
    assert _orders(db)[7][3] == 1.25
    undo_import(db, result.batch_id)
    assert _orders(db) == before


def test_a_bad_row_in_the_last_chunk_leaves_the_store_as_it_was(db, tmp_path):
    f = _file(tmp_path, [*LINES, "O99,C1,2026-02-30,5,paid"])
    with pytest.raises(ImportRejected, match=r"row 11, column order_date: '2026-02-30' impossible date"):
        import_file(db, "orders", f, chunk_rows=2)
    assert _orders(db) == [] and db.table("import_log").count == 0


def test_day_month_order_is_decided_by_a_date_in_a_later_chunk(db, tmp_path):
    lines = ["A1,C1,03/04/2026,10,paid", "A2,C1,05/04/2026,10,paid", "A3,C2,07/04/2026,10,paid",
             "A4,C2,25/04/2026,10,paid"]  # only the last says the day comes first
    import_file(db, "orders", _file(tmp_path, lines), chunk_rows=2)
    assert [r[2] for r in _orders(db)] == ["2026-04-03", "2026-04-05", "2026-04-07", "2026-04-25"]


def test_skip_bad_rows_over_chunks_writes_the_good_ones_and_lists_the_bad(db, tmp_path):
    lines = [*LINES[:3], "B1,C9,2026-01-05,5,paid", *LINES[3:6], "B2,C1,soon,5,paid"]
    result = import_file(db, "orders", _file(tmp_path, lines), chunk_rows=3, skip_bad_rows=True)
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
