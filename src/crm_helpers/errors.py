"""The package's one error family: every refusal derives from :class:`CrmError`.

It sits below every layer (the store and the models import it, it imports nothing), so that
``except CrmError`` catches every refusal of the package, the way scikit-learn's
``exceptions.py`` and papermill's ``PapermillException`` give theirs one base.
"""

from __future__ import annotations


class CrmError(Exception):
    """Every refusal of the package derives from this; its message says what to do.

    Subclasses that were ``ValueError`` before keep that base too, so existing ``except
    ValueError`` handlers still catch them. Warnings are not refusals and stay warnings.
    """
