"""Predictive ranges of the purchase models, the weak prior on thin books, the holdout score, and a small coverage run.

The coverage check is the small version of `make bench`'s clv_coverage part
(:mod:`benchmarks.bench_clv_coverage`): books simulated from a model at CDNOW's parameters, fitted
as the workbook fits a store, and the share of books whose realised total falls in the stated 80 %
range.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from benchmarks.bench_clv_coverage import CDNOW_GAMMA_GAMMA, CDNOW_PARAMETERS, book_choice, book_coverage
from benchmarks.synthetic import simulate_book
from crm_helpers.errors import CrmError
from crm_helpers.models import btyd

from test_clv import cdnow_summary  # noqa: F401  (a fixture)


@pytest.fixture(scope="module")
def small_book():
    """400 customers drawn from BG/NBD at CDNOW's parameters, with what they did in the next 39 weeks."""
    return simulate_book("BG/NBD", 400, CDNOW_PARAMETERS["BG/NBD"][1], CDNOW_GAMMA_GAMMA, random_state=7)


def _rfm(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series]:
    return frame["frequency"], frame["recency"], frame["T"]


@pytest.mark.parametrize("model_class", [btyd.BetaGeoModel, btyd.ModifiedBetaGeoModel, btyd.ParetoNBDModel])
def test_purchases_range_holds_the_expected_total_and_each_customer(small_book, model_class):
    s = small_book.summary
    model = model_class(prior_sd=btyd.WEAK_PRIOR_SD).fit(*_rfm(s))
    result = model.purchases_range(39, *_rfm(s), level=0.8, n_draws=400, random_state=3)
    assert result.ok and result.what == "repeat purchases" and result.level == 0.8
    assert result.expected == pytest.approx(float(np.sum(model.expected_purchases(39, *_rfm(s)))))
    assert result.low < result.expected < result.high
    # with the parameters known, the simulated futures average to the model's closed-form expectation
    known = model.with_params(model.params_)
    known.covariance_ = np.zeros((4, 4))
    assert known.purchases_range(39, *_rfm(s), n_draws=1000).totals.mean() == pytest.approx(result.expected, rel=0.02)
    each = result.per_customer
    assert each.index.equals(s.index) and list(each.columns) == ["expected", "low", "high"]
    assert (each["low"] <= each["high"]).all() and (each["low"] >= 0).all()
    assert (each["low"] == np.floor(each["low"])).all()  # purchases are whole numbers
    # a customer's own range is far wider, relative to their expectation, than the book's
    assert (each["high"] - each["low"]).sum() > 3 * (result.high - result.low)
    # reproducible for a seed, other draws for another
    again = model.purchases_range(39, *_rfm(s), n_draws=400, random_state=3)
    assert np.array_equal(again.totals, result.totals)
    assert not np.array_equal(model.purchases_range(39, *_rfm(s), n_draws=400, random_state=4).totals, result.totals)


def test_a_range_includes_chance_not_only_the_parameters(small_book):
    s = small_book.summary
    model = btyd.BetaGeoModel().fit(*_rfm(s))
    both = model.purchases_range(39, *_rfm(s), n_draws=600)
    # with the parameters known exactly, what is left is each customer's own randomness
    known = model.with_params(model.params_)
    known.covariance_ = np.zeros((4, 4))
    chance = known.purchases_range(39, *_rfm(s), n_draws=600)
    assert chance.high - chance.low > 0.5 * (both.high - both.low)
    assert both.high - both.low > chance.high - chance.low
    # and a model's own error widens the range on both sides
    wider = model.purchases_range(39, *_rfm(s), n_draws=600, model_sd=0.2)
    assert wider.low < both.low and wider.high > both.high


def test_spend_range_uses_gamma_gamma(small_book):
    s = small_book.summary
    model = btyd.BetaGeoModel(prior_sd=btyd.WEAK_PRIOR_SD).fit(*_rfm(s))
    repeat = s[s["frequency"] > 0]
    spend = btyd.GammaGammaModel(prior_sd=btyd.WEAK_PRIOR_SD).fit(repeat["frequency"], repeat["monetary_value"])
    result = model.spend_range(39, *_rfm(s), monetary_value=s["monetary_value"], spend_model=spend, n_draws=400)
    expected = (np.asarray(model.expected_purchases(39, *_rfm(s)))
                * np.asarray(spend.expected_average_value(s["frequency"], s["monetary_value"])))
    assert result.what == "spend" and result.expected == pytest.approx(expected.sum())
    assert result.low < result.expected < result.high
    assert result.totals.mean() == pytest.approx(result.expected, rel=0.08)
    # nobody who does not buy spends: a customer's spend range starts at 0 where their purchase range does
    purchases = model.purchases_range(39, *_rfm(s), n_draws=400)
    assert (result.per_customer["low"][purchases.per_customer["high"] == 0] == 0).all()


