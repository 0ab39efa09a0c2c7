"""The purchase models beside BG/NBD: Pareto/NBD and MBG/NBD against published and lifetimes' values.

The CDNOW sample (Fader, Hardie & Lee 2005) ships inside the test-only lifetimes wheel; the
fixture that finds it lives in ``test_clv``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import betaln, gammaln, hyp2f1

from crm_helpers.models import btyd
from crm_helpers.analyses import clv

from test_clv import _sig3, cdnow_summary  # noqa: F401  (a fixture)

CDNOW_FIRST_THREE = {"frequency": [2, 1, 0], "recency": [30.43, 1.71, 0.0], "T": [38.86, 38.86, 38.86]}
"""The first three CDNOW customers (ids 1–3 of cdnow_customers_summary.csv), in weeks."""


@pytest.fixture(scope="module")
def cdnow_pareto(cdnow_summary) -> btyd.ParetoNBDModel:
    return btyd.ParetoNBDModel().fit(cdnow_summary["frequency"], cdnow_summary["recency"], cdnow_summary["T"])


@pytest.fixture(scope="module")
def cdnow_mbg(cdnow_summary) -> btyd.ModifiedBetaGeoModel:
    return btyd.ModifiedBetaGeoModel().fit(cdnow_summary["frequency"], cdnow_summary["recency"], cdnow_summary["T"])


def _random_rows(seed: int, n: int, max_age: int, mean_repeats: float) -> tuple[np.ndarray, ...]:
    """Small random (frequency, recency, T) data for likelihood checks, and their unique rows."""
    rng = np.random.default_rng(seed)
    t_cap = rng.integers(5, max_age, n).astype(float)
    x = rng.poisson(mean_repeats, n).astype(float)
    tx = np.where(x > 0, np.floor(t_cap * rng.random(n)), 0.0)
    return x, tx, t_cap, btyd._RfmRows.build(x, tx, t_cap, np.ones_like(x))


def test_first_three_customers_are_those_of_the_file(cdnow_summary):
    head = cdnow_summary.head(3)
    for column, values in CDNOW_FIRST_THREE.items():
        assert head[column].tolist() == pytest.approx(values), column


# ------------------------------------------------------------------------------------------
# Pareto/NBD
# ------------------------------------------------------------------------------------------


def test_pareto_nbd_reproduces_the_published_cdnow_estimates(cdnow_pareto):
    # Fader, Hardie & Lee 2005, "Counting your customers the easy way", Pareto/NBD column
    published = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
    for name, value in published.items():
        assert _sig3(cdnow_pareto.params_[name]) == _sig3(value), name
    assert cdnow_pareto.log_likelihood_ == pytest.approx(-9595.0, abs=0.05)
    assert cdnow_pareto.n_customers_ == 2357
    assert (cdnow_pareto.standard_errors_ > 0).all()
    assert cdnow_pareto.covariance_.shape == (4, 4)


LIFETIMES_CDNOW_PARETO = {"r": 0.5532609771994965, "alpha": 10.577313692443873, "s": 0.6061885302417324,
                          "beta": 11.667455477113108}
"""lifetimes 0.11.3 ``ParetoNBDFitter().fit`` on its ``load_cdnow_summary()`` (run 2026-11-29, in the benchmark's
environment with its dill and autograd: they are not installed for the tests)."""


def test_pareto_nbd_has_lifetimes_parameters_on_cdnow(cdnow_pareto):
    """The issue's parity target: the same parameters as lifetimes to 1e-3 (relative), where lifetimes converges."""
    theirs = pd.Series(LIFETIMES_CDNOW_PARETO)
    assert cdnow_pareto.params_[theirs.index].to_numpy() == pytest.approx(theirs.to_numpy(), rel=1e-3)


