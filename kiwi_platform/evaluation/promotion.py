"""The promotion decision from an evaluation summary: gates on headline metrics and upstream checks.

The candidate takes the alias only when it is not worse than the champion on any headline metric
beyond the tolerance and no blocking check upstream has failed; a champion without scores on the
same suite and settings blocks promotion rather than comparing unlike with unlike.
"""

from __future__ import annotations

from kiwi_platform.evaluation.compare import Decision, compare

JUDGE_PREFIXES = ("openve/", "refvie/")


def headline_metrics(candidate_headline: dict, offline: list[str], judge: list[str]) -> list[str]:
    """The offline headline, plus the judge headline when a judge scored the candidate."""
    judged = any(k.startswith(JUDGE_PREFIXES) for k in candidate_headline)
    if judged and any(k in candidate_headline for k in judge):
        return [*offline, *judge]
    return list(offline)


def decide(summary: dict, headline: list[str], tolerance: float, failed_checks: list[str]) -> Decision:
    """Promote or not, with every reason (metric deltas and failed blocking checks)."""
    cand, champ = summary["candidate"], summary["champion"]
    if champ is not None and not champ.get("headline"):
        decision = Decision(
            False,
            [
                f"champion v{champ['version']} has no evaluation on this suite and settings; "
                "re-run benchmark_results with evaluate_champion=true"
            ],
        )
    else:
        decision = compare(cand["headline"], champ["headline"] if champ else None, headline, tolerance=tolerance)
    reasons = list(decision.reasons) + [f"blocking check failed: {c}" for c in failed_checks]
    return Decision(decision.promote and not failed_checks, reasons, decision.deltas)
