"""The desk as the owner uses it: `make desk`'s server (crm_helpers.desk_server), its key and Host
check tried as another user or a web page would, and the page driven in Debian's headless Chromium.

Playwright (the pip package) drives the system browser; it never downloads one. Skipped, with the
reason, only where Chromium is not installed (.ci/run installs it). One server per module.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from browser_support import BROWSER_MARKS, CHROMIUM, FLAGS, small_demo_store

from crm_helpers.desk_server import DESK_PATH, lan_address

pytestmark = BROWSER_MARKS
NOTES = Path(os.environ.get("CRM_DESK_SCREENSHOTS", "/work/notes"))
"""Where the day's-work test leaves its screenshots (the closing note's pictures), when it exists and
is writable; else the test's temporary folder."""
START_TIMEOUT_S = 60  # the server answers at once; a page executes the notebook (scoring included) when opened
WAIT_MS = 120_000
PAGE_LOADS = 4
SEARCH = "part of a name, e-mail, phone or company"
OPEN_WITH_KEY = "/api/kernelspecs"
"""A path of the server's API that answers 200 only with the key: the kernel specs, not /api/kernels,
whose list answers 500 while the server's standby kernel is still starting (jupyter_server reads the
kernel's last activity before it is set; the same race as jupyter-server/enterprise_gateway#1395)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(root: Path, db: Path, *flags: str, cull_s: int | None = None) -> tuple[subprocess.Popen, str, Path]:
    """The desk's server as `make desk` starts it (``cull_s``: idle kernels culled after that many
    seconds instead of minutes); returns it, the address it printed and its log."""
    port = _free_port()
    log_path = root / f"desk-{port}.log"
    quick = "" if cull_s is None else f"d.CULL_IDLE_S, d.CULL_INTERVAL_S = {cull_s}, 1; "
    code = f"import crm_helpers.desk_server as d; {quick}d.main()"
    with log_path.open("wb") as log:
        server = subprocess.Popen([sys.executable, "-c", code, "--port", str(port), "--no-browser", *flags],
                                  env={**os.environ, "CRM_DB": str(db)}, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        printed = re.search(r"The desk: (\S+)", log_path.read_text(errors="replace"))
        if printed and _status(printed.group(1), f"{OPEN_WITH_KEY}?token={_key(printed.group(1))}") == 200:
            return server, printed.group(1), log_path
        if server.poll() is not None or time.monotonic() > deadline:
            _stop(server)
            pytest.fail(f"the desk server did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)  # polling a port that is not open yet: there is no signal to wait on


def _stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def _key(url: str) -> str:
    return url.split("token=", 1)[1]


def _request(url: str, path: str, *, host: str | None = None, method: str = "GET") -> http.client.HTTPResponse:
    """One request to the server at ``url`` (no redirect followed), with ``host`` as its Host header."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=30)
    conn.request(method, path, headers={"Host": host or f"localhost:{parts.port}"})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def _status(url: str, path: str, **kwargs) -> int:
    try:
        return _request(url, path, **kwargs).status
    except OSError:
        return 0


def _kernels(url: str) -> list[dict]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=30)
    conn.request("GET", f"/api/kernels?token={_key(url)}")
    kernels = json.loads(conn.getresponse().read())
    conn.close()
    return kernels


@pytest.fixture(scope="module")
def desk_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("desk-browser")
    db = small_demo_store(root)
    server, url, log = _start(root, db)
    yield url, db, root
    _stop(server)


def test_the_key_is_printed_fresh_and_required_everywhere(desk_server):
    url, db, root = desk_server
    parts, key = urlsplit(url), _key(url)
    assert parts.path == DESK_PATH and parts.hostname == "localhost" and len(key) >= 40
    page = _request(url, DESK_PATH)
    assert page.status == 302 and page.getheader("Location").startswith("/login")  # no key: the login form
    assert _request(url, f"{DESK_PATH}?token=wrong{key}").getheader("Location").startswith("/login")
    for path in ("/api/kernels", f"/api/kernels?token={key[:-1]}", "/api/contents", "/voila/api/contents",
                 "/voila/files/00_desk.ipynb", "/api/sessions", OPEN_WITH_KEY, f"{OPEN_WITH_KEY}?token={key[:-1]}"):
        assert _status(url, path) == 403, path
    for path in ("/voila/static/voila.js", "/voila/templates/lab/static/index.css",
                 "/voila/labextensions/@voila-dashboards/widgets-manager8/package.json"):
        assert _request(url, path).getheader("Location", "").startswith("/login"), path  # scripts too
        assert _status(url, f"{path}?token={key}") == 200, path
    assert _status(url, "/api/kernels", method="POST") == 403  # nobody starts a kernel without the key
    assert len(_kernels(url)) <= 1  # ... and none of the requests above started one (the server's own standby)
    assert _status(url, f"{OPEN_WITH_KEY}?token={key}") == 200
    assert _status(url, f"/lab?token={key}") == 404 and _status(url, f"/terminals/websocket/1?token={key}") == 404
    server, again, _ = _start(root, db)
    _stop(server)
    assert _key(again) != key  # a new key per start


