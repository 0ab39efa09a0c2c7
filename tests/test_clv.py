"""Customer lifetime value: the published CDNOW estimates, hand-computed fixtures, planted signals, edge cases."""

from __future__ import annotations

import importlib.util
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import betaln, gammaln

from crm_helpers.models import btyd
from crm_helpers.analyses import clv
from crm_helpers.report import sentences
from crm_helpers.report.headlines import read as read_headlines
from crm_helpers.store.connection import memory_db, open_db

from support import DEMO_MONTH_END, DEMO_MONTH_START, run_notebook

AS_OF = DEMO_MONTH_END


# ------------------------------------------------------------------------------------------
# CDNOW: the data of Fader, Hardie & Lee (2005), shipped inside the lifetimes wheel (never imported)
# ------------------------------------------------------------------------------------------


def _cdnow_dir() -> Path:
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("CDNOW data absent: the lifetimes wheel is not installed (make setup installs it, --no-deps)")
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets"
    if not (folder / "cdnow_customers_summary.csv").exists():
        pytest.skip(f"CDNOW data absent: {folder}/cdnow_customers_summary.csv not found")
    return folder


def _sig3(value: float) -> float:
    return float(f"{value:.3g}")


@pytest.fixture(scope="module")
def cdnow_summary() -> pd.DataFrame:
    """2,357 customers, 39-week calibration: x, t_x, T in weeks (FHL 2005)."""
    return pd.read_csv(_cdnow_dir() / "cdnow_customers_summary.csv")


@pytest.fixture(scope="module")
def cdnow_spend() -> pd.DataFrame:
    """The same customers with zbar, the mean value of their calibration repeat purchases (FHL "RFM and CLV")."""
    return pd.read_csv(_cdnow_dir() / "cdnow_customers_summary_with_transactions.csv")


@pytest.fixture(scope="module")
def cdnow_transactions() -> pd.DataFrame:
    """The raw CDNOW sample: customer, date, CDs bought, dollar value (1997-01-01 to 1998-06-30)."""
    path = _cdnow_dir() / "CDNOW_sample.txt"
    if not path.exists():
        pytest.skip(f"CDNOW data absent: {path} not found")
    frame = pd.read_csv(path, sep=r"\s+", header=None, names=["id", "customer", "date", "cds", "value"],
                        dtype={"date": str})
    frame["date"] = pd.to_datetime(frame["date"], format="%Y%m%d")
    return frame


@pytest.fixture(scope="module")
def cdnow_bgnbd(cdnow_summary) -> clv.BetaGeoModel:
    return clv.BetaGeoModel().fit(cdnow_summary["frequency"], cdnow_summary["recency"], cdnow_summary["T"])


def test_bgnbd_reproduces_the_published_cdnow_estimates(cdnow_bgnbd):
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # FHL 2005, "Counting your customers"
    for name, value in published.items():
        assert _sig3(cdnow_bgnbd.params_[name]) == _sig3(value), name
    assert cdnow_bgnbd.log_likelihood_ == pytest.approx(-9582.4, abs=0.05)  # the paper's LL
    assert cdnow_bgnbd.n_customers_ == 2357
    # standard errors as lifetimes reports them for this fit: 0.013, 0.378, 0.186, 0.705
    assert cdnow_bgnbd.standard_errors_.round(3).tolist() == pytest.approx([0.013, 0.378, 0.186, 0.705], abs=0.002)


def test_gamma_gamma_reproduces_the_published_cdnow_estimates(cdnow_spend):
    repeat = cdnow_spend[cdnow_spend["x"] > 0]
    model = clv.GammaGammaModel().fit(repeat["x"], repeat["zbar"])
    published = {"p": 6.25, "q": 3.74, "v": 15.44}  # Fader, Hardie & Lee 2005, "RFM and CLV"
    for name, value in published.items():
        assert _sig3(model.params_[name]) == _sig3(value), name
    assert model.n_customers_ == 946
    assert model.log_likelihood_ == pytest.approx(-4055.92, abs=0.05)  # as CLVTools' correctness test
    # one-time buyers are skipped by fit, so fitting on everyone gives the same answer
    everyone = clv.GammaGammaModel().fit(cdnow_spend["x"], cdnow_spend["zbar"])
    assert everyone.params_.to_numpy() == pytest.approx(model.params_.to_numpy())


def test_summary_of_the_raw_cdnow_sample_matches_the_published_summary(cdnow_transactions, cdnow_spend):
    summary = clv.summary_from_transactions(
        cdnow_transactions, "customer", datetime_col="date", monetary_value_col="value", observation_period_end="1997-09-30",
        freq="D", freq_multiplier=7,
    ).sort_index()
    published = cdnow_spend.set_index("ID").sort_index()
    assert summary.index.tolist() == published.index.tolist()
    assert (summary["frequency"].to_numpy() == published["x"].to_numpy()).all()
    # the published file rounds to two decimals
    assert np.abs(summary["recency"].to_numpy() - published["t_x"].to_numpy()).max() <= 0.005 + 1e-9
    assert np.abs(summary["T"].to_numpy() - published["T"].to_numpy()).max() <= 0.005 + 1e-9
    assert np.abs(summary["monetary_value"].to_numpy() - published["zbar"].to_numpy()).max() <= 0.005 + 1e-9


