"""The report layer: everything that turns the analyses into the owner's monthly pack.

- :mod:`.runner` executes the notebooks with papermill and writes the pack;
- :mod:`.share` writes the masked ``share/`` copy (:mod:`.privacy` is its masker);
- :mod:`.headlines` records the figures a notebook hands to the index;
- :mod:`.plots` draws every plot of the pages and :mod:`.tables` shows their tables, each in one look;
- :mod:`.numbers` holds the one number style (money, counts, rates, months, ranges, axes, CSV values);
- :mod:`.pages` turns an executed notebook into its page (title, back link, folded appendix);
- :mod:`.pdf` prints ``brief.pdf`` and ``pack.pdf`` with headless Chromium (the CLI calls it);
- :mod:`.sentences` writes what the pages say in words about the analyses' results;
- :mod:`.glossary` defines each term the pages use, once.

It sits above the analyses and the store: nothing below imports from here (see
``docs/architecture.md`` and the import-linter contract in ``pyproject.toml``).
"""
