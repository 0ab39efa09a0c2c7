"""The desk as the owner meets it: `make desk`'s server on a copy of a store, the page opened in
headless Chromium (Playwright driving the system browser) until Today's list is on screen, and a
save (Today's "Done") until its message shows.

Two ways of serving are compared: with the standby kernel (:func:`crm_helpers.desk_server.
standby_kernel_manager`, the default: a warm kernel with today's list already scored waits for the
next page) and with ``--no-standby`` (each page starts a kernel and scores the whole book, as before).
A "warm desk" is a server whose standby kernel is ready: each timed load waits for it first.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .results import Row, Section, Timing, load_average, log, plural

START_TIMEOUT_S = 600
"""The standby kernel scores the whole book before it is ready: minutes on the scale store."""
TODAY = ".desk-today"
"""The Today panel's CSS class (crm_helpers.desk.TodayList): the page is usable once it is on screen."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ready_count(log_path: Path) -> int:
    return log_path.read_text(errors="replace").count("standby kernel is ready")


def _serve(db: Path, folder: Path, *, standby: bool) -> tuple[subprocess.Popen, str, Path]:
    port = _free_port()
    log_path = folder / f"desk-{port}.log"
    flags = ["--port", str(port), "--no-browser", *([] if standby else ["--no-standby"])]
    with log_path.open("wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "crm_helpers.desk_server", *flags],
                                  env={**os.environ, "CRM_DB": str(db)}, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        printed = re.search(r"The desk: (\S+)", log_path.read_text(errors="replace"))
        if printed and (not standby or _ready_count(log_path) >= 1):
            return server, printed.group(1), log_path
        if server.poll() is not None or time.monotonic() > deadline:
            _stop(server)
            raise RuntimeError(f"the desk server did not start:\n{log_path.read_text()[-2000:]}")
        time.sleep(0.2)  # a server starting in another process: nothing to wait on but its log


def _stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def _wait_ready(log_path: Path, count: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while _ready_count(log_path) < count and time.monotonic() < deadline:
        time.sleep(0.2)


def measure_desk(db: Path, *, standby: bool, loads: int) -> tuple[Timing, Timing]:
    """Page-load seconds (navigation until Today's list shows) and save seconds (Today's "Done" until
    its message shows) over ``loads`` loads of the desk on a copy of ``db``."""
    from playwright.sync_api import sync_playwright

    pages, saves = [], []
    with tempfile.TemporaryDirectory(prefix="crm-bench-desk-") as tmp:
        copy = Path(tmp) / "crm.db"
        shutil.copyfile(db, copy)
        server, url, log_path = _serve(copy, Path(tmp), standby=standby)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=shutil.which("chromium"),
                                            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
                try:
                    for n in range(loads):
                        if standby:
                            _wait_ready(log_path, n + 1)
                        page = browser.new_page(viewport={"width": 1280, "height": 900})
                        started = time.perf_counter()
                        page.goto(url, timeout=START_TIMEOUT_S * 1000)
                        page.locator(f"{TODAY} button:text-is('Done')").first.wait_for(timeout=START_TIMEOUT_S * 1000)
                        pages.append(time.perf_counter() - started)
                        started = time.perf_counter()
                        page.locator(f"{TODAY} button:text-is('Done')").first.click()
                        page.get_by_text("Done:").first.wait_for(timeout=60_000)
                        saves.append(time.perf_counter() - started)
                        page.close(run_before_unload=True)
                finally:
                    browser.close()
        finally:
            _stop(server)
    return Timing(pages), Timing(saves)


def run(db: Path, loads: int, *, label: str) -> Section:
    """The desk's page and save times on the store at ``db``, with and without the standby kernel."""
    section = Section("desk", f"The desk on the {label}", busy=f"load average {load_average()} at start")
    rows = {}
    for standby in (False, True):
        log(f"desk: {plural(loads, 'page load')} {'with' if standby else 'without'} the standby kernel")
        rows[standby] = measure_desk(db, standby=standby, loads=loads)
    cold_page, cold_save = rows[False]
    warm_page, warm_save = rows[True]
    section.add(Row("page until Today shows, warm desk (standby kernel)", warm_page, reference=cold_page,
                    reference_name="each page starting its own kernel (`--no-standby`)", target="≤ 3 s",
                    met=warm_page.median <= 3.0))
    section.add(Row("Today's \u201cDone\u201d until its message shows", warm_save, target="≤ 0.5 s",
                    met=warm_save.median <= 0.5))
    section.add(Row("page until Today shows, `--no-standby`", cold_page))
    section.add(Row("Today's \u201cDone\u201d, `--no-standby`", cold_save))
    section.notes.append(f"{plural(loads, 'load')} each; Chromium headless at 1280 px on this machine; the times "
                         "include the browser's own work (scripts, widgets).")
    return section