def test_calibration_split_of_the_raw_sample_fits_the_published_model(cdnow_transactions):
    split = clv.summary_from_transactions(
        cdnow_transactions, "customer", datetime_col="date", observation_period_end="1998-06-30", freq="D",
        freq_multiplier=7, calibration_period_end="1997-09-30",
    )
    assert len(split) == 2357 and (split["duration_holdout"] == 39).all()
    model = clv.BetaGeoModel().fit(split["frequency_cal"], split["recency_cal"], split["T_cal"])
    assert [_sig3(v) for v in model.params_] == [0.243, 4.41, 0.793, 2.43]
    predicted = model.expected_purchases(39, split["frequency_cal"], split["recency_cal"], split["T_cal"])
    by_group = pd.DataFrame({"group": split["frequency_cal"].clip(upper=7), "actual": split["frequency_holdout"],
                             "predicted": predicted}).groupby("group").mean()
    # FHL 2005, figure 5: conditional expectations track the holdout within about a third per group
    assert by_group["predicted"].is_monotonic_increasing
    assert ((by_group["predicted"] - by_group["actual"]).abs() <= 0.35 * by_group["actual"] + 0.05).all()


# ------------------------------------------------------------------------------------------
# The likelihoods: gradients, unique-row weighting, an independent per-row formula
# ------------------------------------------------------------------------------------------


def _naive_bgnbd_ll(theta, x, tx, t_cap) -> float:
    """FHL 2005 eq. 6 written out row by row, as in the paper."""
    r, alpha, a, b = theta
    total = 0.0
    for xi, ti, Ti in zip(x, tx, t_cap):
        base = (gammaln(r + xi) - gammaln(r) + r * np.log(alpha) + betaln(a, b + xi) - betaln(a, b))
        term = (alpha + Ti) ** -(r + xi)
        if xi > 0:
            term += a / (b + xi - 1) * (alpha + ti) ** -(r + xi)
        total += base + np.log(term)
    return total


@pytest.fixture(scope="module")
def small_rfm() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    t_cap = rng.integers(5, 60, 300).astype(float)
    x = rng.poisson(2, 300).astype(float)
    tx = np.where(x > 0, np.floor(t_cap * rng.random(300)), 0.0)
    return x, tx, t_cap


def test_bgnbd_likelihood_matches_the_paper_formula_row_by_row(small_rfm):
    x, tx, t_cap = small_rfm
    theta = np.array([0.7, 9.0, 0.6, 2.5])
    rows = btyd._RfmRows.build(x, tx, t_cap, np.ones_like(x))
    assert btyd._beta_geo_loglik_grad(theta, rows)[0] == pytest.approx(_naive_bgnbd_ll(theta, x, tx, t_cap), rel=1e-10)


@pytest.mark.parametrize("theta", [[0.7, 9.0, 0.6, 2.5], [2.0, 0.5, 1.5, 0.8], [0.05, 40.0, 0.2, 9.0]])
def test_bgnbd_analytic_gradient_matches_finite_differences(small_rfm, theta):
    x, tx, t_cap = small_rfm
    rows = btyd._RfmRows.build(x, tx, t_cap, np.ones_like(x))
    theta = np.array(theta)
    analytic = btyd._beta_geo_loglik_grad(theta, rows)[1]
    assert analytic == pytest.approx(btyd._numeric_gradient(lambda p: btyd._beta_geo_loglik_grad(p, rows)[0], theta), rel=1e-5)


@pytest.mark.parametrize("theta", [[6.25, 3.74, 15.44], [0.8, 1.5, 3.0]])
def test_gamma_gamma_analytic_gradient_matches_finite_differences(theta):
    rng = np.random.default_rng(5)
    x = rng.integers(1, 9, 200).astype(float)
    m = rng.gamma(3.0, 10.0, 200)
    rows = btyd._SpendRows.build(x, m, np.ones_like(x))
    theta = np.array(theta)
    analytic = btyd._gg_loglik_grad(theta, rows)[1]
    assert analytic == pytest.approx(btyd._numeric_gradient(lambda p: btyd._gg_loglik_grad(p, rows)[0], theta), rel=1e-5)


def test_weights_on_unique_rows_give_the_same_fit_as_repeated_rows(cdnow_summary):
    grouped = cdnow_summary.groupby(["frequency", "recency", "T"]).size().reset_index(name="n")
    assert len(grouped) < len(cdnow_summary)
    weighted = clv.BetaGeoModel().fit(grouped["frequency"], grouped["recency"], grouped["T"], weights=grouped["n"])
    plain = clv.BetaGeoModel().fit(cdnow_summary["frequency"], cdnow_summary["recency"], cdnow_summary["T"])
    assert weighted.params_.to_numpy() == pytest.approx(plain.params_.to_numpy(), rel=1e-5)


def _simulate(n: int, seed: int, r=0.6, alpha=60.0, a=0.4, b=2.0, p=3.0, q=4.0, v=40.0):
    """Customers drawn from BG/NBD + Gamma-Gamma with known parameters (times in whole days)."""
    rng = np.random.default_rng(seed)
    lam, drop = rng.gamma(r, 1 / alpha, n), rng.beta(a, b, n)
    t_cap = rng.integers(1, 731, n).astype(float)
    events = rng.poisson(lam * t_cap)
    x = np.minimum(rng.geometric(drop), events).astype(float)  # leaves right after the K-th repeat purchase
    tx = np.zeros(n)
    has = x > 0
    tx[has] = np.floor(t_cap[has] * rng.beta(x[has], events[has] - x[has] + 1))
    nu = rng.gamma(q, 1 / v, n)
    m = np.zeros(n)
    m[has] = rng.gamma(p * x[has], 1 / nu[has]) / x[has]
    return x, tx, t_cap, m


