"""An anytime-valid confidence sequence for "challenger minus champion" that survives changing weights,
drifting means and any reward distribution on [0, 1].

The estimand. θ is the difference in expected reward between the challenger and the champion for the
same request at the same moment: what a request gains (or loses) by being served by the challenger.
Drift that moves both arms alike (time of day, a changing user mix) does not change θ. Pooled per-arm
means do not estimate it once the weights move: at 5 → 25 → 50 % the challenger's rewards come mostly
from late traffic and the champion's from early traffic, so a shared drift looks like a difference
(Simpson's paradox). Each request is therefore weighted by the probability its own assignment had.

Per request i, in the order the rewards arrived, with p_c and p_0 the shares the router's weights
gave the two arms when the request was assigned (recorded with the request), Y_i its reward and b_i
the mean of the rewards before it (a predictable baseline that only reduces variance):

    φ_i = (Y_i - b_i) · (1[challenger] / p_c - 1[champion] / p_0)

E[φ_i | everything before i] = θ whatever the weights, the drift or b_i (inverse-propensity weighting
with a predictable control variate). φ_i is bounded, with bounds known before Y_i is seen.

The confidence sequence. For each side, an empirical-Bernstein e-process (Howard, Ramdas, McAuliffe &
Sekhon 2021, Thm. 4; with predictable bets as in Waudby-Smith & Ramdas 2023): for the lower side and
a candidate θ',

    M_t(θ') = Π_i exp( λ_i (φ_i - θ') - ψ_{c_i}(λ_i) (φ_i - φ̂_i)² ),   ψ_c(λ) = (-log(1 - cλ) - cλ) / c²

where φ̂_i is the running mean of the earlier φ (predictable), c_i bounds how far φ_i can fall below
φ̂_i, and the bet λ_i < 1/c_i is chosen before φ_i is seen. By Fan's inequality M_t(θ) is a
nonnegative supermartingale at the true θ for ANY distribution of the bounded φ — no normal
approximation, no plug-in variance, no minimum sample size for validity — and by Ville's inequality
P(ever M_t(θ) ≥ 1/alpha) ≤ alpha. The upper side is the same on -φ. Each bet is the one that grows
the e-process fastest under a shift a, λ_i = r / (1 + c_i r) with r = a / s²_i (s²_i a predictable
estimate of Var φ_i from each arm's squared deviations and the request's shares), capped at
BET_CAP / c_i. The e-process mixes a ∈ {1, 2, 4} x the minimum detectable effect with weights
BET_WEIGHTS, most on 2 x MDE: quick for a clear regression, and still narrowing below the MDE so that
futility can stop a challenger that cannot be better by it.

Each bound is one-sided at level 1 - alpha: a false rollback and a false promotion each happen with
probability at most alpha over the whole experiment (the decisions the rule takes), and [L, U]
together cover θ with probability at least 1 - 2 alpha. The bounds never meet (even constant rewards
leave a width of about log(1/alpha) / Σλ), and because they hold at every t at once, a caller may keep
the running intersection over its looks.

Assumptions, stated: rewarded requests are the units (a user's requests under ``User`` stickiness are
treated as independent draws, as every per-request test does), and the order in which rewards arrive
does not depend on the arm (a challenger whose rewards come back slower is compared on the rewards
that have come back).

Everything here is elementwise over leading batch axes, so bench/stats_sim.py runs thousands of
simulated experiments through the same functions the operator calls on one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

EFFECT_MULTIPLES = (1.0, 2.0, 4.0)  # bets tuned to these multiples of the minimum detectable effect
BET_WEIGHTS = (0.3, 0.5, 0.2)  # their share of the mixture: most on 2 x MDE, the regression that matters
BET_CAP = 0.8  # λ·c stays at or below this, where ψ_c is still finite and smooth
_PRIOR_REWARD = 0.5  # one pseudo-reward for the baseline before any reward is seen
_PRIOR_SQUARE = 0.25  # one pseudo-observation of (Y - b)² per arm: the largest a [0, 1] reward can have
_MIN_RANGE = 1e-3
_BISECTIONS = 50


@dataclass(frozen=True)
class SequenceState:
    """Running sums of the two e-processes (arrays of one batch shape; the bets along the last axis)."""

    count: Floats
    reward_total: Floats
    phi_total: Floats
    challenger_count: Floats
    champion_count: Floats
    challenger_squares: Floats  # Σ (Y - b)² over challenger rewards
    champion_squares: Floats
    lower_bets: Floats  # Σ λ (per bet), lower side
    lower_gain: Floats  # Σ λ φ
    lower_penalty: Floats  # Σ ψ_c(λ) (φ - φ̂)²
    upper_bets: Floats
    upper_gain: Floats
    upper_penalty: Floats

    @classmethod
    def empty(cls, batch: tuple[int, ...] = ()) -> SequenceState:
        zeros, bets = np.zeros(batch), np.zeros((*batch, len(EFFECT_MULTIPLES)))
        return cls(*(zeros.copy() for _ in range(7)), *(bets.copy() for _ in range(6)))


@dataclass(frozen=True)
class Interval:
    """The confidence sequence at one time, with the e-values of "no difference" on each side."""

    lower: Floats
    upper: Floats
    log_e_better: Floats  # evidence that the challenger is better (lower side at θ' = 0)
    log_e_worse: Floats  # evidence that it is worse (upper side at θ' = 0)

    def p_value(self) -> Floats:
        """The always-valid p-value of "no difference" for the side the data lean to: below alpha
        exactly when 0 is outside the sequence."""
        strongest = np.maximum(self.log_e_better, self.log_e_worse)
        result: Floats = np.exp(-np.maximum(strongest, 0.0))  # e-values below 1 are p = 1
        return result


def _before(values: Floats, start: Floats) -> Floats:
    """Σ of the earlier entries along the last axis, plus ``start``: what is known before each entry."""
    result: Floats = start[..., None] + np.cumsum(values, axis=-1) - values
    return result


def _psi(bet: Floats, reach: Floats) -> Floats:
    """ψ_c(λ) = (-log(1 - cλ) - cλ) / c², for cλ in [0, BET_CAP]."""
    scaled = bet * reach
    result: Floats = (-np.log1p(-scaled) - scaled) / (reach * reach)
    return result


def _bet(ratio: Floats, reach: Floats) -> Floats:
    """The bet that grows the e-process fastest under a shift a, s² = a / ratio: it maximises
    λa - ψ_c(λ)s², whose derivative vanishes at λ / (1 - cλ) = a / s²; capped at BET_CAP / c."""
    result: Floats = np.minimum(ratio / (1.0 + reach * ratio), BET_CAP / reach)
    return result


@dataclass(frozen=True)
class _Terms:
    """Per request of one block: the term φ, its squared deviation from the prediction, each arm's
    squared deviation from the baseline, and the bets of each side (bets along axis -2)."""

    usable: Bools
    reward: Floats
    challenger: Bools
    champion: Bools
    phi: Floats
    spread: Floats
    squares: Floats
    lower_bet: Floats
    upper_bet: Floats
    lower_psi: Floats  # ψ_c(λ) of the lower side's bets
    upper_psi: Floats


def _terms(
    state: SequenceState,
    reward: npt.ArrayLike,
    challenger: npt.ArrayLike,
    champion: npt.ArrayLike,
    share_challenger: npt.ArrayLike,
    share_champion: npt.ArrayLike,
    min_detectable_effect: float,
) -> _Terms:
    """Everything each request contributes, with every prediction made from the requests before it."""
    y = np.clip(np.asarray(reward, dtype=np.float64), 0.0, 1.0)
    p_c, p_0 = np.asarray(share_challenger, dtype=np.float64), np.asarray(share_champion, dtype=np.float64)
    usable = (p_c > 0) & (p_0 > 0) & np.isfinite(y)  # a reward that is not a number says nothing
    in_c = np.asarray(challenger, dtype=bool) & usable
    in_0 = np.asarray(champion, dtype=bool) & usable
    p_c, p_0 = np.where(usable, p_c, 1.0), np.where(usable, p_0, 1.0)
    y = np.where(usable, y, 0.0)
    seen = state.count[..., None] + np.cumsum(usable, axis=-1) - usable  # usable requests before each
    baseline = (_PRIOR_REWARD + _before(y, state.reward_total)) / (1.0 + seen)
    deviation = y - baseline
    phi = np.where(usable, deviation * (in_c / p_c - in_0 / p_0), 0.0)
    predicted = np.clip(_before(phi, state.phi_total) / (1.0 + seen), -1.0, 1.0)
    squares = deviation * deviation
    variance = (
        _arm_square(squares, in_c, state.challenger_squares, state.challenger_count) / p_c
        + _arm_square(squares, in_0, state.champion_squares, state.champion_count) / p_0
    )
    highest = np.maximum((1.0 - baseline) / p_c, baseline / p_0)
    lowest = -np.maximum(baseline / p_c, (1.0 - baseline) / p_0)
    reach_down = np.maximum(predicted - lowest, _MIN_RANGE)[..., None, :]  # φ - φ̂ ≥ -reach_down
    reach_up = np.maximum(highest - predicted, _MIN_RANGE)[..., None, :]  # φ̂ - φ ≥ -reach_up
    ratio = (min_detectable_effect * np.asarray(EFFECT_MULTIPLES))[:, None] / variance[..., None, :]
    mask = usable[..., None, :]
    lower_bet = np.where(mask, _bet(ratio, reach_down), 0.0)
    upper_bet = np.where(mask, _bet(ratio, reach_up), 0.0)
    return _Terms(
        usable=usable,
        reward=y,
        challenger=in_c,
        champion=in_0,
        phi=phi,
        spread=(phi - predicted) ** 2,
        squares=squares,
        lower_bet=lower_bet,
        upper_bet=upper_bet,
        lower_psi=_psi(lower_bet, reach_down),
        upper_psi=_psi(upper_bet, reach_up),
    )


def _arm_square(squares: Floats, arm: Bools, total: Floats, count: Floats) -> Floats:
    """The arm's mean squared deviation before each request (one pseudo-observation of the largest)."""
    result: Floats = (_PRIOR_SQUARE + _before(squares * arm, total)) / (
        1.0 + _before(arm.astype(np.float64), count)
    )
    return result


