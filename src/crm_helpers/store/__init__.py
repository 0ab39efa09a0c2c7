"""The store layer: the SQLite file and every business rule.

What lives here: the schema and its migrations (:mod:`.schema`, :mod:`.connection`), the business
facts (:mod:`.facts`: what "paid", "open", "lost", "repeat" and "overdue" mean, each written once),
reading helpers (:mod:`.queries`), report periods, validation of single values, paths
(:mod:`.config`), files written safely (:mod:`.files`: whole, owner-only, never through a link)
and safe CSV writing, the plain value types the analyses return (:mod:`.values`),
and what keeps the data safe: backup, undo, suppression and forget. It is the bottom of the road:
it imports nothing else of the package but the error base (:mod:`crm_helpers.errors`).
"""