def test_pareto_nbd_predictions_agree_with_lifetimes(cdnow_pareto):
    # lifetimes 0.11.3 ParetoNBDFitter on the same data: conditional_expected_number_of_purchases_up_to_time(39, ...),
    # conditional_probability_alive(...) and expected_number_of_purchases_up_to_time(39)
    c = CDNOW_FIRST_THREE
    assert cdnow_pareto.expected_purchases(39, c["frequency"], c["recency"], c["T"]) == pytest.approx(
        [1.4551, 0.1710, 0.1071], abs=2e-4)
    assert cdnow_pareto.p_alive(c["frequency"], c["recency"], c["T"]) == pytest.approx([0.8691, 0.1679, 0.2951],
                                                                                       abs=2e-4)
    assert cdnow_pareto.expected_purchases_new_customer(39) == pytest.approx(1.21341, abs=2e-4)


def _naive_pareto_ll(theta, x, tx, t_cap) -> float:
    """FHL's note, eq. 22, row by row, with the hypergeometric function as the note writes it."""
    r, alpha, s, beta = theta
    total = 0.0
    for xi, ti, Ti in zip(x, tx, t_cap):
        big, small = (alpha, beta) if alpha >= beta else (beta, alpha)
        b_param = s + 1 if alpha >= beta else r + xi
        rsx = r + s + xi

        def a0_term(u: float) -> float:
            return hyp2f1(rsx, b_param, rsx + 1, (big - small) / (big + u)) / (big + u) ** rsx

        a0 = a0_term(ti) - a0_term(Ti)
        bracket = 1 / ((alpha + Ti) ** (r + xi) * (beta + Ti) ** s) + s / rsx * a0
        total += gammaln(r + xi) - gammaln(r) + r * np.log(alpha) + s * np.log(beta) + np.log(bracket)
    return total


@pytest.mark.parametrize("theta", [[0.55, 10.6, 0.6, 11.7], [1.3, 4.0, 2.0, 30.0], [0.4, 25.0, 0.3, 3.0]])
def test_pareto_nbd_likelihood_matches_the_note_row_by_row(theta):
    """Both branches (α ≥ β and α < β) of the stable form against the note's own form."""
    x, tx, t_cap, rows = _random_rows(4, 200, 40, 1.5)
    assert btyd._pareto_loglik_grad(np.array(theta), rows)[0] == pytest.approx(
        _naive_pareto_ll(theta, x, tx, t_cap), rel=1e-10)


@pytest.mark.parametrize("theta", [[0.55, 10.6, 0.6, 11.7], [0.9, 22.5, 3.1, 2446.0], [0.4, 25.0, 0.3, 3.0],
                                   [0.5, 20.0, 40.0, 9000.0]])
def test_pareto_nbd_gradient_is_that_of_the_likelihood(theta):
    """The analytic gradient against central differences, β below, near and far above α."""
    theta = np.array(theta)
    _, _, _, rows = _random_rows(9, 400, 730, 4.0)
    analytic = btyd._pareto_loglik_grad(theta, rows)[1]
    numeric = btyd._numeric_gradient(lambda p: btyd._pareto_loglik_grad(p, rows)[0], theta)
    assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-6)