def extend(
    state: SequenceState,
    reward: npt.ArrayLike,
    challenger: npt.ArrayLike,
    champion: npt.ArrayLike,
    share_challenger: npt.ArrayLike,
    share_champion: npt.ArrayLike,
    min_detectable_effect: float,
) -> SequenceState:
    """Add rewarded requests (last axis, in arrival order) to ``state``.

    ``challenger`` / ``champion`` say which arm the request was *assigned* (a request of a third arm is
    neither); ``share_*`` are the probabilities the weights gave each arm for it. Requests where either
    share is 0 carry no information about the contrast and are skipped.
    """
    t = _terms(state, reward, challenger, champion, share_challenger, share_champion, min_detectable_effect)
    phi, spread = t.phi[..., None, :], t.spread[..., None, :]
    return replace(
        state,
        count=state.count + t.usable.sum(axis=-1),
        reward_total=state.reward_total + t.reward.sum(axis=-1),
        phi_total=state.phi_total + t.phi.sum(axis=-1),
        challenger_count=state.challenger_count + t.challenger.sum(axis=-1),
        champion_count=state.champion_count + t.champion.sum(axis=-1),
        challenger_squares=state.challenger_squares + (t.squares * t.challenger).sum(axis=-1),
        champion_squares=state.champion_squares + (t.squares * t.champion).sum(axis=-1),
        lower_bets=state.lower_bets + t.lower_bet.sum(axis=-1),
        lower_gain=state.lower_gain + (t.lower_bet * phi).sum(axis=-1),
        lower_penalty=state.lower_penalty + (t.lower_psi * spread).sum(axis=-1),
        upper_bets=state.upper_bets + t.upper_bet.sum(axis=-1),
        upper_gain=state.upper_gain + (t.upper_bet * phi).sum(axis=-1),
        upper_penalty=state.upper_penalty + (t.upper_psi * spread).sum(axis=-1),
    )


