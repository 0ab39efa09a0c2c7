"""The purchase models, Gamma-Gamma and CLV prediction against the ``lifetimes`` package.

Two summaries: the scale store's (100,000 customers, from its paid orders with
``summary_from_transactions``) and one of 1,000,000 customers drawn from the models with the
parameters fitted on the first (:mod:`benchmarks.synthetic`). On each, our
``BetaGeoModel`` / ``GammaGammaModel`` / ``customer_lifetime_value`` run in this process and
lifetimes' ``BetaGeoFitter`` / ``GammaGammaFitter`` / ``customer_lifetime_value`` in a separate
one (:mod:`benchmarks.lifetimes_ref`), on the same numbers. The other two purchase models,
``ModifiedBetaGeoModel`` and ``ParetoNBDModel``, are timed against lifetimes'
``ModifiedBetaGeoFitter`` and ``ParetoNBDFitter`` the same way; lifetimes' Pareto/NBD fit is
stopped after ``REFERENCE_TIMEOUT`` seconds (it takes minutes at 100,000 customers), and a fit
stopped there counts as taking at least that long. For the Pareto/NBD parameters lifetimes is
also fitted on the unique (frequency, recency, T) rows with their counts (the same likelihood),
under the same limit; where the parameters differ, the note says which fit has the higher
log-likelihood, by our likelihood and by lifetimes' own.

lifetimes is a benchmark-only dependency. The Makefile installs it into ``.venv`` without its
dependencies (it pins old ``dill``/``autograd`` that the workbook does not need); the benchmark
installs those two with ``pip install --no-deps --target benchmarks/scale/lifetimes-deps`` on
first use and puts that folder on the reference process's ``PYTHONPATH`` only, so the workbook's
environment and ``pyproject.toml`` stay as they are.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from crm_helpers.analyses import clv
from crm_helpers.store.connection import open_db

from .results import Row, Section, Timing, load_average, log, measure, plural
from .scale_store import SCALE_DIR, ScaleStore
from .synthetic import bgnbd_summary

LIFETIMES_DEPS = ("dill==0.4.1", "autograd==1.9.1")
"""lifetimes 0.11.3's dependencies, pinned to versions that work with the workbook's numpy."""

ANNUAL_DISCOUNT = 0.1
HORIZON_MONTHS = 12
PARAM_TOLERANCE = 1e-3
TARGET_TIME_SHARE = 0.5
ROOT = Path(__file__).resolve().parent.parent
REFERENCE_TIMEOUT = 600
"""Seconds after which a lifetimes reference fit of the other purchase models is stopped."""
PARITY_START = np.array([1.2, 0.8, 1.2, 0.8])
"""For the Pareto/NBD parameter check lifetimes' search starts at our estimate times these (r and s
20% up, α and β 20% down): from its own start (about 1 for every parameter in its time scale)
it rarely finishes within ``REFERENCE_TIMEOUT`` at these sizes, from here it must still find the
optimum by itself."""
PARITY_TOL = 1e-9
"""lifetimes' fit tolerance for that check: at its default, 1e-4, its Nelder-Mead search stops on
the flat ridge of s and β (on the scale store 7% from the optimum, 0.06 lower in log-likelihood,
with 20,000 iterations as with 2,000); at 1e-9 it goes on to the optimum."""
OTHER_MODELS = {"mbgnbd": clv.ModifiedBetaGeoModel, "paretonbd": clv.ParetoNBDModel}


def lifetimes_env(folder: Path = SCALE_DIR) -> dict[str, str] | None:
    """Environment for a process that can ``import lifetimes``; installs its two dependencies
    into ``folder/lifetimes-deps`` if they are not there yet. None (and a log line) when lifetimes
    itself or the install is missing."""
    deps = folder / "lifetimes-deps"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(deps), str(ROOT),
                                                                       os.environ.get("PYTHONPATH", "")]))}
    probe = [sys.executable, "-c", "import lifetimes"]
    if subprocess.run(probe, env=env, capture_output=True).returncode == 0:
        return env
    log(f"installing lifetimes' dependencies {', '.join(LIFETIMES_DEPS)} into {deps}")
    install = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(deps), *LIFETIMES_DEPS]
    done = subprocess.run(install, capture_output=True, text=True)
    if done.returncode != 0 or subprocess.run(probe, env=env, capture_output=True).returncode != 0:
        log(f"lifetimes cannot be imported; the reference is skipped: {done.stderr[-500:]}")
        return None
    return env


def _fit_ours(summary: pd.DataFrame) -> tuple[clv.BetaGeoModel, clv.GammaGammaModel]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bgm = clv.BetaGeoModel().fit(summary["frequency"], summary["recency"], summary["T"])
        spend = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
        ggm = clv.GammaGammaModel().fit(spend["frequency"], spend["monetary_value"])
    return bgm, ggm


def _clv_ours(bgm: clv.BetaGeoModel, ggm: clv.GammaGammaModel, summary: pd.DataFrame) -> np.ndarray:
    value = ggm.expected_average_value(summary["frequency"], summary["monetary_value"])
    return np.asarray(clv.customer_lifetime_value(bgm, summary["frequency"], summary["recency"], summary["T"], value,
                                                  horizon_months=HORIZON_MONTHS, annual_discount_rate=ANNUAL_DISCOUNT))


def _clv_ours_30_day_months(bgm: clv.BetaGeoModel, ggm: clv.GammaGammaModel, summary: pd.DataFrame,
                            monthly: float) -> np.ndarray:
    """Our CLV in lifetimes' conventions (30-day months, a monthly rate), for the comparison.

    Ours counts a month as 365.25/12 days divided by ``freq_multiplier``; a multiplier of
    30.4375/30 makes it 30 days, with the summary still in days.
    """
    value = ggm.expected_average_value(summary["frequency"], summary["monetary_value"])
    return np.asarray(clv.customer_lifetime_value(
        bgm, summary["frequency"], summary["recency"], summary["T"], value, horizon_months=HORIZON_MONTHS,
        annual_discount_rate=(1 + monthly) ** 12 - 1, freq="D", freq_multiplier=clv.DAYS_PER_MONTH / 30))


def _max_rel(a: np.ndarray, b: np.ndarray, floor: float = 1e-9) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), floor))) if len(a) else float("nan")


def _reference(summary: pd.DataFrame, env: dict[str, str], repeats: int, weights: bool, work: Path,
               with_clv: bool = True) -> tuple[dict, dict[str, np.ndarray]]:
    src, out = work / "summary.npz", work / "lifetimes_out.npz"
    np.savez(src, **{c: summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T", "monetary_value")})
    cmd = [sys.executable, "-m", "benchmarks.lifetimes_ref", str(src), str(out), "--repeats", str(repeats),
           "--monthly-discount", repr(clv.monthly_rate(ANNUAL_DISCOUNT))]
    cmd += ["--weights"] if weights else []
    cmd += [] if with_clv else ["--no-clv"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"lifetimes reference failed:\n{done.stderr[-3000:]}")
    meta = json.loads(done.stdout.strip().splitlines()[-1])
    with np.load(out) as data:
        arrays = {k: data[k] for k in data.files}
    return meta, arrays


def _compare(section: Section, label: str, summary: pd.DataFrame, repeats: int, ref_repeats: int,
             env: dict[str, str] | None, work: Path, weighted_reference: bool) -> tuple[float, ...]:
    n = len(summary)
    log(f"CLV on {label}: ours, {plural(repeats, 'run')}")
    spend = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_t, (bgm, ggm) = measure(lambda: _fit_ours(summary), repeats)
        bg_t, _ = measure(lambda: clv.BetaGeoModel().fit(summary["frequency"], summary["recency"], summary["T"]),
                          repeats)
        gg_t, _ = measure(lambda: clv.GammaGammaModel().fit(spend["frequency"], spend["monetary_value"]), repeats)
        clv_t, _ = measure(lambda: _clv_ours(bgm, ggm, summary), repeats)
    total = Timing([a + b for a, b in zip(fit_t.runs, clv_t.runs)])
    if env is None:
        section.add(Row(f"{label}: BG/NBD + Gamma-Gamma fit + 12-month CLV (ours)", total,
                        note="lifetimes not available: no reference"))
        return tuple(bgm.params_) + tuple(ggm.params_)
    log(f"CLV on {label}: lifetimes, {plural(ref_repeats, 'run')}")
    try:
        meta, ref = _reference(summary, env, ref_repeats, weights=False, work=work)
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[-1]
        section.add(Row(f"{label}: BG/NBD + Gamma-Gamma fit + 12-month CLV (ours)", total,
                        note=f"lifetimes failed: {reason}"))
        return tuple(bgm.params_) + tuple(ggm.params_)
    lt_bg, lt_gg, lt_clv = (Timing(meta["times"][k]) for k in ("bgnbd_fit", "gg_fit", "clv"))
    lt_total = Timing([a + b + c for a, b, c in zip(lt_bg.runs, lt_gg.runs, lt_clv.runs)])
    bg_diff = _max_rel(bgm.params_.to_numpy(), np.array([meta["bgnbd"][k] for k in ("r", "alpha", "a", "b")]))
    gg_diff = _max_rel(ggm.params_.to_numpy(), np.array([meta["gg"][k] for k in ("p", "q", "v")]))
    monthly = clv.monthly_rate(ANNUAL_DISCOUNT)
    clv_diff = _max_rel(_clv_ours_30_day_months(bgm, ggm, summary, monthly), ref["clv"], floor=1e-6)
    exp_diff = _max_rel(np.asarray(bgm.expected_purchases(30, summary["frequency"], summary["recency"],
                                                           summary["T"])), ref["expected_30"], floor=1e-9)
    share = f"≤ {TARGET_TIME_SHARE:g}× lifetimes"
    section.add(Row(f"{label}: BG/NBD fit", bg_t, reference=lt_bg, reference_name="lifetimes",
                    target=share, met=bg_t.median <= TARGET_TIME_SHARE * lt_bg.median))
    section.add(Row(f"{label}: Gamma-Gamma fit", gg_t, reference=lt_gg, reference_name="lifetimes",
                    target=share, met=gg_t.median <= TARGET_TIME_SHARE * lt_gg.median))
    section.add(Row(f"{label}: 12-month CLV of every customer", clv_t, reference=lt_clv,
                    reference_name="lifetimes", target=share, met=clv_t.median <= TARGET_TIME_SHARE * lt_clv.median))
    section.add(Row(f"{label}: fit both + CLV, total", total, reference=lt_total, reference_name="lifetimes",
                    target=share, met=total.median <= TARGET_TIME_SHARE * lt_total.median))
    ok = max(bg_diff, gg_diff) <= PARAM_TOLERANCE
    section.notes.append(
        f"**{label}** ({n:,} customers; ours {plural(repeats, 'run')}, lifetimes {ref_repeats}): largest relative "
        f"difference of the parameters BG/NBD {bg_diff:.1e}, Gamma-Gamma {gg_diff:.1e} "
        f"(target ≤ {PARAM_TOLERANCE:g}: {'met' if ok else '**missed**'}); per customer, expected purchases in "
        f"30 days {exp_diff:.1e} and CLV {clv_diff:.1e} (ours computed in lifetimes' 30-day months for this "
        f"check). Ours: BG/NBD r, α, a, b = {', '.join(f'{v:.6g}' for v in bgm.params_)}; Gamma-Gamma p, q, v = "
        f"{', '.join(f'{v:.6g}' for v in ggm.params_)}."
    )
    if weighted_reference:
        log(f"CLV on {label}: lifetimes fitted on unique rows with weights")
        wmeta, _ = _reference(summary, env, ref_repeats, weights=True, work=work, with_clv=False)
        w_bg = Timing(wmeta["times"]["bgnbd_fit"])
        section.add(Row(f"{label}: BG/NBD fit", bg_t, reference=w_bg, reference_name="lifetimes on unique rows",
                        note="reference given the weights trick"))
    return tuple(bgm.params_) + tuple(ggm.params_)


def _reference_other(summary: pd.DataFrame, model: str, env: dict[str, str], repeats: int, work: Path,
                     timeout: float, weights: bool = False, start: np.ndarray | None = None,
                     at: np.ndarray | None = None, tol: float | None = None) -> dict | None:
    """lifetimes' fit of another purchase model in its own process; None when stopped at ``timeout`` seconds.

    ``weights``: fit on the unique rows with their counts; ``start``: where its Pareto/NBD search
    starts, with lifetimes' tolerance ``tol``; ``at``: our parameters, at which the reference also
    evaluates lifetimes' own Pareto/NBD likelihood (``own_ll_gain_at``)."""
    src = work / "summary.npz"
    np.savez(src, **{c: summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T", "monetary_value")})
    cmd = [sys.executable, "-m", "benchmarks.lifetimes_ref", str(src), str(work / "unused.npz"), "--repeats",
           str(repeats), "--monthly-discount", "0", "--model", model]
    cmd += ["--weights"] if weights else []
    cmd += ["--tol", repr(tol)] if tol is not None else []
    for flag, values in (("--start", start), ("--at", at)):
        cmd += [flag, ",".join(repr(float(v)) for v in values)] if values is not None else []
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if done.returncode != 0:
        raise RuntimeError(f"lifetimes reference failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _compare_other_models(section: Section, label: str, summary: pd.DataFrame, repeats: int, ref_repeats: int,
                          env: dict[str, str] | None, work: Path, timeout: float = REFERENCE_TIMEOUT,
                          models: tuple[str, ...] = tuple(OTHER_MODELS)) -> None:
    """MBG/NBD and Pareto/NBD fits, ours against lifetimes', with the parameters compared.

    lifetimes is timed as its documentation shows (one row per customer), stopped after
    ``timeout`` seconds. Its Pareto/NBD fit rarely finishes there at these sizes, so the
    Pareto/NBD parameters are also compared with lifetimes fitted on the unique (frequency,
    recency, T) rows with their counts (the same likelihood, fewer rows), its search started
    20% away from our estimate (``PARITY_START``) with a tight tolerance (``PARITY_TOL``), under
    the same limit.
    """
    share = f"≤ {TARGET_TIME_SHARE:g}× lifetimes"
    for key in models:
        model_class = OTHER_MODELS[key]
        log(f"{model_class.name} on {label}: ours, {plural(repeats, 'run')}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours_t, ours = measure(lambda: model_class().fit(summary["frequency"], summary["recency"], summary["T"]),
                                   repeats)
        measure_name = f"{label}: {model_class.name} fit"
        if env is None:
            section.add(Row(measure_name, ours_t, note="lifetimes not available: no reference"))
            continue
        log(f"{model_class.name} on {label}: lifetimes, {plural(ref_repeats, 'run')} (stopped after {timeout:.0f} s)")
        try:
            meta = _reference_other(summary, key, env, ref_repeats, work, timeout,
                                    at=ours.params_.to_numpy() if key == "paretonbd" else None)
        except RuntimeError as exc:
            section.add(Row(measure_name, ours_t, note=f"lifetimes failed: {str(exc).strip().splitlines()[-1]}"))
            continue
        if meta is None:
            section.add(Row(measure_name, ours_t, reference=Timing([float(timeout)]),
                            reference_name="lifetimes, stopped unfinished at", target=share,
                            met=ours_t.median <= TARGET_TIME_SHARE * timeout,
                            note="lifetimes did not finish: its time is at least this, the ratio at most this"))
            section.notes.append(f"**{label}, {model_class.name}**: lifetimes' fit (one row per customer) was stopped "
                                 f"after {timeout:.0f} s unfinished. Ours: "
                                 + ", ".join(f"{k} = {v:.6g}" for k, v in ours.params_.items()) + ".")
        else:
            ref_t = Timing(meta["times"])
            section.add(Row(measure_name, ours_t, reference=ref_t, reference_name="lifetimes", target=share,
                            met=ours_t.median <= TARGET_TIME_SHARE * ref_t.median))
            section.notes.append(_parity_note(f"**{label}, {model_class.name}**", ours, meta, summary))
        if key != "paretonbd":
            continue
        log(f"{model_class.name} on {label}: lifetimes on the unique rows with weights, started 20% away from ours, "
            f"tol {PARITY_TOL:g} (stopped after {timeout:.0f} s)")
        estimate = ours.params_.to_numpy()
        try:
            wmeta = _reference_other(summary, key, env, 1, work, timeout, weights=True, start=estimate * PARITY_START,
                                     at=estimate, tol=PARITY_TOL)
        except RuntimeError as exc:
            section.notes.append(f"**{label}, {model_class.name}, lifetimes on unique rows** failed: "
                                 + str(exc).strip().splitlines()[-1])
            continue
        weighted_name = f"{measure_name} (reference given the weights trick, a start 20% from ours, tol {PARITY_TOL:g})"
        if wmeta is None:
            section.add(Row(weighted_name, ours_t, reference=Timing([float(timeout)]),
                            reference_name="lifetimes on unique rows, stopped unfinished at",
                            note="lifetimes did not finish: its time is at least this, the ratio at most this"))
            section.notes.append(f"**{label}, {model_class.name}, lifetimes on the unique rows with weights**: "
                                 f"stopped after {timeout:.0f} s unfinished too, so the parameters could not be "
                                 "compared at this size.")
            continue
        section.add(Row(weighted_name, ours_t, reference=Timing(wmeta["times"]),
                        reference_name=f"lifetimes on {wmeta['rows']:,} unique rows"))
        section.notes.append(_parity_note(f"**{label}, {model_class.name}, lifetimes on the unique rows with weights, "
                                          f"started 20% away from our estimate, tol {PARITY_TOL:g}**", ours, wmeta,
                                          summary))


def _parity_note(title: str, ours: clv.PurchaseModel, meta: dict, summary: pd.DataFrame) -> str:
    """The parameters of our fit and lifetimes', their largest relative difference, and both log-likelihoods."""
    theirs = np.array([meta["params"][k] for k in ours.param_names])
    diff = _max_rel(ours.params_.to_numpy(), theirs)
    at_theirs = ours.with_params(theirs).log_likelihood(summary["frequency"], summary["recency"], summary["T"])
    own = meta.get("own_ll_gain_at")
    by_theirs = ("" if own is None or diff <= PARAM_TOLERANCE else
                 f"; by lifetimes' own likelihood ours is {'higher' if own > 0 else 'lower'} by {abs(own):,.3f}")
    return (f"{title}: largest relative difference of the parameters from lifetimes' {diff:.1e} (target ≤ "
            f"{PARAM_TOLERANCE:g}: {'met' if diff <= PARAM_TOLERANCE else '**missed**'}). Ours: "
            + ", ".join(f"{k} = {v:.6g}" for k, v in ours.params_.items()) + "; lifetimes: "
            + ", ".join(f"{k} = {v:.6g}" for k, v in meta["params"].items())
            + f"; log-likelihood at ours {ours.log_likelihood_:,.3f}, at lifetimes' {at_theirs:,.3f}"
            + _which_optimum(diff, ours.log_likelihood_, at_theirs) + by_theirs + ".")


def _which_optimum(diff: float, ours: float, theirs: float) -> str:
    """Where the parameters differ, which fit is the better one, in words (the higher log-likelihood)."""
    if diff <= PARAM_TOLERANCE:
        return ""
    if ours > theirs:
        return (f": ours is the better fit by {ours - theirs:,.3f} in log-likelihood, so lifetimes stopped before "
                "its optimum (its Nelder-Mead search ends on the flat ridge of s and beta)")
    return f": **lifetimes' is the better fit** by {theirs - ours:,.3f} in log-likelihood, so ours stopped early"


def run(store: ScaleStore, repeats: int, ref_repeats: int, *, big: int = 1_000_000, with_reference: bool = True,
        deps_folder: Path = SCALE_DIR, pareto_only: bool = False) -> Section:
    """The CLV benchmark on the store's summary and on a ``big``-customer synthetic one.

    ``pareto_only``: only the Pareto/NBD fits, ours and lifetimes' (a shorter loop while working on
    that model; the 1,000,000-customer summary is still drawn from our BG/NBD and Gamma-Gamma fits
    on the store, untimed).
    """
    section = Section("clv", "Purchase models, Gamma-Gamma and CLV against lifetimes",
                      busy=f"load average {load_average()} at start")
    as_of = store.spec.period[1]
    db = open_db(store.db_path)
    days_t, days = measure(lambda: clv.paid_purchase_days(db, as_of), min(repeats, 3))
    summary_t, summary = measure(lambda: clv.summary_from_transactions(
        days, "customer_id", datetime_col="order_date", monetary_value_col="amount",
        observation_period_end=as_of), repeats)
    section.add(Row("paid purchase days from the store (SQL aggregate)", days_t, note=f"{len(days):,} rows"))
    section.add(Row("`summary_from_transactions`", summary_t, note=f"{len(summary):,} customers"))
    analysis = None
    if not pareto_only:
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            analysis = clv.analyse_customers(db, as_of)
        section.add(Row("`analyse_customers` (what notebook 04 calls: all of the above + values)",
                        Timing([time.perf_counter() - started])))
    env = lifetimes_env(deps_folder) if with_reference else None
    models = ("paretonbd",) if pareto_only else tuple(OTHER_MODELS)
    with tempfile.TemporaryDirectory(prefix="crm-bench-clv-") as tmp:
        work = Path(tmp)
        label = f"{len(summary):,} customers (the store's buyers)"
        if pareto_only:
            bgm, ggm = _fit_ours(summary)
            params = tuple(bgm.params_) + tuple(ggm.params_)
        else:
            params = _compare(section, label, summary, repeats, ref_repeats, env, work, weighted_reference=True)
        _compare_other_models(section, label, summary, max(1, repeats // 2), 1, env, work, models=models)
        if big:
            synthetic = bgnbd_summary(big, params[:4], params[4:], random_state=1)
            label = f"{big:,} customers (drawn from the fitted models)"
            if not pareto_only:
                _compare(section, label, synthetic, max(1, repeats // 2 + 1), max(1, ref_repeats - 1), env, work,
                         weighted_reference=False)
            _compare_other_models(section, label, synthetic, 1, 1, env, work, models=models)
    if analysis is None:
        value = "Only the Pareto/NBD measures were run (`--pareto-only`)."
    elif analysis.ok:
        value = f"Total value in the store: {analysis.total_clv:,.0f} (ours, notebook 04's settings)."
    else:
        value = "CLV analysis of the store failed: " + analysis.message
    section.notes.insert(0, (
        "Our models live in `crm_helpers.models.btyd` (re-exported by `crm_helpers.analyses.clv`). lifetimes 0.11.3 ran in a "
        f"separate process with its dependencies ({', '.join(LIFETIMES_DEPS)}) installed by the benchmark into "
        "`benchmarks/scale/lifetimes-deps` (`pip install --no-deps --target`), on the same summary. lifetimes' fits "
        "are given one row per customer as its documentation shows; the rows marked 'weights trick' give it the "
        "unique (frequency, recency, T) rows with their counts instead (the same likelihood); its Pareto/NBD search "
        "starts from a random point, seeded in `benchmarks/lifetimes_ref.py`. "
        f"CLV: {HORIZON_MONTHS} months, {ANNUAL_DISCOUNT:.0%} a year, margin 1. " + value
    ))
    return section