def test_pareto_nbd_likelihood_where_recencies_and_ages_share_their_values():
    """Daily data: some customers bought on their last day (t_x = T, nothing left to lose in between), and
    one customer's recency is another's age, so the (frequency, age) pairs the integral is taken on are shared."""
    x, tx, t_cap, _ = _random_rows(3, 300, 60, 2.0)
    last_day = np.arange(len(x)) % 7 == 0
    tx[last_day & (x > 0)] = t_cap[last_day & (x > 0)]
    rows = btyd._RfmRows.build(x, tx, t_cap, np.ones_like(x))
    assert len(rows.age_pairs[0]) < len(np.unique(np.c_[x, tx], axis=0)) + len(np.unique(np.c_[x, t_cap], axis=0))
    theta = np.array([0.7, 12.0, 0.8, 40.0])
    ll, grad = btyd._pareto_loglik_grad(theta, rows)
    assert ll == pytest.approx(_naive_pareto_ll(theta, x, tx, t_cap), rel=1e-10)
    numeric = btyd._numeric_gradient(lambda p: btyd._pareto_loglik_grad(p, rows)[0], theta)
    assert grad == pytest.approx(numeric, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("theta", [[0.9, 22.5, 3.1, 2446.0], [0.5, 20.0, 0.5, 2000.0], [2.0, 300.0, 0.5, 10.0],
                                   [0.05, 1.0, 20.0, 1e5], [0.3, 5.0, 0.3, 0.5]])
def test_pareto_tail_integral_agrees_with_adaptive_quadrature(theta):
    """ln ∫ᵤ^∞ (α+τ)^−(r+x) (β+τ)^−(s+1) dτ against scipy's adaptive quad, where 2F1 converges slowly (β ≫ α)."""
    from scipy import integrate

    r, alpha, s, beta = theta
    x, u = np.array([0.0, 0.0, 1.0, 7.0, 40.0, 120.0]), np.array([0.0, 300.0, 10.0, 500.0, 200.0, 700.0])
    ours = btyd._pareto_log_tail(np.array(theta), x, u)
    for xi, ui, value in zip(x, u, ours):
        m, p = min(alpha, beta), r + s + xi
        scale = -p * np.log(m + ui)

        def integrand(y: float) -> float:  # in y = ln((m+u)/(m+τ)), scaled by (m+u)^p
            tau = (m + ui) * np.exp(-y) - m
            return np.exp(-(r + xi) * np.log(alpha + tau) - (s + 1) * np.log(beta + tau) + np.log(m + tau) - scale)

        reference, _ = integrate.quad(integrand, -min(600 / p, 600), 0, epsabs=0, epsrel=1e-12, limit=2000)
        assert value == pytest.approx(np.log(reference) + scale, abs=1e-8), (xi, ui)


def test_pareto_nbd_stays_finite_where_the_plain_hypergeometric_form_overflows():
    """Frequent buyers: 2F1(r+s+x, s+1; r+s+x+1; z) alone overflows for x in the hundreds."""
    theta = np.array([0.55, 10.6, 0.6, 0.5])
    x, tx, t_cap = np.array([400.0, 900.0]), np.array([700.0, 720.0]), np.array([730.0, 730.0])
    with np.errstate(all="ignore"):
        plain = hyp2f1(0.55 + 0.6 + x, 1.6, 0.55 + 0.6 + x + 1, (10.6 - 0.5) / (10.6 + tx)) / (10.6 + tx) ** (
            0.55 + 0.6 + x)
    assert not np.all(np.isfinite(plain) & (plain > 0))
    model = btyd.ParetoNBDModel().with_params(theta)
    assert np.isfinite(btyd._pareto_log_tail(theta, x, tx)).all()
    alive = model.p_alive(x, tx, t_cap)
    assert ((alive > 0) & (alive <= 1)).all()


def _simulate_pareto(n: int, seed: int, r=0.8, alpha=20.0, s=0.7, beta=150.0):
    """Customers drawn from Pareto/NBD with known parameters (ages in whole days, purchase days floored)."""
    rng = np.random.default_rng(seed)
    lam, mu = rng.gamma(r, 1 / alpha, n), rng.gamma(s, 1 / beta, n)
    t_cap = rng.integers(30, 731, n).astype(float)
    active = np.minimum(rng.exponential(1 / mu), t_cap)
    x = rng.poisson(lam * active).astype(float)
    tx = np.where(x > 0, np.floor(active * rng.beta(np.maximum(x, 1), 1)), 0.0)  # the last of x uniform times
    return x, tx, t_cap


def test_known_pareto_parameters_are_recovered_from_simulated_customers():
    x, tx, t_cap = _simulate_pareto(20_000, seed=7)
    model = btyd.ParetoNBDModel().fit(x, tx, t_cap)
    z = (model.params_.to_numpy() - [0.8, 20.0, 0.7, 150.0]) / model.standard_errors_.to_numpy()
    assert np.abs(z).max() < 4, (model.params_, model.standard_errors_)


def test_pareto_nbd_predictions_behave(cdnow_pareto):
    m = cdnow_pareto
    # nothing known yet (x = 0, T = 0): the conditional expectation is the new customer's
    assert m.expected_purchases(39, [0], [0], [0])[0] == pytest.approx(m.expected_purchases_new_customer(39))
    assert m.expected_purchases(0, [3], [20], [38])[0] == pytest.approx(0)
    alive = m.p_alive([0, 3, 3, 3], [0, 5, 20, 38], [38, 38, 38, 38])
    assert alive[0] < 1 and alive[1] < alive[2] < alive[3] == pytest.approx(1.0)  # one may leave without buying again
    # s = 1 is the limit of the closed form, not a division by zero
    near = m.with_params([0.55, 10.6, 1.0 + 1e-7, 11.7]).expected_purchases_new_customer(39)
    at = m.with_params([0.55, 10.6, 1.0, 11.7]).expected_purchases_new_customer(39)
    assert at == pytest.approx(near, rel=1e-6)


def test_a_fit_started_elsewhere_finds_the_same_optimum(cdnow_summary, cdnow_pareto):
    """``initial_params`` (lifetimes' name) only moves the start: from far off the same estimates come back."""
    c = cdnow_summary
    warm = btyd.ParetoNBDModel().fit(c["frequency"], c["recency"], c["T"], initial_params=[2.0, 3.0, 5.0, 40.0])
    assert warm.params_.to_numpy() == pytest.approx(cdnow_pareto.params_.to_numpy(), rel=1e-4)
    with pytest.raises(clv.ClvError, match="initial_params"):
        btyd.ParetoNBDModel().fit(c["frequency"], c["recency"], c["T"], initial_params=[1.0, -2.0, 1.0, 1.0])


def test_weights_on_unique_rows_give_the_same_pareto_fit(cdnow_summary, cdnow_pareto):
    grouped = cdnow_summary.groupby(["frequency", "recency", "T"]).size().reset_index(name="n")
    weighted = btyd.ParetoNBDModel().fit(grouped["frequency"], grouped["recency"], grouped["T"], weights=grouped["n"])
    assert weighted.params_.to_numpy() == pytest.approx(cdnow_pareto.params_.to_numpy(), rel=1e-4)


def test_one_dropout_rate_for_everybody_is_named_for_pareto_too():
    """Every customer leaves at the same rate: s runs high (no bound), the fit says so, the mean rate s/β holds."""
    rng = np.random.default_rng(5)
    n = 5_000
    lam = rng.gamma(0.8, 1 / 20.0, n)
    t_cap = rng.integers(30, 731, n).astype(float)
    active = np.minimum(rng.exponential(1 / 0.004, n), t_cap)
    x = rng.poisson(lam * active).astype(float)
    tx = np.where(x > 0, np.floor(active * rng.beta(np.maximum(x, 1), 1)), 0.0)
    with pytest.warns(clv.CommonDropoutWarning, match="rates of leaving hardly differ"):
        model = btyd.ParetoNBDModel().fit(x, tx, t_cap)
    r, alpha, s, beta = model.params_
    assert 1 / np.sqrt(s) < btyd.COMMON_DROPOUT_CV and s / beta == pytest.approx(0.004, rel=0.25)


# ------------------------------------------------------------------------------------------
# MBG/NBD
# ------------------------------------------------------------------------------------------


def test_mbg_nbd_agrees_with_lifetimes_on_cdnow(cdnow_mbg):
    # lifetimes' test_params_out_is_close_to_BTYDplus: 0.525, 6.183, 0.891, 1.614 (R package BTYDplus)
    assert cdnow_mbg.params_.to_numpy() == pytest.approx([0.525, 6.183, 0.891, 1.614], abs=1e-3)
    # lifetimes 0.11.3 ModifiedBetaGeoFitter on the same data, for the first three customers
    c = CDNOW_FIRST_THREE
    assert cdnow_mbg.expected_purchases(39, c["frequency"], c["recency"], c["T"]) == pytest.approx(
        [1.2627, 0.1888, 0.1540], abs=2e-4)
    assert cdnow_mbg.p_alive(c["frequency"], c["recency"], c["T"]) == pytest.approx([0.7061, 0.1708, 0.3897], abs=2e-4)


def test_mbg_nbd_population_curve_matches_lifetimes_and_hardies_sheet(cdnow_mbg):
    # lifetimes 0.11.3: expected_number_of_purchases_up_to_time(39) on the same fit
    assert cdnow_mbg.expected_purchases_new_customer(39) == pytest.approx(1.182284, abs=1e-5)
    # lifetimes' test_expectation_returns_same_value_Hardie_excel_sheet, with its tolerance (rtol 5%)
    times = np.array([0.1429, 1.0, 3.00, 31.8571, 32.00, 78.00])
    expected = np.array([0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576])
    assert cdnow_mbg.expected_purchases_new_customer(times) == pytest.approx(expected, rel=0.05)


def _naive_mbg_ll(theta, x, tx, t_cap) -> float:
    """Batislam et al. (2007) likelihood row by row, as lifetimes writes it."""
    r, alpha, a, b = theta
    total = 0.0
    for xi, ti, Ti in zip(x, tx, t_cap):
        base = gammaln(r + xi) - gammaln(r) + r * np.log(alpha) + betaln(a, b + xi + 1) - betaln(a, b)
        total += base + np.log((alpha + Ti) ** -(r + xi) + a / (b + xi) * (alpha + ti) ** -(r + xi))
    return total


@pytest.mark.parametrize("theta", [[0.5, 6.2, 0.9, 1.6], [2.0, 0.5, 1.5, 0.8], [0.05, 40.0, 0.2, 9.0]])
def test_mbg_nbd_likelihood_and_gradient(theta):
    x, tx, t_cap, rows = _random_rows(6, 300, 60, 2.0)
    theta = np.array(theta)
    ll, grad = btyd._beta_geo_loglik_grad(theta, rows, modified=True)
    assert ll == pytest.approx(_naive_mbg_ll(theta, x, tx, t_cap), rel=1e-10)
    numeric = btyd._numeric_gradient(lambda p: btyd._beta_geo_loglik_grad(p, rows, modified=True)[0], theta)
    assert grad == pytest.approx(numeric, rel=1e-5)


def test_mbg_nbd_lets_one_time_buyers_leave(cdnow_mbg):
    assert cdnow_mbg.p_alive([0, 0], [0, 0], [1, 38])[1] < cdnow_mbg.p_alive([0, 0], [0, 0], [1, 38])[0] < 1
    bg = btyd.BetaGeoModel().with_params(cdnow_mbg.params_.to_numpy())
    assert bg.p_alive([0], [0], [38])[0] == 1.0


def test_models_are_reexported_by_clv_and_refuse_what_cannot_be_fitted():
    assert clv.ParetoNBDModel is btyd.ParetoNBDModel and clv.ModifiedBetaGeoModel is btyd.ModifiedBetaGeoModel
    for model in (btyd.ParetoNBDModel(), btyd.ModifiedBetaGeoModel()):
        with pytest.raises(clv.NoRepeatBuyersError, match="more than once"):
            model.fit([0, 0, 0], [0, 0, 0], [10, 20, 30])
        with pytest.raises(clv.ClvError, match="fit the model first"):
            model.p_alive([1], [1], [2])
        with pytest.raises(clv.ClvError, match="cannot exceed T"):
            model.fit([1, 2], [12, 3], [10, 10])


def test_the_store_never_reaches_the_models():
    """btyd is the pure half of the split agreed with issue 17: no store, no SQL."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(btyd))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)} | {
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not {m for m in imported if m and ("sqlite" in m or m.lstrip(".") in {"data", "store", "clv"})}


@pytest.mark.parametrize("model_class", [btyd.ParetoNBDModel, btyd.ModifiedBetaGeoModel, btyd.BetaGeoModel])
def test_with_params_copies_without_refitting(cdnow_summary, model_class):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = model_class().fit(cdnow_summary["frequency"], cdnow_summary["recency"], cdnow_summary["T"])
    other = fitted.with_params(fitted.params_.to_numpy() * 1.1)
    assert (other.params_ != fitted.params_).all() and other.param_names == fitted.param_names
    assert isinstance(pd.Series(other.p_alive([1.0], [2.0], [3.0])), pd.Series)