def test_a_foreign_host_is_refused_even_with_the_key(desk_server):
    url, _, _ = desk_server
    key = _key(url)
    for host in ("evil.example", "evil.example:8866", "192.0.2.77", "localhost.evil.example"):
        for path in (DESK_PATH, "/api/kernels", "/voila/static/voila.js", "/voila/templates/lab/static/index.css"):
            assert _status(url, f"{path}?token={key}", host=host) == 403, (host, path)
    assert len(_kernels(url)) <= 1  # at most the server's own standby kernel: no request started one
    for host in ("localhost", "127.0.0.1", "[::1]"):
        assert _status(url, f"{OPEN_WITH_KEY}?token={key}", host=f"{host}:{urlsplit(url).port}") == 200, host


def test_a_websocket_needs_the_key_and_a_local_host(desk_server):
    from tornado.httpclient import HTTPClientError, HTTPRequest
    from tornado.websocket import websocket_connect

    url, _, _ = desk_server
    key, port = _key(url), urlsplit(url).port
    started = _request(url, f"/api/kernels?token={key}", method="POST")
    assert started.status == 201
    kernel = _kernels(url)[0]["id"]
    channels = f"ws://127.0.0.1:{port}/api/kernels/{kernel}/channels"

    async def connect(address: str, host: str = f"localhost:{port}") -> int:
        try:
            ws = await websocket_connect(HTTPRequest(address, headers={"Host": host}))
        except HTTPClientError as exc:
            return exc.code
        ws.close()
        return 101

    try:
        assert asyncio.run(connect(channels)) == 403
        assert asyncio.run(connect(f"{channels}?token=wrong")) == 403
        assert asyncio.run(connect(f"{channels}?token={key}", host="evil.example")) == 403
        assert asyncio.run(connect(f"{channels}?token={key}")) == 101
    finally:
        assert _request(url, f"/api/kernels/{kernel}?token={key}", method="DELETE").status == 204


def test_page_loads_end_their_kernels_and_ask_nothing_of_the_internet(desk_server):
    from playwright.sync_api import sync_playwright

    url, _, _ = desk_server
    hosts: set[str] = set()
    open_, left = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            context = browser.new_context()
            context.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
            for _ in range(PAGE_LOADS):
                page = context.new_page()
                page.goto(url, timeout=WAIT_MS)
                page.get_by_placeholder(SEARCH).wait_for(timeout=WAIT_MS)
                open_.append(len(_kernels(url)))
                mine = {k["id"] for k in _kernels(url)}
                page.close(run_before_unload=True)  # the page's own shutdown call, as closing a tab sends it
                deadline = time.monotonic() + 15
                while len(_kernels(url)) >= len(mine) and time.monotonic() < deadline:
                    time.sleep(0.1)  # the shutdown is a beacon: nothing to wait on but the kernel list
                left.append(len(_kernels(url)))
        finally:
            browser.close()
    assert all(1 <= n <= 2 for n in open_)  # the page's kernel, and at most one standing by for the next page
    assert all(n <= 1 for n in left)  # the page's kernel ended when it closed; the standby stays
    assert hosts == {urlsplit(url).netloc}


