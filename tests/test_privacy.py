"""The share pack's masker on small strings: what it hides, what it keeps, and that its pseudonyms
are stable within a pack and keyed by its secret. Fast: no store, no rendered pack."""

from __future__ import annotations

import html

from sqlite_utils import Database

from crm_helpers.report.privacy import HIDDEN_TEXT, Masker
from crm_helpers.store.connection import migrate_db

SECRET = b"0123456789abcdef"


def _masker() -> Masker:
    masker = Masker(secret=SECRET)
    masker.add("Ada Lovelace", "Customer A1")
    masker.add("ada@example.org", "customer-a1@masked.invalid")
    masker.add("Anna O'Brien & Sons", "Customer B2")
    return masker


def test_known_names_and_emails_are_replaced_by_their_pseudonyms():
    text = _masker().mask("Call Ada Lovelace (ada@example.org) about the order.")
    assert text == "Call Customer A1 (customer-a1@masked.invalid) about the order."


def test_the_html_escaped_form_of_a_value_is_masked_too():
    page = f"<td>{html.escape('Anna O' + chr(39) + 'Brien & Sons')}</td>"
    assert "Brien" not in _masker().mask(page) and "Customer B2" in _masker().mask(page)


def test_the_longest_known_value_wins_over_a_value_it_contains():
    masker = Masker(secret=SECRET)
    masker.add("Lovelace", "Surname X")
    masker.add("Ada Lovelace", "Customer A1")
    assert masker.mask("Ada Lovelace and Lovelace") == "Customer A1 and Surname X"


def test_unknown_emails_and_international_phone_numbers_are_hidden_by_their_pattern():
    text = Masker(secret=SECRET).mask("Write to bob.smith+shop@mail.example.co.uk or call +44 20 7946 0958.")
    assert "bob.smith" not in text and "7946" not in text
    assert "hidden@masked.invalid" in text and "+00 ••• ••••" in text


def test_already_masked_emails_and_plain_numbers_are_left_alone():
    masker = _masker()
    assert masker.mask("customer-a1@masked.invalid") == "customer-a1@masked.invalid"
    assert masker.mask("Revenue 12,345.60 EUR from 120 orders on 2026-10-31") == (
        "Revenue 12,345.60 EUR from 120 orders on 2026-10-31")


def test_free_text_too_short_to_be_personal_is_not_learnt():
    masker = Masker(secret=SECRET)
    masker.add("ok", HIDDEN_TEXT)  # a comment "ok" is anybody's
    assert masker.mask("ok, the book is ok") == "ok, the book is ok"
    assert masker.mask("") == ""


def test_a_short_latin_name_is_masked_as_a_whole_word_never_inside_another():
    masker = Masker(secret=SECRET)
    masker.add("Al", "Customer Z9", min_length=2)
    masker.add("Li", "Customer Y8", min_length=2)
    assert masker.mask("Also Al, Lisa and Li; Al's order") == (
        "Also Customer Z9, Lisa and Customer Y8; Customer Z9's order")


def test_two_and_three_character_chinese_names_are_masked_wherever_they_stand():
    masker = Masker(secret=SECRET)
    masker.add("王芳", "Customer C1", min_length=2)
    masker.add("李小龙", "Customer C2", min_length=2)
    text = masker.mask("客户王芳的订单；李小龙：发货太慢 (王芳)")
    assert "王芳" not in text and "李小龙" not in text
    assert text == "客户Customer C1的订单；Customer C2：发货太慢 (Customer C1)"


def test_names_with_quotes_are_masked_in_every_html_escaped_form():
    masker = Masker(secret=SECRET)
    masker.add("Pat O'Brien", "Customer Q1", min_length=2)
    masker.add('Jo "JJ" Smith', "Customer Q2", min_length=2)
    forms = ["Pat O'Brien", "Pat O&#x27;Brien", "Pat O&#39;Brien", 'Jo "JJ" Smith', "Jo &quot;JJ&quot; Smith",
             "Jo &#34;JJ&#34; Smith"]
    masked = masker.mask(" | ".join(forms))
    assert "Brien" not in masked and "JJ" not in masked, masked
    assert masked.count("Customer Q1") == 3 and masked.count("Customer Q2") == 3


def test_a_csv_is_masked_cell_by_cell_quoted_names_included_and_stays_safe(tmp_path):
    import csv
    import os
    import stat

    from crm_helpers.report.share import mask_csv

    masker = Masker(secret=SECRET)
    for name, tag in [('Jo "JJ" Smith', "Customer Q2"), ("Pat O'Brien", "Customer Q1"), ("王芳", "Customer C1"),
                      ("Smith, Anna", "Customer Q3")]:
        masker.add(name, tag, min_length=2)
    source = tmp_path / "follow_up_queue.csv"
    with source.open("w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle).writerows([["customer_id", "name", "note"], ["C1", 'Jo "JJ" Smith', "=1+1"],
                                      ["C2", "Pat O'Brien", "王芳 called"], ["C3", "Smith, Anna", ""]])
    target = mask_csv(source, tmp_path / "share.csv", masker=masker)
    data = target.read_bytes()
    for name in ("JJ", "Brien", "王芳", "Anna"):
        assert name.encode() not in data, name
    rows = list(csv.reader(data.decode("utf-8-sig").splitlines()))
    assert rows[1:] == [["C1", "Customer Q2", "'=1+1"], ["C2", "Customer Q1", "Customer C1 called"],
                        ["C3", "Customer Q3", ""]]
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600


def test_pseudonyms_are_stable_for_one_secret_and_differ_between_secrets():
    one, same, other = Masker(secret=SECRET), Masker(secret=SECRET), Masker(secret=b"another secret!!")
    assert one.pseudonym("C001") == same.pseudonym("C001") != other.pseudonym("C001")
    assert one.pseudonym("C001") != one.pseudonym("C002")
    assert len(one.pseudonym("C001")) == 6 and one.pseudonym("C001").isupper()


def test_from_db_learns_names_emails_phones_notes_and_free_text():
    db = Database(memory=True)
    migrate_db(db)
    db.table("customers").insert({"customer_id": "C001", "name": "Grace Hopper", "email": "grace@navy.example",
                                  "phone": "555 0100 222", "notes": "prefers calls after five"})
    masker = Masker.from_db(db, secret=SECRET)
    tag = masker.pseudonym("C001")
    text = masker.mask("Grace Hopper, grace@navy.example, 555 0100 222: prefers calls after five")
    assert text == f"Customer {tag}, customer-{tag.lower()}@masked.invalid, +00 ••• ••••: {HIDDEN_TEXT}"


def test_names_sharing_a_beginning_each_mask_as_the_longest_whole_word():
    masker = Masker(secret=SECRET)
    for name, tag in [("Al", "[1]"), ("Alice", "[2]"), ("Alice Smith", "[3]"), ("Ali", "[4]"), ("王芳", "[5]"),
                      ("王芳芳", "[6]")]:
        masker.add(name, tag, min_length=2)
    text = "Alice Smith, Alice Smithers, Alicia, Ali, Al. Alfred 王芳芳与王芳"
    assert masker.mask(text) == "[3], [2] Smithers, Alicia, [4], [1]. Alfred [6]与[5]"
