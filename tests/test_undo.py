"""Undoing an import: inserted rows removed, updated rows restored, refused when later changes depend on it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from crm_helpers.ingest import entry
from crm_helpers.ingest.table_import import import_file
from crm_helpers.ingest.export_import import import_export
from crm_helpers.store.schema import TABLES
from crm_helpers.store.connection import memory_db, open_db
from crm_helpers.store.undo import UndoError, list_batches, undo_import

CRM = str(Path(sys.executable).with_name("crm"))
ORDERS_HEADER = "order_id,customer_id,order_date,amount,status\n"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _data(db) -> dict[str, list[tuple]]:
    """Every row of every CRM table (the import bookkeeping left out)."""
    return {t: sorted(map(tuple, db.execute(f"SELECT * FROM {t}").fetchall()), key=repr) for t in TABLES}


@pytest.fixture
def db():
    """Two customers with e-mails, two products, one order."""
    db = memory_db()
    db.table("customers").insert_all([
        {"customer_id": "C1", "name": "Ada", "email": "ada@example.com", "city": "Bern"},
        {"customer_id": "C2", "name": "Bo", "email": "bo@example.com"},
    ])
    db.table("products").insert_all([{"product_id": "P1", "name": "Tea"}, {"product_id": "P2", "name": "Pot"}])
    db.table("orders").insert({"order_id": "O1", "customer_id": "C1", "order_date": "2026-01-02", "amount": 10.0,
                               "status": "paid"})
    return db


def _customers_batch(db, tmp_path) -> int:
    """Updates C1's name and e-mail, inserts C3."""
    f = _write(tmp_path / "customers.csv", "customer_id,name,email\nC1,Ada Lovelace,ada@lovelace.org\n"
                                           "C3,Cy,cy@example.com\nC2,Bo,bo@example.com\n")
    result = import_file(db, "customers", path=f)
    assert (result.inserted, result.updated, result.unchanged) == (1, 1, 1)
    return result.batch_id


def test_undo_removes_inserted_rows_and_restores_updated_ones(db, tmp_path):
    before = _data(db)
    batch = _customers_batch(db, tmp_path)
    assert _data(db) != before
    result = undo_import(db, batch)
    assert (result.deleted, result.restored, result.customers_removed) == (1, 1, 0)
    assert _data(db) == before
    assert list_batches(db).set_index("batch_id").loc[batch, "undone_at"]


def test_undoing_twice_or_an_unknown_batch_is_refused(db, tmp_path):
    batch = _customers_batch(db, tmp_path)
    undo_import(db, batch)
    after = _data(db)
    with pytest.raises(UndoError, match=f"batch {batch} \\(customers.csv\\) was already undone on"):
        undo_import(db, batch)
    with pytest.raises(UndoError, match="there is no import batch 99"):
        undo_import(db, 99)
    assert _data(db) == after


def test_the_file_can_be_imported_again_after_an_undo(db, tmp_path):
    batch = _customers_batch(db, tmp_path)
    undo_import(db, batch)
    again = import_file(db, "customers", path=tmp_path / "customers.csv")
    assert (again.inserted, again.updated) == (1, 1)
    assert db.table("customers").get("C1")["name"] == "Ada Lovelace"


def test_a_later_batch_that_changed_the_rows_must_be_undone_first(db, tmp_path):
    before = _data(db)
    first = import_file(db, "orders", path=_write(tmp_path / "a.csv", ORDERS_HEADER + "O1,C1,2026-01-02,12,paid\n"
                                                                               "O2,C2,2026-01-03,20,paid\n"))
    second = import_file(db, "orders", path=_write(tmp_path / "b.csv", ORDERS_HEADER + "O2,C2,2026-01-03,20,refunded\n"))
    middle = _data(db)
    with pytest.raises(UndoError) as info:
        undo_import(db, first.batch_id)
    message = str(info.value)
    assert f"changed since by import batch {second.batch_id} (b.csv): O2; undo batch {second.batch_id} first" in message
    assert "nothing was changed" in message
    assert _data(db) == middle
    undo_import(db, second.batch_id)
    undo_import(db, first.batch_id)
    assert _data(db) == before


def test_a_hand_edit_since_the_import_blocks_the_undo(db, tmp_path):
    batch = _customers_batch(db, tmp_path)
    entry.update_customer(db, "C3", name="Cyrus")
    edited = _data(db)
    with pytest.raises(UndoError, match=r"1 rows it inserted changed since by hand or from a notebook: C3"):
        undo_import(db, batch)
    assert _data(db) == edited


def test_filling_in_a_column_the_batch_left_empty_blocks_removing_the_row(db, tmp_path):
    batch = _customers_batch(db, tmp_path)
    entry.update_customer(db, "C3", phone="+41 44 000 00 00")  # a column the file did not hold
    with pytest.raises(UndoError, match="rows it inserted changed since by hand"):
        undo_import(db, batch)