def test_known_parameters_are_recovered_from_simulated_customers():
    x, tx, t_cap, m = _simulate(40_000, seed=11)
    bg = clv.BetaGeoModel().fit(x, tx, t_cap)
    gg = clv.GammaGammaModel().fit(x, m)
    for model, truth in ((bg, [0.6, 60.0, 0.4, 2.0]), (gg, [3.0, 4.0, 40.0])):
        z = (model.params_.to_numpy() - truth) / model.standard_errors_.to_numpy()
        assert np.abs(z).max() < 4, (model.params_, model.standard_errors_)


def test_one_dropout_chance_for_everybody_is_named_not_reported_as_a_and_b():
    """Customers who all share a 5% dropout chance: the fit's spread collapses and it says so."""
    x, tx, t_cap, _ = _simulate(20_000, seed=3, a=5e4, b=95e4)
    with pytest.warns(clv.CommonDropoutWarning, match=r"hardly differ .*: [45]\.\d% ± "):
        bg = clv.BetaGeoModel().fit(x, tx, t_cap)
    r, alpha, a, b = bg.params_
    assert a / (a + b) == pytest.approx(0.05, abs=0.01)


def test_cdnow_like_spread_gives_no_common_dropout_warning():
    x, tx, t_cap, _ = _simulate(20_000, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", clv.CommonDropoutWarning)
        clv.BetaGeoModel().fit(x, tx, t_cap)


# ------------------------------------------------------------------------------------------
# The summary: hand-computed fixtures
# ------------------------------------------------------------------------------------------


@pytest.fixture
def transactions() -> pd.DataFrame:
    rows = [
        ("A", "2026-01-01", 10.0), ("A", "2026-01-01", 5.0),  # two orders the same day: one purchase of 15
        ("A", "2026-01-11", 20.0), ("A", "2026-02-01", 30.0),
        ("B", "2026-01-15", 50.0),  # one purchase only
        ("C", "2026-02-10", 7.0), ("C", "2026-03-05", 9.0),  # first purchase after the calibration end
        ("D", "2026-01-31", 12.0),  # on the calibration end: in the calibration
        ("D", "2026-03-31", 8.0),  # on the observation end: counted
        ("D", "2026-04-02", 99.0),  # after the observation end: ignored
    ]
    return pd.DataFrame(rows, columns=["customer_id", "date", "amount"])


def test_daily_summary_by_hand(transactions):
    s = clv.summary_from_transactions(transactions, "customer_id", datetime_col="date", monetary_value_col="amount",
                                      observation_period_end="2026-03-31")
    assert s.index.name == "customer_id"
    assert list(s.columns) == ["frequency", "recency", "T", "monetary_value"]
    assert s.loc["A"].tolist() == [2, 31, 89, 25]  # Jan 1 -> Jan 11, Feb 1; T to Mar 31; (20 + 30) / 2
    assert s.loc["B"].tolist() == [0, 0, 75, 0]
    assert s.loc["C"].tolist() == [1, 23, 49, 9]
    assert s.loc["D"].tolist() == [1, 59, 59, 8]


def test_weekly_and_monthly_periods_by_hand(transactions):
    weekly = clv.summary_from_transactions(transactions, "customer_id", datetime_col="date", monetary_value_col="amount",
                                           observation_period_end="2026-03-31", freq="W")
    # Monday-to-Sunday weeks: Jan 1 (Thu) week 0, Jan 11 (Sun) week 1, Feb 1 (Sun) week 4, Mar 31 (Tue) week 13
    assert weekly.loc["A"].tolist() == [2, 4, 13, 25]
    monthly = clv.summary_from_transactions(transactions, "customer_id", datetime_col="date", monetary_value_col="amount",
                                            observation_period_end="2026-03-31", freq="M")
    assert monthly.loc["A"].tolist() == [1, 1, 2, 30]  # January's 35 is the first purchase, February's 30 repeats
    assert monthly.loc["D"].tolist() == [1, 2, 2, 8]
    in_weeks = clv.summary_from_transactions(transactions, "customer_id", datetime_col="date", observation_period_end="2026-03-31",
                                             freq="D", freq_multiplier=7)
    assert in_weeks.loc["A", "recency"] == pytest.approx(31 / 7)


def test_calibration_and_holdout_by_hand(transactions):
    s = clv.summary_from_transactions(transactions, "customer_id", datetime_col="date", monetary_value_col="amount",
                                      observation_period_end="2026-03-31", calibration_period_end="2026-01-31")
    assert list(s.columns) == ["frequency_cal", "recency_cal", "T_cal", "monetary_value_cal", "frequency_holdout",
                               "monetary_value_holdout", "duration_holdout"]
    assert sorted(s.index) == ["A", "B", "D"]  # C first bought after the calibration end
    assert s.loc["A"].tolist() == [1, 10, 30, 20, 1, 30, 59]
    assert s.loc["B"].tolist() == [0, 0, 16, 0, 0, 0, 59]
    assert s.loc["D"].tolist() == [0, 0, 0, 0, 1, 8, 59]


def test_summary_refuses_bad_input(transactions):
    bad = transactions.assign(amount=transactions["amount"].where(transactions["customer_id"] != "B", -5.0))
    with pytest.raises(clv.NegativeValueError, match="negative"):
        clv.summary_from_transactions(bad, "customer_id", datetime_col="date", monetary_value_col="amount")
    with pytest.raises(clv.ClvError, match="no column 'when'"):
        clv.summary_from_transactions(transactions, "customer_id", datetime_col="when")
    with pytest.raises(clv.ClvError, match="freq"):
        clv.summary_from_transactions(transactions, "customer_id", datetime_col="date", freq="Q")
    with pytest.raises(clv.ClvError, match="before the observation end"):
        clv.summary_from_transactions(transactions, "customer_id", datetime_col="date", observation_period_end="2026-01-31",
                                      calibration_period_end="2026-02-28")
    with pytest.raises(clv.ClvError, match="no transactions"):
        clv.summary_from_transactions(transactions.iloc[:0], "customer_id", datetime_col="date")
    before = clv.summary_from_transactions(transactions, "customer_id", datetime_col="date", monetary_value_col="amount",
                                           observation_period_end="2025-12-31")
    assert before.empty and list(before.columns) == ["frequency", "recency", "T", "monetary_value"]
    assert issubclass(clv.ClvError, ValueError)


# ------------------------------------------------------------------------------------------
# Models: predictions and errors
# ------------------------------------------------------------------------------------------


def test_predictions_behave(cdnow_bgnbd):
    m = cdnow_bgnbd
    # a customer seen only at their first purchase (x = 0, T = 0) is a new customer: eq. 10 reduces to eq. 9
    assert m.expected_purchases(39, [0], [0], [0])[0] == pytest.approx(m.expected_purchases_new_customer(39))
    assert m.expected_purchases(0, [3], [20], [38])[0] == pytest.approx(0)
    grows = m.expected_purchases(np.array(10.0), [3], [20], [38])[0] < m.expected_purchases(20, [3], [20], [38])[0]
    assert grows
    alive = m.p_alive([0, 3, 3, 3], [0, 5, 20, 38], [38, 38, 38, 38])
    assert alive[0] == 1.0 and alive[1] < alive[2] < alive[3] <= 1.0
    series = m.p_alive(pd.Series([2.0], index=["c1"]), pd.Series([30.43]), pd.Series([38.86]))
    assert series.index.tolist() == ["c1"] and series.iloc[0] == pytest.approx(0.7266, abs=1e-3)


def test_models_refuse_what_cannot_be_fitted():
    with pytest.raises(clv.NoRepeatBuyersError, match="more than once"):
        clv.BetaGeoModel().fit([0, 0, 0], [0, 0, 0], [10, 20, 30])
    with pytest.raises(clv.NegativeValueError):
        clv.BetaGeoModel().fit([1, 2], [-1, 3], [10, 10])
    with pytest.raises(clv.ClvError, match="cannot exceed T"):
        clv.BetaGeoModel().fit([1, 2], [12, 3], [10, 10])
    with pytest.raises(clv.ClvError, match="fit the model first"):
        clv.BetaGeoModel().p_alive([1], [1], [2])
    with pytest.raises(clv.NoRepeatBuyersError):
        clv.GammaGammaModel().fit([0, 0], [0, 0])
    with pytest.raises(clv.ClvError, match="positive spend"):
        clv.GammaGammaModel().fit([1, 2, 3], [10.0, 0.0, 12.0])
    with pytest.raises(clv.NegativeValueError):
        clv.GammaGammaModel().fit([1, 2], [10.0, -3.0])


def test_gamma_gamma_warns_when_spend_follows_frequency():
    rng = np.random.default_rng(2)
    x = rng.integers(1, 20, 400).astype(float)
    nu = rng.gamma(4.0, 1 / 40.0, 400) / x  # frequent buyers spend more per purchase
    m = rng.gamma(3.0 * x, 1 / nu) / x
    with pytest.warns(clv.GammaGammaAssumptionWarning, match="correlated"):
        model = clv.GammaGammaModel().fit(x, m)
    assert model.frequency_monetary_correlation_ > 0.3
    p, q, v = model.params_
    assert model.expected_average_value([0], [0])[0] == pytest.approx(p * v / (q - 1))  # the population mean


# ------------------------------------------------------------------------------------------
# CLV formulas by hand
# ------------------------------------------------------------------------------------------


def test_the_articles_discounted_formula_by_hand():
    # 1000 a year for 5 years at 10%: 909.09 + 826.45 + 751.31 + 683.01 + 620.92 = 3790.79
    assert clv.constant_profit_clv(1000, 0.10, years=5) == pytest.approx(3790.79, abs=0.01)
    assert clv.constant_profit_clv(np.array([1000.0, 0.0]), 0.0, years=3).tolist() == [3000.0, 0.0]
    with pytest.raises(clv.ClvError):
        clv.constant_profit_clv(1000, 0.1, years=0)


def test_subscription_estimate_by_hand():
    assert clv.subscription_clv(50.0, 0.05) == pytest.approx(1000.0)  # 50 a month for 20 months on average
    with pytest.raises(clv.ClvError, match="infinite"):
        clv.subscription_clv(50.0, 0.0)
    assert clv.monthly_rate(0.10) == pytest.approx(1.1 ** (1 / 12) - 1)


def test_discounted_clv_sums_monthly_expected_purchases(cdnow_bgnbd):
    m = cdnow_bgnbd
    x, tx, t_cap = np.array([2.0, 0.0, 7.0]), np.array([30.43, 0.0, 35.0]), np.array([38.86, 38.86, 38.86])
    value = np.array([20.0, 30.0, 40.0])
    weeks = clv.DAYS_PER_MONTH / 7
    got = clv.customer_lifetime_value(m, x, tx, t_cap, value, horizon_months=3, annual_discount_rate=0.12,
                                      margin=0.4, freq="W")
    i = 1.12 ** (1 / 12) - 1
    cumulative = [np.zeros(3)] + [m.expected_purchases(k * weeks, x, tx, t_cap) for k in (1, 2, 3)]
    expected = 0.4 * value * sum((cumulative[k] - cumulative[k - 1]) / (1 + i) ** k for k in (1, 2, 3))
    assert got == pytest.approx(expected, rel=1e-9)
    undiscounted = clv.customer_lifetime_value(m, x, tx, t_cap, value, horizon_months=3, annual_discount_rate=0.0,
                                               margin=1.0, freq="W")
    assert undiscounted == pytest.approx(value * cumulative[3], rel=1e-9)
    with pytest.raises(clv.ClvError, match="margin"):
        clv.customer_lifetime_value(m, x, tx, t_cap, value, horizon_months=3, annual_discount_rate=0.1, margin=30)


# ------------------------------------------------------------------------------------------
# The demo business: planted signals
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_analysis(demo_db_path) -> clv.ClvAnalysis:
    return clv.analyse_customers(open_db(demo_db_path), AS_OF, horizon_months=36, annual_discount_rate=0.1,
                                 margin=0.3)


def test_demo_values_vip_above_regular_above_occasional(demo_analysis, demo_business):
    assert demo_analysis.ok, demo_analysis.message
    truth = demo_business.truth.set_index("customer_id")
    per_type = demo_analysis.customers.join(truth)["clv"].groupby(truth["customer_type"]).mean()
    assert per_type["vip"] > 2 * per_type["regular"] > 2 * per_type["occasional"]
    assert demo_analysis.currency == "EUR"
    assert demo_analysis.margin_source.startswith("measured")  # demo orders carry their cost
    assert 0.4 < demo_analysis.margin_rate < 0.8
    assert demo_analysis.total_clv == pytest.approx(demo_analysis.customers["clv"].sum())


def test_demo_referred_customers_are_worth_most(demo_analysis):
    """Planted: referrals bring the most VIPs, marketplace the fewest (docs/demo-data.md)."""
    mean_clv = clv.value_by_group(demo_analysis, "acquisition_channel")["mean_clv"]
    assert mean_clv.idxmax() == "referral" and mean_clv.idxmin() == "marketplace", mean_clv.round(0).to_dict()


def test_demo_expected_purchases_follow_the_true_purchase_rates(demo_analysis, demo_business):
    truth = demo_business.truth.set_index("customer_id")
    customers = demo_analysis.customers.join(truth)
    per_type = customers.groupby("customer_type")["expected_purchases"].mean()
    # planted: 1.1, 0.6 and 0.12 orders a month; occasional buyers also leave soonest
    assert per_type["vip"] > per_type["regular"] > 2 * per_type["occasional"]
    # Over everybody, VIPs and regulars come out close: a VIP leaves with 4 % chance after each of
    # ~1.1 purchases a month, so fewer of them are still there (expected purchases = rate × still
    # there). The planted rates show among the repeat buyers the model holds alive (P(alive) ≥ 0.8).
    alive = customers[(customers["frequency"] > 0) & (customers["p_alive"] >= 0.8)]
    per_type = alive.groupby("customer_type")["expected_purchases"].mean()
    assert per_type["vip"] > 1.2 * per_type["regular"] > 1.2 * 2 * per_type["occasional"]
    # ranks follow the planted rates far beyond chance (231 such buyers in the default demo), and
    # strongly: the chosen model (Pareto/NBD on this demo) gives 0.57, BG/NBD gave 0.6
    from scipy import stats

    rho, p_value = stats.spearmanr(alive["expected_purchases"], alive["purchase_rate"], alternative="greater")
    assert p_value < 1e-6 and rho > 0.5


def test_demo_probably_lost_are_repeat_buyers_silent_for_long(demo_analysis):
    lost = demo_analysis.customers[demo_analysis.customers["probably_lost"]]
    assert demo_analysis.n_probably_lost == len(lost) > 0
    assert (lost["frequency"] > 0).all() and (lost["p_alive"] < 0.5).all()
    customers = demo_analysis.customers
    others = customers[(customers["frequency"] > 0) & ~customers["probably_lost"]]
    silence = (pd.Timestamp(AS_OF) - pd.to_datetime(lost["last_purchase"])).dt.days
    silence_others = (pd.Timestamp(AS_OF) - pd.to_datetime(others["last_purchase"])).dt.days
    assert silence.median() > 2 * silence_others.median()
    assert list(demo_analysis.probably_lost(5)["revenue_to_date"]) == sorted(
        demo_analysis.probably_lost(5)["revenue_to_date"], reverse=True)


def test_demo_warns_that_vips_spend_more_per_purchase(demo_analysis):
    # VIPs buy both more often and bigger baskets: Gamma-Gamma's independence assumption fails
    assert any("correlated" in note for note in demo_analysis.notes)
    assert demo_analysis.spend_model.frequency_monetary_correlation_ > clv.GG_CORRELATION_LIMIT


@pytest.fixture(scope="module")
def demo_holdout(demo_db_path) -> clv.HoldoutValidation:
    return clv.holdout_validation(open_db(demo_db_path), AS_OF)


def test_demo_holdout_compares_the_three_models_on_whole_years(demo_holdout):
    result = demo_holdout
    assert result.ok, result.message
    # two years of demo history: a 12-month holdout after a 12-month calibration, fair to seasons
    assert result.holdout_days == 365 and "every season" in result.window
    assert list(result.aggregate.index) == ["BG/NBD", "MBG/NBD", "Pareto/NBD"]
    for name, row in result.aggregate.iterrows():
        # the groups of 5 and 6 repeat purchases hold 7 and 13 customers: the actual means are noisy there
        assert result.by_frequency[name].corr(result.by_frequency["actual"]) >= 0.8, name
        # at the maximum-likelihood fit, individual forecasts add up to the population curve's forecast
        assert row["predicted_without_history"] == pytest.approx(row["predicted_repeat_purchases"], rel=0.05), name
        assert row["actual_repeat_purchases"] == result.per_customer["actual"].sum()
    # the choice is the best holdout score over every origin (three a quarter apart on two years of history)
    scores = result.aggregate["holdout_log_likelihood"]
    assert scores[result.chosen] == scores.max() and result.runner_up != result.chosen
    assert len(result.origins) == 3 and result.origins[0] == result.calibration_end
    assert [(a - b).days for a, b in zip(result.origins, result.origins[1:])] == [91, 91]
    assert result.aggregate["origins_won"].sum() == 3
    assert all(len(e) == 3 and e[0] == pytest.approx(result.error(name)) for name, e in result.errors.items())
    assert abs(result.aggregate["error_pct"][result.chosen]) < 10  # the issue measured +35% to +42% on a 6-month window
    assert result.error() == pytest.approx(result.aggregate.loc[result.chosen, "error_pct"] / 100)
    assert set(result.long()["kind"]) == {"actual", "BG/NBD", "MBG/NBD", "Pareto/NBD"}
    sentence = sentences.holdout_error(result)
    assert result.chosen in sentence and f"{abs(result.error()):.0%}" in sentence


def _planted_expected_purchases(split: pd.DataFrame, truth: pd.DataFrame, days: int) -> pd.Series:
    """What the generator's planted rates make each customer buy in the holdout, given their calibration.

    The demo (``demo.py``) gives each buyer a purchase rate (per month, thinned by the seasons)
    and a chance to leave after every purchase. Over whole years the seasons average out, so a
    customer alive at the calibration end buys (1 − e^(−λ·d·p)) / p times in d days (purchases
    until the first "leave"), and P(alive) = (1−p)·e^(−λ·gap) / ((1−p)·e^(−λ·gap) + p), with gap
    the days since their last purchase. Campaign-driven extra orders are left out.
    """
    from crm_helpers.demo import SEASONALITY

    planted = truth.loc[split.index]
    lam = planted["purchase_rate"].to_numpy() / 30.4 * np.mean(list(SEASONALITY.values()))
    p = planted["dropout_p"].to_numpy()
    stay = (1 - p) * np.exp(-lam * (split["T_cal"] - split["recency_cal"]).to_numpy())
    alive = stay / (stay + p)
    return pd.Series(alive * -np.expm1(-lam * days * p) / p, index=split.index)


def test_demo_models_follow_the_planted_truth_and_the_choice_is_close_to_the_best(demo_holdout, demo_business):
    truth = demo_business.truth.set_index("customer_id")
    customers = demo_holdout.per_customer
    planted = _planted_expected_purchases(customers, truth, demo_holdout.holdout_days)
    # the planted truth is close to what happened (the campaigns add the rest)
    assert planted.sum() == pytest.approx(customers["actual"].sum(), rel=0.1)
    types = truth.loc[customers.index, "customer_type"]
    planted_per_type = planted.groupby(types).mean()
    off_total = {}
    for name in demo_holdout.aggregate.index:
        per_type = customers[name].groupby(types).mean()
        # every model ranks the planted types as planted: VIPs buy most, occasional buyers least
        assert per_type["vip"] > per_type["regular"] > per_type["occasional"], name
        assert planted_per_type["vip"] > planted_per_type["regular"] > planted_per_type["occasional"]
        off_total[name] = float(np.mean((customers[name] - planted) ** 2))
    # the demo's generator is none of the three models and the holdout calls them close (a near coin toss):
    # the chosen model's per-customer predictions are then about as close to the planted truth as the best's
    assert demo_holdout.margin_z < 1
    assert off_total[demo_holdout.chosen] <= 1.1 * min(off_total.values()), off_total


def test_demo_analysis_uses_the_chosen_model_and_gives_every_value_a_range(demo_analysis, demo_holdout):
    assert demo_analysis.model_name == demo_holdout.chosen
    assert type(demo_analysis.transaction_model).name == demo_holdout.chosen
    c = demo_analysis.customers
    # each customer's range is where their own profit falls 8 times in 10: from 0 for one who may not buy
    assert (c["clv_low"] >= 0).all() and (c["clv_low"] <= c["clv_high"]).all()
    top = demo_analysis.top_by_clv(15)
    assert ((top["clv_low"] < top["clv"]) & (top["clv"] < top["clv_high"])).all()
    assert (c.loc[c["expected_purchases"] < 0.05, "clv_low"] == 0).all()
    low, high = demo_analysis.total_clv_low, demo_analysis.total_clv_high
    assert low < demo_analysis.total_clv < high
    # the model's own error at the holdout origins widens the range on both sides
    assert demo_analysis.model_sd == pytest.approx(clv.model_error_sd(demo_holdout.errors[demo_holdout.chosen]))
    assert demo_analysis.model_sd > 0
    assert high - low < demo_analysis.total_clv  # informative, not "anything goes"
    assert demo_analysis.likely_total() == f"likely {low:,.0f} to {high:,.0f} EUR"


def test_model_error_sd_by_hand():
    # 25 % too many at one origin, 20 % too few at another: ln 1.25 = −ln 0.8, so the sd is ln 1.25
    assert clv.model_error_sd([0.25, -0.2]) == pytest.approx(np.log(1.25))
    assert clv.model_error_sd([]) == 0.0 and clv.model_error_sd([np.nan]) == 0.0


def test_clv_sampler_centres_on_the_expected_clv_and_scales_with_the_margin(cdnow_bgnbd, cdnow_spend):
    repeat = cdnow_spend[cdnow_spend["x"] > 0]
    gg = clv.GammaGammaModel().fit(repeat["x"], repeat["zbar"])
    summary = pd.DataFrame({"frequency": cdnow_spend["x"], "recency": cdnow_spend["t_x"], "T": cdnow_spend["T"],
                            "monetary_value": cdnow_spend["zbar"]}).head(400)
    summary["T"] *= 7  # weeks to days, as the store's summaries
    summary["recency"] *= 7
    weekly = cdnow_bgnbd.with_params(cdnow_bgnbd.params_.to_numpy() * [1, 7, 1, 1])
    weekly.covariance_ = cdnow_bgnbd.covariance_ * np.outer([1, 7, 1, 1], [1, 7, 1, 1])
    value = gg.expected_average_value(summary["frequency"], summary["monetary_value"])
    settings = {"horizon_months": 12, "annual_discount_rate": 0.1}
    expected = np.asarray(clv.customer_lifetime_value(weekly, summary["frequency"], summary["recency"],
                                                      summary["T"], value, margin=0.5, **settings))
    full = clv.clv_sampler(weekly, gg, summary=summary, value=value, margin=0.5, **settings)
    half = clv.clv_sampler(weekly, gg, summary=summary, value=value, margin=0.25, **settings)
    totals = full.totals()
    # the simulated futures average to the expected CLV (up to the draws' noise and the parameters' spread)
    assert totals.mean() == pytest.approx(expected.sum(), rel=0.05)
    low, high = np.quantile(totals, [0.1, 0.9])
    assert low < expected.sum() < high
    assert half.totals() == pytest.approx(totals / 2)  # the same draws, half the margin
    # the model's own error widens the range on both sides
    wider = clv.clv_sampler(weekly, gg, summary=summary, value=value, margin=0.5, model_sd=0.3, **settings).totals()
    w_low, w_high = np.quantile(wider, [0.1, 0.9])
    assert w_low < low and w_high > high


def test_demo_groupings_and_matrices(demo_analysis, demo_db_path):
    by_group = clv.value_by_group(demo_analysis, "buyer_group")
    assert by_group["customers"].sum() == len(demo_analysis.customers)
    assert by_group.index.name == "buyer_group"  # the page's first column says what the groups are
    # each group's total has a range around it; one group of everybody has the total's range
    low, high = by_group["total_clv_low"], by_group["total_clv_high"]
    assert ((low < by_group["total_clv"]) & (by_group["total_clv"] < high) & (low >= 0)).all()
    everybody = demo_analysis.group_range(np.ones(len(demo_analysis.customers), dtype=bool))
    assert everybody == pytest.approx((demo_analysis.total_clv_low, demo_analysis.total_clv_high))
    assert by_group["share_of_clv"].sum() == pytest.approx(100)
    assert by_group.loc["10+ purchases", "mean_clv"] > by_group.loc["1 purchase", "mean_clv"]
    matrix = clv.frequency_recency_matrix(demo_analysis.transaction_model, 700, max_frequency=6, n_recency=7)
    assert matrix.shape == (7, 8) and matrix.iloc[0, 1:].isna().all() and 0 < matrix.iloc[0, 0] <= 1
    assert (matrix.iloc[1:].diff(axis=1).iloc[:, 1:] >= 0).all().all()  # more recent purchase, more alive
    sub = clv.subscription_estimate(open_db(demo_db_path), AS_OF, margin=demo_analysis.margin_rate)
    assert 0 < sub.loc[0, "monthly_churn_rate"] < 1 and sub.loc[0, "subscription_clv"] > 0
    methods = clv.compare_methods(demo_analysis, sub)
    assert len(methods) == 3 and methods["mean_per_customer"].notna().all()


# ------------------------------------------------------------------------------------------
# Thin stores: a clear message, never a traceback
# ------------------------------------------------------------------------------------------


def _store_with(orders: list[tuple[str, str, str, float]]):
    db = memory_db()
    ids = sorted({o[1] for o in orders})
    db.table("customers").insert_all([{"customer_id": c, "name": c} for c in ids])
    db.table("orders").insert_all([{"order_id": o, "customer_id": c, "order_date": d, "amount": a, "status": "paid"}
                                   for o, c, d, a in orders])
    return db


def test_thin_stores_give_a_message():
    empty = clv.analyse_customers(memory_db(), "2026-10-31")
    assert not empty.ok and "no paid orders" in empty.message and empty.total_clv != empty.total_clv
    one_timers = _store_with([("O1", "A", "2026-01-05", 20.0), ("O2", "B", "2026-03-01", 35.0)])
    analysis = clv.analyse_customers(one_timers, "2026-10-31", margin=0.25)
    assert not analysis.ok and "more than once" in analysis.message
    assert analysis.margin_rate == 0.25 and "parameter" in analysis.margin_source
    assert not clv.holdout_validation(one_timers, "2026-10-31").ok


def test_settings_after_the_date_are_named():
    """Three adjacent floats (horizon, discount rate, margin) cannot be passed in the wrong order."""
    with pytest.raises(TypeError):
        clv.analyse_customers(memory_db(), "2026-10-31", 36, 0.1, 0.3)  # type: ignore[misc]
    with pytest.raises(TypeError):
        clv.subscription_estimate(memory_db(), "2026-10-31", 0.3)  # type: ignore[misc]


# ------------------------------------------------------------------------------------------
# The notebook
# ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_notebook_runs_and_records_its_headlines(tmp_path, demo_db_path):
    out = run_notebook("04_clv_romi.ipynb", tmp_path, db_path=str(demo_db_path),
                       period_start=DEMO_MONTH_START, period_end=DEMO_MONTH_END)
    found = read_headlines(str(out))
    total = found["total_expected_clv"]
    assert total["unit"] == "EUR" and total["value"] > 0
    # the headline carries its range and the model it came from
    low, high = (float(v.replace(",", "")) for v in re.search(r"likely ([\d,]+) to ([\d,]+) EUR", total["note"]).groups())
    assert low < total["value"] < high
    assert any(name in total["note"] for name in clv.PURCHASE_MODELS)
    shown = out.read_text(encoding="utf-8")
    assert "yes, best score" in shown and "every season" in shown and "repeat purchases where" in shown
    assert "How sure the choice is:" in shown
    assert found["total_expected_clv"]["previous"] > 0
    assert found["customers_probably_lost"]["value"] > 0
    # ROMI: only campaigns of October or September reach the index; in the demo that is the referral
    # programme, which keeps no contact list: flagged as not measurable, no "best campaign" claimed
    best = found["best_campaign_lift"]
    assert best["unit"] == "EUR" and best["value"] is None and "no campaign" in best["note"]
    from crm_helpers.report.headlines import read_flags

    flags = {f["key"]: f for f in read_flags(str(out))}
    assert set(flags) == {"campaign C04"} and "cannot be measured" in flags["campaign C04"]["sentence"]
    assert flags["campaign C04"]["money"] == 600.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert all(np.isfinite(h["value"]) for h in found.values() if h["value"] is not None)


# ------------------------------------------------------------------------------------------
# Read in one pass and summed in pandas: the same figures as the SQL aggregates they replace
# ------------------------------------------------------------------------------------------


def _sql_purchase_days(db, as_of: str) -> pd.DataFrame:
    """The paid purchase days as one SQL GROUP BY (the definition before the orders were summed in pandas)."""
    from crm_helpers.store.facts import net_revenue_sql, paid

    net = net_revenue_sql()
    frame = pd.DataFrame(db.execute(
        f"SELECT customer_id, order_date, sum({net}), sum(cost), count(*) FROM orders WHERE {paid()} "
        f"AND order_date <= ? AND {net} IS NOT NULL GROUP BY customer_id, order_date", [as_of]).fetchall(),
        columns=["customer_id", "order_date", "amount", "cost", "orders"])
    return frame.assign(order_date=pd.to_datetime(frame["order_date"]), amount=frame["amount"].astype(float),
                        cost=pd.to_numeric(frame["cost"], errors="coerce"))


def _sql_subscription(db, as_of: str, months: int = 12, active_days: int = 90) -> tuple[float, float, float]:
    """(mean active customers, monthly revenue per active customer, monthly churn): one query per month."""
    from crm_helpers.store.facts import net_revenue_sql, paid

    end = pd.Timestamp(as_of)
    ends = [(end + pd.offsets.MonthEnd(0)) - pd.offsets.MonthEnd(k) for k in range(months, -1, -1)]
    ends[-1] = min(ends[-1], end)
    active, revenue = [], []
    for k, month_end in enumerate(ends):
        since = (month_end - pd.Timedelta(days=active_days)).date().isoformat()
        active.append({r[0] for r in db.execute(f"SELECT DISTINCT customer_id FROM orders WHERE {paid()} AND "
                                                "order_date > ? AND order_date <= ?",
                                                [since, month_end.date().isoformat()])})
        if k:
            start = (ends[k - 1] + pd.Timedelta(days=1)).date().isoformat()
            total = db.execute(f"SELECT coalesce(sum({net_revenue_sql()}), 0) FROM orders WHERE {paid()} AND "
                               "order_date >= ? AND order_date <= ?", [start, month_end.date().isoformat()]).fetchone()[0]
            revenue.append(total / len(active[-1]))
    churn = [len(prev - cur) / len(prev) for prev, cur in zip(active, active[1:])]
    return float(np.mean([len(a) for a in active[1:]])), float(np.mean(revenue)), float(np.mean(churn))


@pytest.mark.parametrize("as_of", [AS_OF, "2025-12-15"])
def test_demo_purchase_days_and_subscription_match_the_sql_aggregates(demo_db_path, as_of):
    db = open_db(demo_db_path)
    days = clv.paid_purchase_days(db, as_of)
    expected = _sql_purchase_days(db, str(as_of))
    assert len(days) > 1000 and days["cost"].isna().any() == expected["cost"].isna().any()
    pd.testing.assert_frame_equal(days, expected, check_exact=False, rtol=1e-12)
    sub = clv.subscription_estimate(db, as_of, margin=1.0).iloc[0]
    active, revenue, churn = _sql_subscription(db, str(as_of))
    assert active > 50 and 0 < churn < 1
    assert (sub["mean_active_customers"], sub["monthly_margin_per_customer"], sub["monthly_churn_rate"]) == (
        pytest.approx(active, rel=1e-12), pytest.approx(revenue, rel=1e-12), pytest.approx(churn, rel=1e-12))