def test_add_a_customer_and_log_an_interaction_through_the_page(desk_server):
    from playwright.sync_api import expect, sync_playwright

    url, db, _ = desk_server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1000})
            page.goto(url, timeout=WAIT_MS)
            page.get_by_placeholder(SEARCH).wait_for(timeout=WAIT_MS)
            assert "Desk.open" not in page.content()  # code hidden: forms only
            _field(page, "Name").fill("Zoe Browser")
            _field(page, "E-mail").fill("zoe.browser@example.org")
            page.get_by_role("button", name="Add as new customer").click()
            expect(page.get_by_text("Saved: new customer Zoe Browser")).to_be_visible(timeout=WAIT_MS)
            expect(page.get_by_text("Now working on: Zoe Browser")).to_be_visible()
            page.get_by_role("button", name="New customer").click()  # empties the form for the next one
            expect(_field(page, "E-mail")).to_have_value("")

            page.get_by_role("tab", name="Interaction").click()
            page.get_by_placeholder(SEARCH).fill("zoe.browser")
            page.locator(".widget-select select").select_option(index=0)
            expect(page.get_by_text("Now working on: Zoe Browser")).to_be_visible(timeout=WAIT_MS)
            _field(page, "Outcome").fill("wants a quote")
            _field(page, "When").fill("2099-05-04 10:00")
            page.get_by_role("button", name="Log it").click()
            expect(page.get_by_text("is in the future: tick")).to_be_visible(timeout=WAIT_MS)
            confirm = page.get_by_role("checkbox", name="Yes, the date is in the future").first
            expect(confirm).to_be_visible()
            confirm.check()
            page.get_by_role("button", name="Log it").click()
            expect(page.get_by_text("Saved: call with Zoe Browser")).to_be_visible(timeout=WAIT_MS)
        finally:
            browser.close()
    with sqlite3.connect(db) as conn:
        customer = conn.execute("SELECT customer_id, name FROM customers WHERE email = 'zoe.browser@example.org'").fetchone()
        assert customer is not None and customer[1] == "Zoe Browser"
        logged = conn.execute("SELECT channel, outcome, occurred_at FROM interactions WHERE customer_id = ?",
                              [customer[0]]).fetchall()
    assert logged == [("call", "wants a quote", "2099-05-04 10:00:00")]


def test_an_idle_kernel_without_a_page_is_ended(desk_server):
    _, db, root = desk_server
    server, url, _ = _start(root, db, "--no-standby", cull_s=2)
    try:
        assert _request(url, f"/api/kernels?token={_key(url)}", method="POST").status == 201  # a page that never came
        deadline = time.monotonic() + 30
        while _kernels(url) and time.monotonic() < deadline:
            time.sleep(0.2)  # the culler runs on its own clock: nothing to wait on but the kernel list
        assert _kernels(url) == []
    finally:
        _stop(server)


@pytest.mark.skipif(lan_address() is None, reason="this machine has no address on a local network")
def test_lan_mode_accepts_this_machines_address_and_still_needs_the_key(desk_server):
    _, db, root = desk_server
    server, url, log = _start(root, db, "--lan")
    try:
        address, port, key = lan_address(), urlsplit(url).port, _key(url)
        assert f"On a phone on this network: http://{address}:{port}{DESK_PATH}?token={key}" in log.read_text()
        conn = http.client.HTTPConnection(address, port, timeout=30)  # from the network, not the loopback
        conn.request("GET", "/api/kernels", headers={"Host": f"{address}:{port}"})
        assert conn.getresponse().status == 403
        conn.close()
        assert _status(url, f"{OPEN_WITH_KEY}?token={key}", host=f"{address}:{port}") == 200
        assert _status(url, f"/api/kernels?token={key}", host="evil.example") == 403
        assert _status(url, f"/api/kernels?token={key}", host="192.0.2.77") == 403
    finally:
        _stop(server)


def _field(page, label: str):
    """The input of the ipywidgets field whose description is ``label``."""
    return page.locator(f".widget-inline-hbox:has(> label:text-is('{label}'))").locator("input, textarea").first


