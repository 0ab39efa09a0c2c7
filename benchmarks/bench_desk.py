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


def measure_in_kernel(db: Path, *, repeats: int = 2) -> dict[str, Timing]:
    """What the page's kernel itself spends on a copy of ``db``, without Voila or the browser: the
    standby's warm-up (:func:`crm_helpers.desk.warm_up`: the store opened, Today's book-wide parts
    computed), then, as a page that takes it: ``Desk.open`` with the Today and entry panels built,
    and each save with the redraw it causes (an interaction, feedback, a task, Today's "Done").
    Seconds, ``repeats`` times each (the store changes with each round's saves, so each round but the
    first starts from a new warm-up, as the next page's standby kernel would)."""
    import crm_helpers.desk as desk_module

    times: dict[str, list[float]] = {}

    def timed(label: str, action) -> None:
        started = time.perf_counter()
        action()
        times.setdefault(label, []).append(time.perf_counter() - started)

    with tempfile.TemporaryDirectory(prefix="crm-bench-kernel-") as tmp:
        copy = Path(tmp) / "crm.db"
        shutil.copyfile(db, copy)
        for _ in range(repeats):
            timed("standby warm-up (store opened, Today's book-wide parts computed)",
                  lambda: desk_module.warm_up(str(copy), poll_s=3600))
            started = time.perf_counter()
            desk = desk_module.Desk.open(str(copy))
            desk.today_panel()
            desk.entry_panel()
            times.setdefault("page: Desk.open + Today + forms, warm", []).append(
                time.perf_counter() - started)
            person = next(line.customer_id for line in desk.today_list.lines if line.customer_id)
            desk.select(person)
            for name, value in {"channel": "call", "subject": "bench", "outcome": "ok"}.items():
                desk.interaction.fields[name].value = value
            timed("save: an interaction, with the redraw", desk.interaction.save.click)
            desk.feedback.fields["nps"].value = "9"
            timed("save: feedback, with the redraw", desk.feedback.save.click)
            desk.task.fields["due"].value = "tomorrow"
            desk.task.fields["note"].value = "bench"
            timed("save: a task, with the redraw", desk.task.save.click)
            line = desk.today_list.lines[-1]
            timed("save: Today's \u201cDone\u201d, with the redraw",
                  desk.today_list.buttons[line.customer_id or line.task_ids[0]][0].click)
            desk.search.value = ""
            timed("search as typed (\u201canna\u201d) with the count", lambda: (
                desk_module.find_customers(desk.db, "anna"), desk_module.count_customers(desk.db, "anna")))
            timed("open a record (select: the person, their timeline, the forms)", lambda: desk.select(person))
    return {label: Timing(runs) for label, runs in times.items()}


def run(db: Path, loads: int, *, label: str, cold_loads: int | None = None) -> Section:
    """The desk's page and save times on the store at ``db``: in Chromium with the standby kernel
    (``loads`` loads) and without it (``cold_loads``, default ``loads``; 0 leaves it out: minutes
    per load on the scale store), and the kernel's own share (:func:`measure_in_kernel`)."""
    cold_loads = loads if cold_loads is None else cold_loads
    section = Section("desk", f"The desk on the {label}", busy=f"load average {load_average()} at start")
    log("desk: the kernel's own work (warm-up, page, saves)")
    for measure, timing in measure_in_kernel(db).items():
        target = ("≤ 0.5 s" if measure.startswith("save") else "")
        section.add(Row(f"in the kernel: {measure}", timing, target=target,
                        met=timing.median <= 0.5 if target else None))
    rows = {}
    for standby, count in ((False, cold_loads), (True, loads)):
        if count:
            log(f"desk: {plural(count, 'page load')} {'with' if standby else 'without'} the standby kernel")
            rows[standby] = measure_desk(db, standby=standby, loads=count)
    warm_page, warm_save = rows[True]
    cold_page, cold_save = rows.get(False, (None, None))
    section.add(Row("page until Today shows, warm desk (standby kernel)", warm_page, reference=cold_page,
                    reference_name="each page starting its own kernel (`--no-standby`)" if cold_page else "",
                    target="≤ 3 s", met=warm_page.median <= 3.0))
    section.add(Row("Today's \u201cDone\u201d until its message shows", warm_save, target="≤ 0.5 s",
                    met=warm_save.median <= 0.5))
    if cold_page:
        section.add(Row("page until Today shows, `--no-standby`", cold_page))
        section.add(Row("Today's \u201cDone\u201d, `--no-standby`", cold_save))
    section.notes.append(f"{plural(loads, 'load')} with the standby kernel, {cold_loads} without; Chromium headless "
                         "at 1280 px on this machine; the times include the browser's own work (scripts, widgets). "
                         "In-kernel rows: the same code without Voila or the browser, 2 runs each.")
    return section
