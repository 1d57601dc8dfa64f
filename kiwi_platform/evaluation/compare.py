"""The promotion gate as a pure function: is the candidate at least as good as the champion?

Rule: promote only if, on every headline metric, the candidate is not worse than the champion by
more than the tolerance, in that metric's direction (higher is better for judge scores, PSNR,
SSIM, fidelity...; lower for `target_l1` and `flicker`). The first model (no champion) is always
promotable. A headline metric the candidate lacks (or has as NaN) blocks promotion: a gate that
cannot be checked is not passed. One the champion lacks is not compared (noted in the reasons).
Tolerances are absolute, in the metric's unit: one float for all, or a dict by metric name with an
optional "default" entry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from kiwi_platform.evaluation.metrics import METRICS

LOWER_IS_BETTER = frozenset(name for name, info in METRICS.items() if info.higher_is_better is False)


@dataclass(frozen=True)
class Decision:
    promote: bool
    reasons: list[str] = field(default_factory=list)
    deltas: dict[str, float] = field(default_factory=dict)  # candidate - champion, per compared metric

    def summary(self) -> str:
        return ("promote: " if self.promote else "keep champion: ") + "; ".join(self.reasons)


def higher_is_better(name: str) -> bool:
    """Direction of a flat metric name: its last path part decides (`offline/openve/flicker` -> lower)."""
    return name.rsplit("/", 1)[-1] not in LOWER_IS_BETTER


def _tolerance(tolerance: float | Mapping[str, float], name: str) -> float:
    if isinstance(tolerance, Mapping):
        return float(tolerance.get(name, tolerance.get("default", 0.0)))
    return float(tolerance)


def _bad(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def compare(
    candidate: Mapping[str, float],
    champion: Mapping[str, float] | None,
    headline: list[str],
    tolerance: float | Mapping[str, float] = 0.0,
    directions: Mapping[str, bool] | None = None,
) -> Decision:
    """Decide promotion; `directions` overrides higher-is-better per metric name."""
    if not headline:
        raise ValueError("compare needs at least one headline metric")
    if champion is None:
        missing = [m for m in headline if _bad(candidate.get(m))]
        if missing:
            return Decision(False, [f"candidate has no value for {m}" for m in missing])
        return Decision(True, ["no champion yet: the first evaluated model is promoted"])
    reasons: list[str] = []
    deltas: dict[str, float] = {}
    blocked = False
    for name in headline:
        cand, champ = candidate.get(name), champion.get(name)
        if _bad(cand):
            blocked = True
            reasons.append(f"candidate has no value for {name}")
            continue
        if _bad(champ):
            reasons.append(f"{name}: champion has no value, not compared")
            continue
        delta = float(cand) - float(champ)
        deltas[name] = delta
        up = directions.get(name, higher_is_better(name)) if directions else higher_is_better(name)
        worse_by = -delta if up else delta
        tol = _tolerance(tolerance, name)
        if worse_by > tol + 1e-12:
            blocked = True
            reasons.append(
                f"{name}: {cand:.4g} vs champion {champ:.4g} ({'higher' if up else 'lower'} is better; "
                f"worse by {worse_by:.4g} > tolerance {tol:.4g})"
            )
    if not blocked:
        reasons.insert(0, f"not worse than the champion beyond tolerance on {len(deltas)} headline metric(s)")
    return Decision(not blocked, reasons, deltas)
