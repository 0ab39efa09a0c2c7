"""Predictive ranges by simulation: where the purchases (or spend) of a set of customers will fall.

A fitted model's point prediction leaves out two things the owner meets in practice: the fitted
parameters are uncertain, and each customer's own purchases are random even when the parameters
are known (a customer expected to buy 0.7 times buys 0, 1 or 2 times). A predictive range holds
both. :class:`FutureSampler` draws them: for each of ``n_draws`` draws, one parameter vector (from
the fit's asymptotic normal), then for every customer their latent state given their history
(alive or not, purchase rate, dropout, spend level) and their purchases (and spend) over the
horizon. The draws of one customer block are reproducible (seeded by the block), so the range of
any group of customers can be drawn again later without keeping a customers × draws matrix.

Nothing here knows a model: the model gives a ``draw_block`` function (see
:meth:`crm_helpers.models.btyd.PurchaseModel.future_sampler`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from crm_helpers.errors import CrmError

DEFAULT_DRAWS = 1000
"""Simulated futures behind a range: the 10th and 90th percentiles of 1,000 draws are known to
about ±1 percentile point."""

BLOCK_CELLS = 2_000_000
"""Customers × draws simulated at once (about 16 MB a float array): bounds the memory at any size."""

DrawBlock = Callable[[np.ndarray, np.random.Generator], np.ndarray]
"""Given customer positions and a random generator, a (customers × draws) array of simulated values."""


class RangeLevelError(CrmError, ValueError):
    """The level of a range is not a share strictly between 0 and 1."""


def quantile_bounds(values: np.ndarray, level: float, *, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """The central ``level`` share of ``values`` along ``axis``: its ((1−level)/2, (1+level)/2) quantiles."""
    if not 0 < level < 1:
        raise RangeLevelError(f"the level of a range is a share between 0 and 1, e.g. 0.8 (got {level!r})")
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2], axis=axis)
    return low, high


@dataclass
class FutureSampler:
    """Simulated futures of ``n_customers`` customers, drawn block by block on demand.

    ``draw_block(positions, rng)`` returns the simulated values (purchases, spend or profit over the
    horizon) of the customers at ``positions``, one column per draw; column d always uses the
    same parameter draw, so columns add up across blocks and groups. ``model_sd`` (log scale) is
    the model's own error, beyond parameters and chance: every draw's values are multiplied by one
    common factor e^(model_sd · z_d), z_d standard normal, which widens every range on both sides.
    """

    draw_block: DrawBlock
    n_customers: int
    n_draws: int
    seed: int = 0
    model_sd: float = 0.0
    _factor: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        z = np.random.default_rng([self.seed, 2]).standard_normal(self.n_draws)
        self._factor = np.exp(self.model_sd * z)

    def _blocks(self, positions: np.ndarray):
        size = max(1, BLOCK_CELLS // max(self.n_draws, 1))
        for k, start in enumerate(range(0, len(positions), size)):
            block = positions[start:start + size]
            yield block, self.draw_block(block, np.random.default_rng([self.seed, 1, k])) * self._factor

    def totals(self, members: np.ndarray | None = None, *, weights: np.ndarray | None = None) -> np.ndarray:
        """The simulated total of the customers marked in ``members`` (boolean mask; all by default), one per
        draw; with ``weights`` (one per customer), each customer's values weighted before they are added."""
        positions = np.arange(self.n_customers) if members is None else np.flatnonzero(members)
        total = np.zeros(self.n_draws)
        for block, values in self._blocks(positions):
            total += (values * weights[block, None]).sum(axis=0) if weights is not None else values.sum(axis=0)
        return total

    def totals_by(self, labels: np.ndarray) -> dict[object, np.ndarray]:
        """The simulated total of every group of customers (``labels``: one label per customer), one
        per draw, in one pass over the customers."""
        codes, groups = pd.factorize(np.asarray(labels), use_na_sentinel=False)
        sums = np.zeros((len(groups), self.n_draws))
        for block, values in self._blocks(np.arange(self.n_customers)):
            order = np.argsort(codes[block], kind="stable")  # the block's customers group by group
            sorted_codes = codes[block][order]
            starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
            sums[sorted_codes[starts]] += np.add.reduceat(values[order], starts, axis=0)
        return {group: sums[k] for k, group in enumerate(groups)}

    def per_customer(self, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per customer, the low and high ends of the central ``level`` share of their simulated
        values; and the simulated total of everybody, one per draw (one pass for both)."""
        low, high = np.empty(self.n_customers), np.empty(self.n_customers)
        total = np.zeros(self.n_draws)
        for block, values in self._blocks(np.arange(self.n_customers)):
            total += values.sum(axis=0)
            low[block], high[block] = quantile_bounds(values, level, axis=1)
        return low, high, total


@dataclass(frozen=True)
class PredictiveRange:
    """Where the realised total of a set of customers will fall with probability ``level``.

    ``expected``: the model's expected total (at the fitted parameters); ``low`` / ``high``: the
    ends of the central ``level`` share of the simulated totals (``totals``, one per draw), which
    include the parameters' uncertainty, each customer's own randomness and, where given, the
    model's own error. ``per_customer``: one row per customer (the input's index when it was a
    Series) with expected, low and high, the same for each customer alone. ``what`` names the
    quantity ("repeat purchases", "spend") and ``horizon`` the periods ahead. ``message`` says
    why there is no range ("" when there is one).
    """

    what: str
    horizon: float
    level: float
    expected: float
    low: float
    high: float
    per_customer: pd.DataFrame
    totals: np.ndarray
    message: str = ""

    @property
    def ok(self) -> bool:
        return not self.message

    def contains(self, value: float) -> bool:
        """Whether a realised total lies within the range (both ends included)."""
        return bool(self.low <= value <= self.high)


def predictive_range(
    sampler: FutureSampler, expected: np.ndarray, *, what: str, horizon: float, level: float,
    index: pd.Index | None = None,
) -> PredictiveRange:
    """The :class:`PredictiveRange` of everybody in ``sampler``, with ``expected`` per customer."""
    each_low, each_high, totals = sampler.per_customer(level)
    low, high = quantile_bounds(totals, level)
    frame = pd.DataFrame({"expected": expected, "low": each_low, "high": each_high},
                         index=index if index is not None else pd.RangeIndex(len(expected)))
    return PredictiveRange(what, float(horizon), level, float(np.sum(expected)), float(low), float(high), frame,
                           totals)