def test_group_totals_come_from_one_pass_and_add_up(small_book):
    s = small_book.summary
    model = btyd.BetaGeoModel().fit(*_rfm(s))
    sampler = model.future_sampler(39, *_rfm(s), n_draws=200)
    labels = np.where(s["frequency"] > 2, "frequent", np.where(s["frequency"] > 0, "repeat", "once"))
    groups = sampler.totals_by(labels)
    assert set(groups) == {"frequent", "repeat", "once"}
    assert sum(groups.values()) == pytest.approx(sampler.totals())  # the same draws, split by group
    # frequent buyers buy more than one-time buyers in every simulated future, or nearly
    assert np.mean(groups["frequent"] > groups["once"] * (labels == "frequent").sum() / (labels == "once").sum()) > 0.9


def test_a_range_level_outside_0_and_1_is_refused(small_book):
    model = btyd.BetaGeoModel().fit(*_rfm(small_book.summary))
    with pytest.raises(CrmError, match="between 0 and 1"):
        model.purchases_range(39, *_rfm(small_book.summary), level=80)


def _one_dropout_book() -> pd.DataFrame:
    """60 customers who all leave with the same chance after each purchase: BG/NBD's a and b run off to infinity."""
    rng = np.random.default_rng(11)
    n = 60
    T = rng.uniform(30, 52, n)
    lam = rng.gamma(2.0, 1 / 10.0, n)
    x, tx = np.zeros(n), np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > T[i]:
                break
            x[i], tx[i] = x[i] + 1, t
            if rng.random() < 0.1:
                break
    return pd.DataFrame({"frequency": x, "recency": tx, "T": T})


def test_the_weak_prior_keeps_a_thin_book_off_the_bounds():
    book = _one_dropout_book()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = btyd.BetaGeoModel().fit(*_rfm(book))
        held = btyd.BetaGeoModel(prior_sd=btyd.WEAK_PRIOR_SD).fit(*_rfm(book))
    # plain maximum likelihood sends a and b off towards e^25, with standard errors larger than themselves
    assert plain.params_["b"] > 1e4 and plain.standard_errors_["b"] > plain.params_["b"]
    # the posterior mode stays in a sane region and every parameter has a standard error
    assert (held.params_ < 1e3).all() and held.standard_errors_.notna().all()
    # the two agree on what the data do tell: the expected purchases
    assert np.sum(held.expected_purchases(26, *_rfm(book))) == pytest.approx(
        np.sum(plain.expected_purchases(26, *_rfm(book))), rel=0.1)
    # and the range says how little is known: wide, but not anything-goes
    result = held.purchases_range(26, *_rfm(book), n_draws=400)
    assert 0 < result.low < result.expected < result.high < 3 * result.expected


def test_the_prior_leaves_cdnow_as_published(cdnow_summary):
    held = btyd.BetaGeoModel(prior_sd=btyd.WEAK_PRIOR_SD).fit(*_rfm(cdnow_summary))
    # 2,357 customers outweigh the prior: within 1 % of Fader, Hardie & Lee's estimates
    assert held.params_.to_numpy() == pytest.approx([0.243, 4.414, 0.793, 2.426], rel=0.01)


@pytest.mark.parametrize("model_class", [btyd.BetaGeoModel, btyd.ModifiedBetaGeoModel, btyd.ParetoNBDModel])
def test_per_customer_log_likelihoods_add_up_to_the_fit(cdnow_summary, model_class):
    model = model_class().fit(*_rfm(cdnow_summary))
    each = model.log_likelihood_per_customer(*_rfm(cdnow_summary))
    assert each.shape == (len(cdnow_summary),) and (each <= 0).all()
    assert each.sum() == pytest.approx(model.log_likelihood_, rel=1e-10)


