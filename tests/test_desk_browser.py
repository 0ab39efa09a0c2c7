"""The desk as the owner uses it: `make desk`'s Voilà server, driven in Debian's headless Chromium.

Playwright (the pip package) drives the system browser; it never downloads one. Skipped, with the
reason, only where Chromium is not installed (.ci/run installs it).
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.request

import pytest

from browser_support import BROWSER_MARKS, CHROMIUM, FLAGS, small_demo_store

from crm_helpers.store.config import PROJECT_ROOT

pytestmark = BROWSER_MARKS
START_TIMEOUT_S = 300  # Voilà executes the whole notebook (scoring included) before it answers
WAIT_MS = 120_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def desk_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("desk-browser")
    db = small_demo_store(root)
    port = _free_port()
    log = (root / "voila.log").open("wb")
    server = subprocess.Popen(["make", "-s", "desk", f"PORT={port}", f"DB={db}", "DESK_FLAGS=--no-browser"],
                              cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://localhost:{port}/"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            urllib.request.urlopen(url, timeout=5).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                os.killpg(server.pid, signal.SIGTERM)
                pytest.fail(f"the desk server did not start:\n{(root / 'voila.log').read_text()[-3000:]}")
            time.sleep(0.5)  # polling a port that is not open yet: there is no signal to wait on
    yield url, db
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)
    log.close()


def _field(page, label: str):
    """The input of the ipywidgets field whose description is ``label``."""
    return page.locator(f".widget-inline-hbox:has(> label:text-is('{label}'))").locator("input, textarea").first


def test_add_a_customer_and_log_an_interaction_through_the_page(desk_server):
    from playwright.sync_api import expect, sync_playwright

    url, db = desk_server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1000})
            page.goto(url, timeout=WAIT_MS)
            page.get_by_placeholder("part of a name, e-mail or company").wait_for(timeout=WAIT_MS)
            assert "Desk.open" not in page.content()  # code hidden: forms only
            _field(page, "Name").fill("Zoe Browser")
            _field(page, "E-mail").fill("zoe.browser@example.org")
            page.get_by_role("button", name="Add as new customer").click()
            expect(page.get_by_text("Saved: new customer Zoe Browser")).to_be_visible(timeout=WAIT_MS)
            expect(page.get_by_text("Now working on: Zoe Browser")).to_be_visible()

            page.get_by_role("tab", name="Interaction").click()
            _field(page, "Outcome").fill("wants a quote")
            page.get_by_role("button", name="Log it").click()
            expect(page.get_by_text("Saved: call with Zoe Browser")).to_be_visible(timeout=WAIT_MS)
        finally:
            browser.close()
    with sqlite3.connect(db) as conn:
        customer = conn.execute("SELECT customer_id, name FROM customers WHERE email = 'zoe.browser@example.org'").fetchone()
        assert customer is not None and customer[1] == "Zoe Browser"
        logged = conn.execute("SELECT channel, outcome FROM interactions WHERE customer_id = ?", [customer[0]]).fetchall()
    assert logged == [("call", "wants a quote")]
