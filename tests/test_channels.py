"""Acquisition channel as a covariate of the purchase model (issue 28 item 6): the BG/NBD with
groups recovers planted effects, its first-year figures match their own closed form and quadrature,
its ranges hold the truth about as often as they say, and on the demo it finds what the demo
planted (referrals bring customers who buy again most)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from crm_helpers.analyses.channels import channel_outlook
from crm_helpers.models.btyd import NoRepeatBuyersError
from crm_helpers.models.covariates import BetaGeoCovariateModel

from crm_helpers.store.periods import parse_month

from support import DEMO_END


def _book(rng, groups, *, r=0.9, b=3.0, alpha=None, a=None, days=(100, 700)):
    """A BG/NBD book (days) whose groups have their own alpha and a."""
    n = len(groups)
    T = rng.uniform(*days, n)
    lam = rng.gamma(r, 1 / np.vectorize(alpha.get)(groups))
    p = rng.beta(np.vectorize(a.get)(groups), b)
    x, tx = np.zeros(n), np.zeros(n)
    for i in range(n):
        t = rng.exponential(1 / lam[i])
        while t <= T[i]:
            x[i] += 1
            tx[i] = t
            if rng.random() < p[i]:
                break
            t += rng.exponential(1 / lam[i])
    return x, tx, T


def _truth(t, r, alpha, a, b, rng):
    """A new customer's repeat purchases in their first ``t`` days and in the next ``t``, by brute
    simulation of the BG/NBD story (the G-th purchase, G geometric, is the last)."""
    n = 400_000
    lam, p = rng.gamma(r, 1 / alpha, n), rng.beta(a, b, n)
    last = rng.geometric(p)
    first = np.minimum(rng.poisson(lam * t), last)
    both = np.minimum(first + rng.poisson(lam * t), last)
    return first.mean(), (both - first).mean()


def test_planted_group_effects_are_recovered_and_the_reference_has_none():
    rng = np.random.default_rng(3)
    groups = np.where(rng.random(1500) < 0.5, "A", "B")
    x, tx, T = _book(rng, groups, alpha={"A": 60.0, "B": 20.0}, a={"A": 0.8, "B": 1.6})
    model = BetaGeoCovariateModel().fit(x, tx, T, groups=groups, reference="A")
    assert model.effects_.loc["A"].tolist() == [0.0, 0.0]
    assert model.effects_.loc["B", "purchase"] == pytest.approx(np.log(3), abs=0.25)
    assert model.effects_.loc["B", "dropout"] == pytest.approx(np.log(2), abs=0.35)
    outlook = model.group_outlook(365)
    assert outlook.loc["B", "purchases_low"] > outlook.loc["A", "purchases_high"], "B buys more often: told apart"
    assert outlook.loc["B", "later"] < outlook.loc["B", "purchases"], "the second year loses those who left"


def test_first_year_figures_match_a_brute_simulation_of_the_fitted_parameters():
    rng = np.random.default_rng(5)
    groups = np.where(rng.random(800) < 0.5, "A", "B")
    x, tx, T = _book(rng, groups, alpha={"A": 40.0, "B": 40.0}, a={"A": 0.7, "B": 1.5})
    model = BetaGeoCovariateModel().fit(x, tx, T, groups=groups, reference="A")
    outlook = model.group_outlook(365, draws=0)
    params = model.params_
    for group in ("A", "B"):
        alpha = params["alpha"] * np.exp(-model.effects_.loc[group, "purchase"])
        a = params["a"] * np.exp(model.effects_.loc[group, "dropout"])
        purchases, later = _truth(365, params["r"], alpha, a, params["b"], rng)
        assert outlook.loc[group, "purchases"] == pytest.approx(purchases, rel=0.03)
        assert outlook.loc[group, "later"] == pytest.approx(later, rel=0.03)


@pytest.mark.slow
def test_the_80_percent_range_of_a_group_holds_its_true_first_year_about_eight_times_in_ten():
    rng = np.random.default_rng(11)
    truth_rng = np.random.default_rng(12)
    true_b, _ = _truth(365, 0.9, 20.0, 1.6, 3.0, truth_rng)
    held = 0
    for _ in range(12):
        groups = np.where(rng.random(700) < 0.5, "A", "B")
        x, tx, T = _book(rng, groups, alpha={"A": 60.0, "B": 20.0}, a={"A": 0.8, "B": 1.6})
        row = BetaGeoCovariateModel().fit(x, tx, T, groups=groups, reference="A").group_outlook(365).loc["B"]
        held += row["purchases_low"] <= true_b <= row["purchases_high"]
    # 80 % nominal: 12 books hold it 9.6 times on average; 7 or fewer has a chance of 2 % if it is right
    assert held >= 8, f"the range held the truth in {held} of 12 books"


def test_a_book_without_repeat_buyers_is_refused_in_words():
    with pytest.raises(NoRepeatBuyersError, match="nobody bought twice"):
        BetaGeoCovariateModel().fit([0, 0], [0, 0], [10, 20], groups=["a", "b"])


def test_on_the_demo_referrals_bring_customers_who_buy_again_most(demo_db):
    outlook = channel_outlook(demo_db, parse_month(DEMO_END).end)
    table = outlook.table
    assert outlook.ok and {"referral", "marketplace"} <= set(table.index)
    assert table.loc["referral", "purchases_low"] > table.loc["marketplace", "purchases_high"]
    assert table["purchases"].idxmax() == "referral"
    assert "referral" in outlook.message and "the difference is real" in outlook.message
    assert table["later"].idxmax() == "referral", "referrals keep buying in their second year too"
    assert ((table["later_low"] <= table["later"]) & (table["later"] <= table["later_high"])).all()
