"""Evaluation assets on the real graph: benchmark suites, results on the stage-3 model's MLflow run,
and the promotion gate that moves (or refuses to move) the `champion` alias."""

from __future__ import annotations

import json

import pytest

from kiwi_platform.runner import materialize
from kiwi_platform.tracking import tags as T
from tests.integration.test_refvie_assets import FULL_RUN_CONFIG, entered, graph_metadata, latest_metadata, shared_graph

HEADLINE = "offline/preservation_psnr"  # one of promoted_model's default headline metrics (higher is better)


@pytest.fixture(scope="module")
def graph(tmp_path_factory, small_synth):
    g = shared_graph(tmp_path_factory, small_synth)
    with entered(g) as instance:
        yield g, instance


def _stage_version(g, instance, stage: int) -> str:
    return str(graph_metadata(instance, g, f"stage{stage}_checkpoint")["model_version"])


@pytest.mark.slow
def test_first_evaluated_model_becomes_champion_with_eval_metrics(graph):
    """benchmark_suites, benchmark_results and promoted_model materialize; the stage-3 model is the
    first candidate, so it gets the `champion` alias, its run carries `eval/` metrics equal to the
    evaluation's headline, and the promotion is recorded on the version."""
    g, instance = graph
    outcome = g.global_outcome
    assert outcome.ok, outcome.errors
    assert {"benchmark_suites", "benchmark_results", "promoted_model"} <= set(outcome.materialized)
    suites = graph_metadata(instance, g, "benchmark_suites")
    assert suites["cases"] >= 2 and sum(suites["cases_per_suite"].values()) == suites["cases"]
    assert (g.resources["store"].root_path / f"{suites['dvc_path']}.dvc").is_file()
    results = graph_metadata(instance, g, "benchmark_results")
    version = _stage_version(g, instance, 3)
    assert results["candidate_version"] == version and results["champion_version"] == ""
    assert results["cases"] == suites["cases"]
    promoted = graph_metadata(instance, g, "promoted_model")
    assert promoted["promoted"] is True and promoted["candidate_version"] == version
    assert promoted["champion_uri"] == "models:/kiwi-edit@champion"

    tracking = g.resources["tracking"]
    client = tracking.client()
    champion = client.get_model_version_by_alias("kiwi-edit", "champion")
    assert str(champion.version) == version
    assert champion.tags["kiwi.promotion"] == "promoted"
    decision = json.loads(champion.tags["kiwi.promotion_decision"])
    assert decision["candidate"] == version and decision["champion"] is None and decision["promoted"] is True
    metrics = client.get_run(champion.run_id).data.metrics
    headline = json.loads(open(results["summary"]).read())["candidate"]["headline"]
    logged = {k[len("eval/"):]: v for k, v in metrics.items() if k.startswith("eval/")}
    finite = {k: v for k, v in headline.items() if v == v}
    assert HEADLINE in logged and set(logged) == set(finite)
    assert all(logged[k] == pytest.approx(v) for k, v in finite.items())
    artifacts = [f.path for f in client.list_artifacts(champion.run_id, "evaluation")]
    assert artifacts, "no evaluation artifacts on the model's run"


@pytest.mark.slow
def test_worse_candidate_is_refused_and_alias_stays(graph):
    """A candidate much worse than the champion on a headline metric is refused: the alias does not
    move, and the candidate version is tagged `kiwi.promotion=refused` with a decision naming both
    versions and the metric."""
    g, instance = graph
    client = g.resources["tracking"].client()
    champion = _stage_version(g, instance, 3)
    candidate = _stage_version(g, instance, 2)  # another registered version plays the new candidate
    assert str(client.get_model_version_by_alias("kiwi-edit", "champion").version) == champion
    summary_path = g.home / "evaluations" / "latest.json"
    original = summary_path.read_text()
    summary = json.loads(original)
    headline = summary["candidate"]["headline"]
    worse = {**headline, HEADLINE: headline[HEADLINE] - 5.0}
    summary.update(candidate={"version": candidate, "headline": worse, "results": ""},
                   champion={"version": champion, "headline": headline, "results": ""})  # fmt: skip
    summary_path.write_text(json.dumps(summary))
    try:
        [outcome] = materialize("promoted_model", defs=g.defs, run_config=FULL_RUN_CONFIG)
        assert outcome.ok, outcome.errors
        meta = latest_metadata(instance, "promoted_model")
        now = str(client.get_model_version_by_alias("kiwi-edit", "champion").version)
        cand = client.get_model_version("kiwi-edit", candidate)
        champ = client.get_model_version("kiwi-edit", champion)
    finally:
        summary_path.write_text(original)
        if str(client.get_model_version_by_alias("kiwi-edit", "champion").version) != champion:
            client.set_registered_model_alias("kiwi-edit", "champion", champion)  # keep later tests meaningful
    assert now == champion, "a worse candidate took the champion alias"
    assert meta["promoted"] is False
    assert (meta["candidate_version"], meta["previous_champion"]) == (candidate, champion)
    assert HEADLINE in meta["reasons"]
    assert cand.tags["kiwi.promotion"] == "refused"
    decision = json.loads(cand.tags["kiwi.promotion_decision"])
    assert (decision["candidate"], decision["champion"], decision["promoted"]) == (candidate, champion, False)
    assert any(HEADLINE in r for r in decision["reasons"])
    assert champ.tags["kiwi.promotion"] == "promoted" and "kiwi.replaced_by" not in champ.tags
    assert "champion" not in (cand.aliases or [])
    assert cand.tags[T.STAGE] == "2"  # the refusal went on the version named in the summary, not another


@pytest.mark.slow
def test_candidate_within_tolerance_is_promoted_over_the_champion(graph):
    """A candidate no worse than the champion beyond the tolerance takes the alias, and the old
    champion is tagged as replaced by it (both versions named)."""
    g, instance = graph
    client = g.resources["tracking"].client()
    champion = _stage_version(g, instance, 3)
    candidate = _stage_version(g, instance, 1)
    summary_path = g.home / "evaluations" / "latest.json"
    original = summary_path.read_text()
    summary = json.loads(original)
    headline = summary["candidate"]["headline"]
    nearly = {**headline, HEADLINE: headline[HEADLINE] - 0.01}  # inside the 0.05 default tolerance
    summary.update(candidate={"version": candidate, "headline": nearly, "results": ""},
                   champion={"version": champion, "headline": headline, "results": ""})  # fmt: skip
    summary_path.write_text(json.dumps(summary))
    try:
        [outcome] = materialize("promoted_model", defs=g.defs, run_config=FULL_RUN_CONFIG)
        now = str(client.get_model_version_by_alias("kiwi-edit", "champion").version)
        old = client.get_model_version("kiwi-edit", champion)
        cand = client.get_model_version("kiwi-edit", candidate)
    finally:
        summary_path.write_text(original)
        client.set_registered_model_alias("kiwi-edit", "champion", champion)
        client.delete_model_version_tag("kiwi-edit", champion, "kiwi.replaced_by")
    assert outcome.ok, outcome.errors
    assert now == candidate
    assert old.tags.get("kiwi.replaced_by") == candidate
    decision = json.loads(cand.tags["kiwi.promotion_decision"])
    assert (decision["candidate"], decision["champion"], decision["promoted"]) == (candidate, champion, True)
