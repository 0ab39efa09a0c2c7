"""The models layer: pure statistical models, with no store, no files and no plots.

What lives here: the buy-till-you-die models (:mod:`.btyd`: BG/NBD, MBG/NBD, Pareto/NBD and
Gamma-Gamma), shaped like lifetimes and scikit-learn (``fit`` returns ``self``, fitted state in
``params_``), and their predictive ranges by simulation (:mod:`.predictive`: where the purchases and
spend of a set of customers will fall, with the parameters' uncertainty and each customer's chance). They take arrays and frames and return numbers; they import nothing of the
package but the error base (:mod:`crm_helpers.errors`), and the store does not import them.
"""
