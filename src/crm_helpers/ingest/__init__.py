"""The ingest layer: data coming in.

What lives here: reading a file into a table (:mod:`.table_import`), the descriptions of the
tools' exports (:mod:`.sources`), importing a tool's export into several tables
(:mod:`.export_import`), the inbox folder (:mod:`.inbox`) and the desk's single entries
(:mod:`.entry`). It may import only :mod:`crm_helpers.store`; it never imports the analyses,
and the analyses never import it (import-linter keeps both true).
"""