def test_a_hand_edit_of_a_column_the_batch_did_not_write_is_kept(db, tmp_path):
    batch = _customers_batch(db, tmp_path)
    entry.update_customer(db, "C1", phone="+41 44 111 11 11")  # C1 was updated by the batch, phone was not
    undo_import(db, batch)
    row = db.table("customers").get("C1")
    assert (row["name"], row["email"], row["city"], row["phone"]) == ("Ada", "ada@example.com", "Bern",
                                                                      "+41 44 111 11 11")


def test_a_row_deleted_since_blocks_the_undo(db, tmp_path):
    batch = _customers_batch(db, tmp_path)
    db.execute("DELETE FROM customers WHERE customer_id = 'C3'")
    with pytest.raises(UndoError, match=r"1 rows it inserted are no longer in the store .*: C3"):
        undo_import(db, batch)


def test_child_rows_of_an_inserted_customer_block_the_undo_until_they_are_undone(db, tmp_path):
    before = _data(db)
    customers = _customers_batch(db, tmp_path)
    orders = import_file(db, "orders", path=_write(tmp_path / "o.csv", ORDERS_HEADER + "O7,C3,2026-02-01,5,paid\n"))
    with pytest.raises(UndoError, match=r"1 orders rows refer to customers this batch inserted \(e.g. C3\)"):
        undo_import(db, customers)
    assert db.table("customers").get("C3")
    undo_import(db, orders.batch_id)
    undo_import(db, customers)
    assert _data(db) == before


def test_customers_created_by_an_orders_import_are_removed_with_it(db, tmp_path):
    before = _data(db)
    f = _write(tmp_path / "o.csv", ORDERS_HEADER + "O8,NEW1,2026-02-01,5,paid\nO9,NEW1,2026-02-02,6,paid\n")
    result = import_file(db, "orders", path=f, create_missing_customers=True)
    undone = undo_import(db, result.batch_id)
    assert (undone.deleted, undone.customers_removed) == (2, 1)
    assert _data(db) == before


def test_a_created_customer_used_since_keeps_the_whole_batch(db, tmp_path):
    f = _write(tmp_path / "o.csv", ORDERS_HEADER + "O8,NEW1,2026-02-01,5,paid\n")
    result = import_file(db, "orders", path=f, create_missing_customers=True)
    entry.log_interaction(db, "NEW1", channel="call", occurred_at="2026-02-03 10:00:00")
    after = _data(db)
    with pytest.raises(UndoError, match=r"1 interactions rows written since refer to customers this batch created"):
        undo_import(db, result.batch_id)
    assert _data(db) == after  # the orders it inserted are back too: one transaction


def test_composite_keys(db, tmp_path):
    db.table("order_items").insert({"order_id": "O1", "product_id": "P1", "quantity": 1, "unit_price": 10.0})
    before = _data(db)
    f = _write(tmp_path / "items.csv", "order_id,product_id,quantity,unit_price\nO1,P1,3,10\nO1,P2,1,30\n")
    result = import_file(db, "order_items", path=f)
    assert (result.inserted, result.updated) == (1, 1)
    undo_import(db, result.batch_id)
    assert _data(db) == before


def test_restoring_a_value_taken_since_by_another_row_is_refused(db, tmp_path):
    batch = _customers_batch(db, tmp_path)  # C1: ada@example.com -> ada@lovelace.org
    entry.add_customer(db, "C9", name="Someone", email="ada@example.com")
    after = _data(db)
    with pytest.raises(UndoError, match="would clash with rows written since"):
        undo_import(db, batch)
    assert _data(db) == after
    assert not list_batches(db).set_index("batch_id").loc[batch, "undone_at"]


def test_list_batches_newest_first_with_undone_at_none_while_standing(db, tmp_path):
    first = _customers_batch(db, tmp_path)
    second = import_file(db, "orders", path=_write(tmp_path / "o.csv", ORDERS_HEADER + "O7,C3,2026-02-01,5,paid\n"))
    undo_import(db, second.batch_id)
    batches = list_batches(db)
    assert list(batches["batch_id"]) == [second.batch_id, first]
    assert batches["undone_at"].iloc[0] and batches["undone_at"].iloc[1] is None
    assert list(batches["table"]) == ["orders", "customers"]


