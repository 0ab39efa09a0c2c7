"""The reference side of the CLV benchmark: the ``lifetimes`` package on a given summary.

Run in its own process with lifetimes' dependencies (dill, autograd) on ``PYTHONPATH`` (see
:func:`benchmarks.bench_clv.lifetimes_env`); the workbook's own environment does not have them.

``python -m benchmarks.lifetimes_ref SUMMARY.npz OUT.npz --repeats N [--weights]`` reads
frequency, recency, T (days) and monetary_value, and per run times

- ``BetaGeoFitter().fit(frequency, recency, T)`` (one row per customer, as documented; with
  ``--weights`` on the unique (frequency, recency, T) rows with their counts instead);
- ``GammaGammaFitter().fit`` on the repeat buyers;
- ``GammaGammaFitter.customer_lifetime_value(bgf, ..., time=12, discount_rate=d, freq="D")``.

It writes the fitted parameters, the timings, and per customer the CLV, the expected purchases
in the next 30 days and the expected average spend, for the comparison.

With ``--model mbgnbd`` or ``--model paretonbd`` it times ``ModifiedBetaGeoFitter().fit`` or
``ParetoNBDFitter().fit`` instead (one row per customer; with ``--weights`` on the unique rows with
their counts, the same likelihood) and prints their parameters and times only. lifetimes'
Pareto/NBD search starts from a random point (``np.random.normal(1, 0.05)`` per parameter); the
generator is seeded here so that a run can be repeated. ``--start r,alpha,s,beta`` (times in
days) starts the search there instead (lifetimes' ``initial_params``, in its time scale), and
``--tol`` sets its ``tol`` (default 1e-4, which stops Nelder-Mead early on a flat ridge); with
``--at r,alpha,s,beta`` (another fit's parameters) the Pareto/NBD reference also prints lifetimes'
own log-likelihood at those parameters less that at its result (``own_ll_gain_at``): an
independent implementation of the likelihood saying which of the two fits is the better one.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
import pandas as pd


OTHER_FITTERS = {"mbgnbd": "ModifiedBetaGeoFitter", "paretonbd": "ParetoNBDFitter"}


def _other_model(summary: str, model: str, repeats: int, weights: bool, start: list[float] | None,
                 at: list[float] | None, tol: float | None) -> None:
    """Time one of lifetimes' other purchase models on the summary; print its parameters and times as JSON."""
    import lifetimes

    data = np.load(summary)
    frame = pd.DataFrame({k: data[k] for k in ("frequency", "recency", "T")})
    if weights:
        frame = frame.groupby(["frequency", "recency", "T"]).size().rename("weights").reset_index()
    counts = frame["weights"] if weights else None
    fitter_class = getattr(lifetimes, OTHER_FITTERS[model])
    np.random.seed(0)
    initial = None
    if start is not None:  # lifetimes searches in time units where the oldest customer's age is 1
        r, alpha, s, beta = start
        initial = np.array([r, alpha / frame["T"].max(), s, beta / frame["T"].max()])
    times, fitter = [], None
    for _ in range(repeats):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            started = time.perf_counter()
            fitter = fitter_class().fit(frame["frequency"], frame["recency"], frame["T"], weights=counts,
                                        initial_params=initial, **({} if tol is None else {"tol": tol}))
            times.append(time.perf_counter() - started)
    out = {"params": {k: float(v) for k, v in fitter.params_.items()}, "times": times, "rows": len(frame)}
    if at is not None and model == "paretonbd":
        out["own_ll_gain_at"] = _pareto_own_ll(fitter, frame, counts, at) - _pareto_own_ll(
            fitter, frame, counts, list(out["params"].values()))
    print(json.dumps(out))


def _pareto_own_ll(fitter, frame: pd.DataFrame, counts: pd.Series | None, params: list[float]) -> float:
    """lifetimes' own Pareto/NBD log-likelihood of the rows at ``params`` (times in days), in its time scale."""
    r, alpha, s, beta = params
    scale = fitter._scale
    ll = fitter._conditional_log_likelihood((r, alpha * scale, s, beta * scale), frame["frequency"].to_numpy(),
                                            frame["recency"].to_numpy() * scale, frame["T"].to_numpy() * scale)
    return float(np.sum(ll * (1.0 if counts is None else counts.to_numpy())))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("summary")
    parser.add_argument("out")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--weights", action="store_true")
    parser.add_argument("--monthly-discount", type=float, required=True)
    parser.add_argument("--no-clv", action="store_true")
    parser.add_argument("--model", choices=["bgnbd_gg", *OTHER_FITTERS], default="bgnbd_gg")
    parser.add_argument("--start", help="r,alpha,s,beta (days) where lifetimes' Pareto/NBD search starts")
    parser.add_argument("--tol", type=float, help="lifetimes' fit tolerance (its default when not given)")
    parser.add_argument("--at", help="r,alpha,s,beta (days) at which to compare lifetimes' own Pareto/NBD likelihood")
    args = parser.parse_args()
    if args.model != "bgnbd_gg":
        start, at = ([float(v) for v in arg.split(",")] if arg else None for arg in (args.start, args.at))
        _other_model(args.summary, args.model, args.repeats, args.weights, start, at, args.tol)
        return

    from lifetimes import BetaGeoFitter, GammaGammaFitter

    data = np.load(args.summary)
    frame = pd.DataFrame({k: data[k] for k in ("frequency", "recency", "T", "monetary_value")})
    repeat = frame[(frame["frequency"] > 0) & (frame["monetary_value"] > 0)]
    times: dict[str, list[float]] = {"bgnbd_fit": [], "gg_fit": [], "clv": []}
    bgf = ggf = clv = None
    for _ in range(args.repeats):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            started = time.perf_counter()
            if args.weights:
                grouped = frame.groupby(["frequency", "recency", "T"]).size().rename("weights").reset_index()
                bgf = BetaGeoFitter().fit(grouped["frequency"], grouped["recency"], grouped["T"],
                                          weights=grouped["weights"])
            else:
                bgf = BetaGeoFitter().fit(frame["frequency"], frame["recency"], frame["T"])
            times["bgnbd_fit"].append(time.perf_counter() - started)
            started = time.perf_counter()
            ggf = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
            times["gg_fit"].append(time.perf_counter() - started)
            if not args.no_clv:
                started = time.perf_counter()
                clv = ggf.customer_lifetime_value(bgf, frame["frequency"], frame["recency"], frame["T"],
                                                  frame["monetary_value"], time=12,
                                                  discount_rate=args.monthly_discount, freq="D")
                times["clv"].append(time.perf_counter() - started)
    out = {
        "clv": np.asarray(clv, dtype=float) if clv is not None else np.array([]),
        "expected_30": np.asarray(bgf.conditional_expected_number_of_purchases_up_to_time(
            30, frame["frequency"], frame["recency"], frame["T"]), dtype=float),
        "expected_value": np.asarray(ggf.conditional_expected_average_profit(
            frame["frequency"], frame["monetary_value"]), dtype=float),
    }
    np.savez(args.out, **out)
    meta = {"bgnbd": {k: float(v) for k, v in bgf.params_.items()},
            "gg": {k: float(v) for k, v in ggf.params_.items()}, "times": times}
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