_LOG_WEIGHTS = np.log(np.asarray(BET_WEIGHTS))


def log_e_better(state: SequenceState, candidate: npt.ArrayLike) -> Floats:
    """log of the lower side's e-process at θ' = candidate: large when the data say θ > θ'.

    It falls as θ' rises, so "rejected at θ'" means every smaller θ' is rejected too."""
    at = np.asarray(candidate, dtype=np.float64)
    terms = state.lower_gain - at[..., None] * state.lower_bets - state.lower_penalty
    result: Floats = np.logaddexp.reduce(_LOG_WEIGHTS + terms, axis=-1)
    return result


def log_e_worse(state: SequenceState, candidate: npt.ArrayLike) -> Floats:
    """log of the upper side's e-process at θ' = candidate: large when the data say θ < θ'."""
    at = np.asarray(candidate, dtype=np.float64)
    terms = at[..., None] * state.upper_bets - state.upper_gain - state.upper_penalty
    result: Floats = np.logaddexp.reduce(_LOG_WEIGHTS + terms, axis=-1)
    return result


def interval(state: SequenceState, alpha: float) -> Interval:
    """The confidence sequence for θ at the state's time: each bound a one-sided level-(1 - alpha)
    bound (so a false rollback and a false promotion each have probability at most alpha), within
    [-1, 1], found by bisection on the monotone e-processes."""
    threshold = math.log(1.0 / alpha)
    shape = state.count.shape
    low_lo, high_lo = np.full(shape, -1.0), np.full(shape, 1.0)  # the lower bound lies in here
    low_up, high_up = np.full(shape, -1.0), np.full(shape, 1.0)  # the upper bound lies in here
    for _ in range(_BISECTIONS):
        middle = (low_lo + high_lo) / 2.0
        rejected = log_e_better(state, middle) >= threshold
        low_lo, high_lo = np.where(rejected, middle, low_lo), np.where(rejected, high_lo, middle)
        middle = (low_up + high_up) / 2.0
        rejected = log_e_worse(state, middle) >= threshold
        low_up, high_up = np.where(rejected, low_up, middle), np.where(rejected, middle, high_up)
    zero = np.zeros(shape)
    return Interval(
        lower=low_lo,
        upper=np.maximum(high_up, low_lo),  # both sides wrong at once (probability <= alpha): a point
        log_e_better=log_e_better(state, zero),
        log_e_worse=log_e_worse(state, zero),
    )