def test_cli_undo_and_status(tmp_path):
    store = tmp_path / "crm.db"
    db = open_db(store)
    db.table("customers").insert({"customer_id": "C1", "name": "Ada"})
    batches = [import_file(db, "orders", path=_write(tmp_path / f"orders{k}.csv", ORDERS_HEADER + f"O{k},C1,2026-01-05,10,paid\n"))
               .batch_id for k in range(2)]
    db.conn.close()
    status = subprocess.run([CRM, "status", "--db", str(store)], capture_output=True, text=True, check=True)
    assert f"batch {batches[0]:>4}" in status.stdout and "orders0.csv: 1 inserted" in status.stdout
    done = subprocess.run([CRM, "undo-import", str(batches[1]), "--db", str(store)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "1 inserted rows removed" in done.stdout
    again = subprocess.run([CRM, "undo-import", str(batches[1]), "--db", str(store)], capture_output=True, text=True)
    assert again.returncode == 1 and "already undone" in again.stderr and "Traceback" not in again.stderr
    status = subprocess.run([CRM, "status", "--db", str(store)], capture_output=True, text=True, check=True)
    assert status.stdout.count("undone") == 1  # only the batch undone, no "undone nan" for the other
    assert open_db(store).table("orders").count == 1


def test_the_inbox_imports_an_undone_file_again(db, tmp_path):
    from crm_helpers.ingest.inbox import import_inbox

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    _write(inbox / "customers.csv", "customer_id,name,email\nC3,Cy,cy@example.com\n")
    assert import_inbox(db, inbox)["status"].tolist() == ["imported"]
    assert import_inbox(db, inbox)["status"].tolist() == ["already imported"]
    undo_import(db, int(list_batches(db)["batch_id"].iloc[0]))
    assert db.table("customers").count == 2
    assert import_inbox(db, inbox)["status"].tolist() == ["imported"]
    assert db.table("customers").get("C3")["name"] == "Cy"
    assert import_inbox(db, inbox)["status"].tolist() == ["already imported"]


def test_a_reimport_that_changes_nothing_leaves_no_batch_and_undo_takes_back_the_real_import(db, tmp_path):
    before = _data(db)
    f = _write(tmp_path / "orders.csv", ORDERS_HEADER + "O2,C2,2026-01-03,20,paid\nO3,C1,2026-01-04,5,paid\n")
    first = import_file(db, "orders", path=f)
    again = import_file(db, "orders", path=f)
    assert (again.unchanged, again.batch_id) == (2, None)
    assert "nothing changed" in again.summary() and "no import batch to undo" in again.summary()
    assert list_batches(db)["batch_id"].tolist() == [first.batch_id]  # the history holds the real import only
    undo_import(db, int(list_batches(db)["batch_id"].iat[0]))
    assert _data(db) == before


def test_an_export_imported_again_unchanged_leaves_no_batch_group():
    db = memory_db()
    export = Path(__file__).parent / "fixtures" / "sources" / "shopify_orders_export.csv"
    first = import_export(db, export)
    again = import_export(db, export)
    assert again.batch_ids == [] and "nothing changed" in again.summary()
    assert sorted(list_batches(db)["batch_id"]) == sorted(first.batch_ids)
    undo_import(db, int(list_batches(db)["batch_id"].iat[0]))  # the newest batch: the whole first import
    assert all(rows == [] for rows in _data(db).values())


# ------------------------------------------------------------------------ one desk entry
def _order_rows(db, order_id):
    return (db.table("orders").get(order_id),
            db.execute("SELECT * FROM order_items WHERE order_id = ? ORDER BY product_id", [order_id]).fetchall())


def _deletion(db, order_id):
    """Delete the order as the desk does and return its EntryRecord (the whole rows, its lines too)."""
    from crm_helpers.store.undo import entry_record, read_row

    rows = [("orders", (order_id,), read_row(db, "orders", key=(order_id,)))]
    rows += [("order_items", (order_id, l["product_id"]), l) for l in entry.order_lines(db, order_id)]
    entry.delete_entry(db, "orders", entry_id=order_id)
    return entry_record(db, "order deleted", rows=rows)


def test_undoing_a_deletion_puts_the_whole_order_back_with_its_lines(db):
    from crm_helpers.store.undo import undo_entry

    db.execute("UPDATE products SET unit_price = 4.5")
    oid = entry.record_order(db, "C2", items=[("P1", 2, None), ("P2", 1, 7.25)], order_date="2026-03-01")
    kept = _order_rows(db, oid)
    record = _deletion(db, oid)
    assert [c.after for c in record.changes] == [None, None, None] and record.changes[0].before == kept[0]
    undo_entry(db, record)
    assert _order_rows(db, oid) == kept


def test_undoing_a_deletion_is_refused_when_the_row_is_back_or_its_customer_erased(db):
    from crm_helpers.store.forget import forget
    from crm_helpers.store.undo import undo_entry

    oid = entry.record_order(db, "C2", items=[("P1", 1, 3.0)], order_date="2026-03-01")
    record = _deletion(db, oid)
    entry.record_order(db, "C2", items=[("P2", 1, 3.0)], order_id=oid, order_date="2026-03-02")
    with pytest.raises(UndoError, match="is in the store again"):
        undo_entry(db, record)
    entry.delete_entry(db, "orders", entry_id=oid)
    forget(db, "C2")
    with pytest.raises(UndoError, match="its customer C2 is no longer in the store"):
        undo_entry(db, record)
    assert db.table("orders").count == 1  # only the fixture's order: nothing put back


def test_a_task_about_an_imported_ticket_blocks_undoing_that_import(db, tmp_path):
    path = _write(tmp_path / "tickets.csv", "ticket_id,customer_id,opened_at,status\nT9,C1,2026-03-01 09:00,open\n")
    batch = import_file(db, "tickets", path=path).batch_id
    entry.add_task(db, "2026-03-20", note="ring back", ticket_id="T9")
    with pytest.raises(UndoError, match="1 tasks rows refer to tickets"):
        undo_import(db, batch)
