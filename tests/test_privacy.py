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


def test_values_too_short_to_be_personal_are_not_learnt():
    masker = Masker(secret=SECRET)
    masker.add("Al", "Customer Z9")  # would hit every "Al..." word in the page
    assert masker.mask("Also Al") == "Also Al"
    assert masker.mask("") == ""


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