@pytest.mark.parametrize("width", [1280, 390])
def test_a_days_work_on_today_at_desk_and_phone_width(desk_server, width, tmp_path):
    """Today at the top, one line per person with links; a task for today added with Enter, done from
    Today, undone; a person snoozed; nothing wider than the screen and every tab readable."""
    from playwright.sync_api import expect, sync_playwright

    url, db, _ = desk_server
    shots = NOTES if NOTES.is_dir() and os.access(NOTES, os.W_OK) else tmp_path
    with sqlite3.connect(db) as conn:
        person = conn.execute("SELECT customer_id, name, phone FROM customers WHERE name IS NOT NULL "
                              "AND phone IS NOT NULL ORDER BY customer_id LIMIT 1 OFFSET ?", [width % 7]).fetchone()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto(url, timeout=WAIT_MS)
            today = page.locator(".desk-today")
            today.locator("button:text-is('Done')").first.wait_for(timeout=WAIT_MS)
            search = page.get_by_placeholder(SEARCH)
            assert today.bounding_box()["y"] < search.bounding_box()["y"]  # Today first
            names = today.locator(".desk-line b").all_inner_texts()
            assert names and len(names) == len(set(names))  # one line per person
            assert today.locator("a[href^='tel:']").count() > 0 and today.locator("a[href^='mailto:']").count() > 0
            page.screenshot(path=str(shots / f"desk-{width}-today.png"))

            search.fill("".join(c for c in person[2] if c.isdigit())[-7:])  # the last digits of their phone number
            page.locator(".widget-select select").select_option(index=0)
            expect(page.get_by_text(f"Now working on: {person[1]}")).to_be_visible(timeout=WAIT_MS)
            page.get_by_role("tab", name="Task").click()
            _field(page, "Due").fill("today")
            _field(page, "To do").fill("call back about the quote")
            _field(page, "To do").press("Enter")  # Enter saves
            expect(page.get_by_text("Saved: task for")).to_be_visible(timeout=WAIT_MS)
            mine = today.locator(".desk-line").filter(has_text=person[1])
            expect(mine).to_contain_text("call back about the quote (due today)", timeout=WAIT_MS)
            assert today.locator(".desk-line").filter(has_text="(due today)").count() >= 1  # tasks first:
            assert "(due today)" in today.locator(".desk-line").first.inner_text()
            today.locator("input[placeholder^='optional']").fill("agreed on the quote")
            mine.locator("button:text-is('Done')").click()
            expect(today.get_by_text("Done: ")).to_be_visible(timeout=WAIT_MS)
            expect(mine).to_have_count(0, timeout=WAIT_MS)  # off Today
            today.locator("button:text-is('Undo')").click()
            expect(today.get_by_text("Undone")).to_be_visible(timeout=WAIT_MS)
            expect(mine).to_contain_text("call back about the quote", timeout=WAIT_MS)
            last = today.locator(".desk-line").last
            second = last.locator("b").inner_text()
            last.locator("button:text-is('Snooze')").click()
            expect(today.get_by_text(f"Snoozed: {second} until")).to_be_visible(timeout=WAIT_MS)

            sideways = page.evaluate("""() => [...document.querySelectorAll('*')].filter(e =>
                e.scrollWidth > e.clientWidth + 1 && ['auto', 'scroll'].includes(getComputedStyle(e).overflowX)
                || e === document.scrollingElement && e.scrollWidth > window.innerWidth + 1
              ).map(e => e.className + ': ' + (e.scrollWidth - e.clientWidth) + ' px')""")
            assert sideways == [], f"these scroll sideways at {width} px: {sideways}"
            for tab in page.get_by_role("tab").all():  # every tab on screen, its label whole
                box = tab.bounding_box()
                assert 0 <= box["x"] and box["x"] + box["width"] <= width + 1
                assert tab.evaluate("t => { const l = t.querySelector('.lm-TabBar-tabLabel, .p-TabBar-tabLabel') || t;"
                                    " return l.scrollWidth <= l.clientWidth + 1; }"), tab.inner_text()
            page.screenshot(path=str(shots / f"desk-{width}.png"), full_page=True)
        finally:
            browser.close()
    with sqlite3.connect(db) as conn:
        task = conn.execute("SELECT done_at, due FROM tasks WHERE customer_id = ? AND note = ?",
                            [person[0], "call back about the quote"]).fetchone()
        snoozed = conn.execute("SELECT COUNT(*) FROM tasks WHERE note LIKE 'follow up: %'").fetchone()[0]
    assert task[0] is None  # done, then undone: open again
    assert snoozed >= 1


def _yesterdays_order(db: Path, offset: int) -> tuple[str, str, str, str, str]:
    """A customer of the demo store with a name and an e-mail, given an order of yesterday (one unit
    of a product): ``(customer_id, name, email, order_id, product name)``."""
    import datetime as dt

    from crm_helpers.ingest import entry
    from crm_helpers.store.connection import open_db

    store = open_db(db)
    try:
        cid, name, email = store.execute("SELECT customer_id, name, email FROM customers WHERE name IS NOT NULL AND "
                                         "email IS NOT NULL ORDER BY customer_id LIMIT 1 OFFSET ?", [offset]).fetchone()
        pid, product = store.execute("SELECT product_id, name FROM products WHERE unit_price > 0 "
                                     "ORDER BY product_id LIMIT 1").fetchone()
        yesterday = (dt.date.today() - dt.timedelta(days=1)).isoformat()
        oid = entry.record_order(store, cid, items=[(pid, 1, None)], order_date=yesterday)
    finally:
        store.close()
    return cid, name, email, oid, product


