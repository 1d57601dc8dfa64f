"""The promotion gate: promote only when not worse than the champion on any headline metric beyond tolerance."""

from __future__ import annotations

import pytest

from kiwi_platform.evaluation.compare import compare, higher_is_better

HEAD = ["openve/overall", "refvie/overall", "offline/target_l1"]
CHAMP = {"openve/overall": 3.0, "refvie/overall": 3.3, "offline/target_l1": 0.20}


def test_first_model_is_always_promotable() -> None:
    """With no champion the candidate is promoted, and the reason says why."""
    d = compare({"openve/overall": 1.0, "refvie/overall": 1.0, "offline/target_l1": 0.9}, None, HEAD, 0.0)
    assert d.promote and "no champion" in d.reasons[0]


def test_worse_score_beyond_tolerance_blocks_and_names_the_metric() -> None:
    """A drop of 0.2 on OpenVE with tolerance 0.1 refuses promotion and the reason names the metric and numbers."""
    cand = {**CHAMP, "openve/overall": 2.8}
    d = compare(cand, CHAMP, HEAD, 0.1)
    assert not d.promote
    assert any("openve/overall" in r and "2.8" in r for r in d.reasons)
    assert d.deltas["openve/overall"] == pytest.approx(-0.2)


def test_small_drop_within_tolerance_still_promotes() -> None:
    """A drop of 0.05 with tolerance 0.1 is noise, not a regression."""
    d = compare({**CHAMP, "openve/overall": 2.95}, CHAMP, HEAD, 0.1)
    assert d.promote


def test_direction_matters_for_lower_is_better_metrics() -> None:
    """target_l1 is lower-is-better: a higher error blocks, a lower one does not."""
    assert not higher_is_better("offline/target_l1") and higher_is_better("offline/openve/local_add/target_psnr")
    assert not compare({**CHAMP, "offline/target_l1": 0.30}, CHAMP, HEAD, 0.05).promote
    assert compare({**CHAMP, "offline/target_l1": 0.10}, CHAMP, HEAD, 0.05).promote
    # an explicit direction override flips the decision
    assert not compare(
        {**CHAMP, "offline/target_l1": 0.10}, CHAMP, HEAD, 0.05, directions={"offline/target_l1": True}
    ).promote


def test_per_metric_tolerance_dict_with_default() -> None:
    """Tolerances can differ per metric; unnamed metrics use the 'default' entry."""
    cand = {**CHAMP, "openve/overall": 2.8, "refvie/overall": 3.25}
    tol = {"openve/overall": 0.25, "default": 0.01}
    d = compare(cand, CHAMP, HEAD, tol)
    assert not d.promote
    assert any(r.startswith("refvie/overall") for r in d.reasons)
    assert not any(r.startswith("openve/overall") for r in d.reasons)


def test_missing_candidate_metric_blocks_but_missing_champion_metric_does_not() -> None:
    """A gate that cannot be checked is not passed; a metric the champion never had is noted, not blocking."""
    cand = {k: v for k, v in CHAMP.items() if k != "refvie/overall"}
    d = compare(cand, CHAMP, HEAD, 0.0)
    assert not d.promote and any("candidate has no value for refvie/overall" in r for r in d.reasons)
    champ = {k: v for k, v in CHAMP.items() if k != "refvie/overall"}
    d2 = compare(CHAMP, champ, HEAD, 0.0)
    assert d2.promote and any("champion has no value" in r for r in d2.reasons)