def test_the_holdout_score_prefers_the_true_model_on_a_large_book():
    # 4,000 BG/NBD customers: the holdout log-likelihood picks BG/NBD (the full comparison is in `make bench`)
    assert book_choice("BG/NBD", 4000, 0)["choice"]


@pytest.mark.slow
def test_small_coverage_of_the_stated_80_percent_range():
    """25 books of 300 customers from BG/NBD: the 80 % ranges hold the realised totals about 8 times in 10
    (the full run is `make bench`'s clv_coverage part; ±8 points of sampling noise at 25 books)."""
    books = [book_coverage("BG/NBD", 300, seed, n_draws=300) for seed in range(25)]
    purchases = np.mean([b["purchases"] for b in books])
    spend = np.mean([b["spend"] for b in books])
    # the old delta-method range held 58 % at 800 customers: 2 standard errors below 80 % is 0.64
    assert 0.64 <= purchases <= 0.96, purchases
    assert 0.64 <= spend <= 0.96, spend


def _known(model_class: type[btyd.PurchaseModel]) -> btyd.PurchaseModel:
    """The model at CDNOW's parameters with no parameter uncertainty (the truth of the simulated books)."""
    model = model_class()
    model.params_ = pd.Series(CDNOW_PARAMETERS[model.name][1], index=model.param_names)
    model.covariance_ = np.zeros((4, 4))
    return model


def _known_spend() -> btyd.GammaGammaModel:
    spend = btyd.GammaGammaModel()
    spend.params_ = pd.Series(CDNOW_GAMMA_GAMMA, index=spend.param_names)
    spend.covariance_ = np.zeros((3, 3))
    return spend


SLOW_PARETO = pytest.mark.slow  # Pareto/NBD's P(alive) under 100 parameter draws and its closed form: ~25 s at load


@pytest.mark.parametrize("model_class", [btyd.BetaGeoModel, btyd.ModifiedBetaGeoModel,
                                         pytest.param(btyd.ParetoNBDModel, marks=SLOW_PARETO)])
def test_the_simulated_futures_average_to_the_closed_form_to_a_fraction_of_a_percent(model_class):
    """At 25,000 customers the 80 % range is about ±2.5 % wide, so a 1 % bias of the simulated futures
    would cost a third of its coverage: with the parameters known, 250 futures of 6,000 customers
    average to the closed-form expected total within 0.6 % (their standard error is about 0.2 %)."""
    model = _known(model_class)
    s = simulate_book(model.name, 6_000, CDNOW_PARAMETERS[model.name][1], CDNOW_GAMMA_GAMMA, random_state=11).summary
    bought = model.purchases_range(39, *_rfm(s), n_draws=250, random_state=5)
    assert bought.totals.mean() == pytest.approx(bought.expected, rel=0.006)
    spent = model.spend_range(39, *_rfm(s), monetary_value=s["monetary_value"], spend_model=_known_spend(),
                              n_draws=250, random_state=5)
    assert spent.totals.mean() == pytest.approx(spent.expected, rel=0.006)


@pytest.mark.parametrize("name", ["BG/NBD", "MBG/NBD", pytest.param("Pareto/NBD", marks=SLOW_PARETO)])
def test_the_bench_books_agree_with_the_models_they_are_drawn_from(name):
    """The coverage bench's books (benchmarks.synthetic.simulate_book) and the models must describe the
    same customers: on 400,000 customers drawn at CDNOW's parameters, what they buy and spend in the
    39 weeks after calibration equals the models' closed-form conditional expectation given each
    customer's history within 1.5 % (standard error about 0.4 %), for one-time and repeat buyers alike.
    A generator that merged purchases, shifted the horizon or drew spend per customer would miss."""
    model = _known(CDNOW_PARAMETERS[name][0])
    book = simulate_book(name, 400_000, CDNOW_PARAMETERS[name][1], CDNOW_GAMMA_GAMMA, random_state=3)
    s = book.summary
    expected = np.asarray(model.expected_purchases(book.horizon, *_rfm(s)))
    per_purchase = np.asarray(_known_spend().expected_average_value(s["frequency"], s["monetary_value"]))
    for group in (s["frequency"].to_numpy() == 0, s["frequency"].to_numpy() > 0):
        assert book.holdout_purchases[group].sum() == pytest.approx(expected[group].sum(), rel=0.015)
    assert book.holdout_spend.sum() == pytest.approx((expected * per_purchase).sum(), rel=0.015)