@pytest.mark.parametrize("width", [1280, 390])
def test_a_days_work_on_the_record_at_desk_and_phone_width(desk_server, width, tmp_path):
    """Find a customer, open the record, correct yesterday's order (one unit becomes three), add a
    task for Tuesday, complete it from the record, undo that; nothing wider than the screen."""
    import datetime as dt

    from playwright.sync_api import expect, sync_playwright

    url, db, _ = desk_server
    shots = NOTES if NOTES.is_dir() and os.access(NOTES, os.W_OK) else tmp_path
    cid, name, email, oid, product = _yesterdays_order(db, 11 + width % 7)  # one person per width
    yesterday = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto(url, timeout=WAIT_MS)
            search = page.get_by_placeholder(SEARCH)
            search.wait_for(timeout=WAIT_MS)
            search.fill(email)
            page.locator(".widget-select select").select_option(index=0)
            expect(page.get_by_text(f"Now working on: {name}")).to_be_visible(timeout=WAIT_MS)
            lines = page.locator(".desk-timeline .desk-line")
            order = lines.filter(has_text=yesterday).filter(has_text=f"1 × {product}")
            order.get_by_role("button", name="Edit").click()
            editor = page.locator(".desk-editor")
            expect(editor).to_contain_text(f"Correct this order of {yesterday}", timeout=WAIT_MS)
            _field(page, f"Units of {product}").fill("3")
            editor.get_by_role("button", name="Save changes").click()
            expect(page.get_by_text("Saved: correction of the order")).to_be_visible(timeout=WAIT_MS)
            corrected = lines.filter(has_text=yesterday).filter(has_text=f"3 × {product}")
            expect(corrected).to_have_count(1, timeout=WAIT_MS)
            corrected.get_by_role("button", name="Edit").click()  # open again, as the picture shows it
            expect(editor).to_be_visible(timeout=WAIT_MS)
            status = editor.locator("select").first.bounding_box()
            amount = editor.locator(".widget-inline-hbox:has(> label:text-is('Amount')) input").bounding_box()
            assert status["y"] + status["height"] <= amount["y"] + 1  # a list is not hidden under the next field
            corrected.evaluate("row => row.scrollIntoView({block: 'start'})")  # the entry, its controls and the form
            page.screenshot(path=str(shots / f"edit-{width}.png"))
            editor.get_by_role("button", name="Cancel").click()
            expect(editor).to_be_hidden(timeout=WAIT_MS)

            page.get_by_role("tab", name="Task").click()
            _field(page, "Due").fill("tuesday")
            _field(page, "To do").fill("call about the corrected order")
            _field(page, "To do").press("Enter")
            expect(page.get_by_text("Saved: task for")).to_be_visible(timeout=WAIT_MS)
            task = lines.filter(has_text="call about the corrected order (open)")
            task.get_by_role("button", name="Done").click()
            expect(page.get_by_text("Saved: task done: call about the corrected order")).to_be_visible(timeout=WAIT_MS)
            expect(lines.filter(has_text="call about the corrected order (done)")).to_have_count(1, timeout=WAIT_MS)
            page.get_by_role("button", name="Undo this change").click()
            expect(page.get_by_text("Undone: task done")).to_be_visible(timeout=WAIT_MS)
            expect(task).to_have_count(1, timeout=WAIT_MS)

            sideways = page.evaluate("""() => [...document.querySelectorAll('*')].filter(e =>
                e.scrollWidth > e.clientWidth + 1 && ['auto', 'scroll'].includes(getComputedStyle(e).overflowX)
                || e === document.scrollingElement && e.scrollWidth > window.innerWidth + 1
              ).map(e => e.className + ': ' + (e.scrollWidth - e.clientWidth) + ' px')""")
            assert sideways == [], f"these scroll sideways at {width} px: {sideways}"
            for button in lines.first.get_by_role("button").all():  # the entry's controls on screen
                box = button.bounding_box()
                assert 0 <= box["x"] and box["x"] + box["width"] <= width + 1
        finally:
            browser.close()
    with sqlite3.connect(db) as conn:
        amount = conn.execute("SELECT amount FROM orders WHERE order_id = ?", [oid]).fetchone()[0]
        lines_ = conn.execute("SELECT quantity, unit_price FROM order_items WHERE order_id = ?", [oid]).fetchall()
        task = conn.execute("SELECT due, done_at FROM tasks WHERE customer_id = ? AND note = ?",
                            [cid, "call about the corrected order"]).fetchone()
        calls = conn.execute("SELECT COUNT(*) FROM interactions WHERE customer_id = ? AND subject LIKE 'task: call about%'",
                             [cid]).fetchone()[0]
    assert len(lines_) == 1 and lines_[0][0] == 3 and amount == pytest.approx(3 * lines_[0][1])
    assert dt.date.fromisoformat(task[0]).weekday() == 1 and task[1] is None and calls == 0  # done, then undone
