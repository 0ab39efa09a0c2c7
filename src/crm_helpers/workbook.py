"""The first code cell of every notebook: open the store, settle the period, set the plot style.

Notebooks declare plain-literal parameters (papermill injects them in report runs)::

    db_path = ""        # blank: the default store (data/crm.db or $CRM_DB)
    period_start = ""   # blank: the latest complete month of data
    period_end = ""
    lang = ""           # blank: $CRM_LANG, else English (crm report --lang zh: Simplified Chinese)

and then call ``db, period = open_workbook(db_path, period_start, period_end=period_end, lang=lang)``,
which also sets the language of every sentence the analyses write in the kernel
(:mod:`crm_helpers.i18n`); that cell's output,
right under the page's title, is the store's currency note when its orders are in several
currencies (:func:`crm_helpers.store.queries.money_note`).
"""

from __future__ import annotations

import pandas as pd
from sqlite_utils import Database

from crm_helpers.i18n import set_language
from crm_helpers.store import config
from crm_helpers.store.queries import money_note
from crm_helpers.report import plots, tables
from crm_helpers.store.periods import Period, resolve_period
from crm_helpers.store.connection import open_db


def open_workbook(db_path: str = "", period_start: str = "", *, period_end: str = "",
                  lang: str = "") -> tuple[Database, Period]:
    """Open the store and resolve the report period; also sets the language of the sentences
    (``lang``, blank: the ``CRM_LANG`` setting), the plot and table style (every displayed DataFrame
    is a table for people, see :mod:`crm_helpers.report.tables`) and shows the currency note of the
    store, if it has one."""
    set_language(lang or config.report_language())
    plots.setup()
    tables.use_for_display()
    pd.set_option("display.max_columns", 30)
    pd.set_option("display.width", 160)
    pd.set_option("display.float_format", lambda v: f"{v:,.2f}")
    db = open_db(db_path or None)
    if note := money_note(db):
        from IPython.display import Markdown, display

        display(Markdown(f"*{note}*"))
    return db, resolve_period(db, period_start, period_end=period_end)
