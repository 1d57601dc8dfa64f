"""Evaluation assets on the real graph: benchmark suites, results on the stage-3 model's MLflow run,
and the promotion gate that moves (or refuses to move) the `champion` alias."""

from __future__ import annotations

import copy
import json
import zipfile
from pathlib import Path

import dagster as dg
import pytest

from kiwi_platform.lib import mlflow_tags, shards
from kiwi_platform.runner import materialize
from tests.integration.test_refvie_assets import FULL_RUN_CONFIG, entered, graph_metadata, latest_metadata, shared_graph

HEADLINE = "offline/preservation_psnr"  # one of promoted_model's default headline metrics (higher is better)


@pytest.fixture(scope="module")
def graph(tmp_path_factory, small_synth):
    g = shared_graph(tmp_path_factory, small_synth)
    with entered(g) as instance:
        yield g, instance


def _results_metadata(instance: dg.DagsterInstance) -> dict:
    """The latest benchmark_results materialization's metadata (its `summary` is what promotion reads)."""
    event = instance.get_latest_materialization_event(dg.AssetKey("benchmark_results"))
    return dict(event.asset_materialization.metadata)


def _record_results(instance: dg.DagsterInstance, metadata: dict) -> None:
    """Record a benchmark_results materialization with this metadata, as a scenario for promoted_model."""
    instance.report_runless_asset_event(dg.AssetMaterialization("benchmark_results", metadata=metadata))


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
    headline = results["summary"]["candidate"]["headline"]  # promotion reads this record, not a side file
    logged = {k[len("eval/") :]: v for k, v in metrics.items() if k.startswith("eval/")}
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
    original = _results_metadata(instance)
    summary = copy.deepcopy(original["summary"].value)
    headline = summary["candidate"]["headline"]
    worse = {**headline, HEADLINE: headline[HEADLINE] - 5.0}
    summary.update(
        candidate={"version": candidate, "headline": worse, "results": ""},
        champion={"version": champion, "headline": headline, "results": ""},
    )
    _record_results(instance, {**original, "summary": dg.MetadataValue.json(summary)})
    try:
        [outcome] = materialize("promoted_model", defs=g.defs, run_config=FULL_RUN_CONFIG)
        assert outcome.ok, outcome.errors
        meta = latest_metadata(instance, "promoted_model")
        now = str(client.get_model_version_by_alias("kiwi-edit", "champion").version)
        cand = client.get_model_version("kiwi-edit", candidate)
        champ = client.get_model_version("kiwi-edit", champion)
    finally:
        _record_results(instance, original)
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
    assert cand.tags[mlflow_tags.STAGE] == "2"  # the refusal went on the version named in the summary, not another


@pytest.mark.slow
def test_candidate_within_tolerance_is_promoted_over_the_champion(graph):
    """A candidate no worse than the champion beyond the tolerance takes the alias, and the old
    champion is tagged as replaced by it (both versions named)."""
    g, instance = graph
    client = g.resources["tracking"].client()
    champion = _stage_version(g, instance, 3)
    candidate = _stage_version(g, instance, 1)
    original = _results_metadata(instance)
    summary = copy.deepcopy(original["summary"].value)
    headline = summary["candidate"]["headline"]
    nearly = {**headline, HEADLINE: headline[HEADLINE] - 0.01}  # inside the 0.05 default tolerance
    summary.update(
        candidate={"version": candidate, "headline": nearly, "results": ""},
        champion={"version": champion, "headline": headline, "results": ""},
    )
    _record_results(instance, {**original, "summary": dg.MetadataValue.json(summary)})
    try:
        [outcome] = materialize("promoted_model", defs=g.defs, run_config=FULL_RUN_CONFIG)
        now = str(client.get_model_version_by_alias("kiwi-edit", "champion").version)
        old = client.get_model_version("kiwi-edit", champion)
        cand = client.get_model_version("kiwi-edit", candidate)
    finally:
        _record_results(instance, original)
        client.set_registered_model_alias("kiwi-edit", "champion", champion)
        client.delete_model_version_tag("kiwi-edit", champion, "kiwi.replaced_by")
    assert outcome.ok, outcome.errors
    assert now == candidate
    assert old.tags.get("kiwi.replaced_by") == candidate
    decision = json.loads(cand.tags["kiwi.promotion_decision"])
    assert (decision["candidate"], decision["champion"], decision["promoted"]) == (candidate, champion, True)


def _append_to_member(shard: Path, member: str, extra: bytes) -> None:
    """Rewrite `shard` with `extra` appended to one member (a file changed after QC, inside its shard)."""
    data = {name: shards.read_bytes(shards.member_ref(shard, name)) for name in shards.members(shard)}
    data[member] += extra
    with zipfile.ZipFile(shard, "w", zipfile.ZIP_STORED) as zf:
        for name, blob in data.items():
            zf.writestr(name, blob)


@pytest.mark.slow
def test_failed_blocking_check_blocks_promotion_of_a_better_candidate(graph):
    """While a blocking check upstream has failed (a reference image changed after QC), even a better
    candidate is refused and the refusal names the check; once the batch is fixed the checks pass again."""
    from tests.integration.test_refvie_assets import BATCH

    g, instance = graph
    client = g.resources["tracking"].client()
    store = g.resources["store"]
    champion = _stage_version(g, instance, 3)
    candidate = _stage_version(g, instance, 1)
    quads = store.read_table(BATCH, "quadruplets")
    shard, member = shards.split(store.root_path / quads.loc[quads["ref_image"] != "", "ref_image"].iloc[0])
    original_shard = shard.read_bytes()
    original = _results_metadata(instance)
    summary = copy.deepcopy(original["summary"].value)
    headline = summary["candidate"]["headline"]
    better = {**headline, HEADLINE: headline[HEADLINE] + 5.0}
    summary.update(
        candidate={"version": candidate, "headline": better, "results": ""},
        champion={"version": champion, "headline": headline, "results": ""},
    )
    try:
        _append_to_member(shard, member, b"\0")  # PIL still reads it; its sha256 no longer matches
        [broken] = materialize("quadruplets", [BATCH], defs=g.defs, run_config=FULL_RUN_CONFIG)
        _record_results(instance, {**original, "summary": dg.MetadataValue.json(summary)})
        [outcome] = materialize("promoted_model", defs=g.defs, run_config=FULL_RUN_CONFIG)
        meta = latest_metadata(instance, "promoted_model")
        now = str(client.get_model_version_by_alias("kiwi-edit", "champion").version)
    finally:
        _record_results(instance, original)
        shard.write_bytes(original_shard)
        [fixed] = materialize("quadruplets", [BATCH], defs=g.defs, run_config=FULL_RUN_CONFIG)
        if str(client.get_model_version_by_alias("kiwi-edit", "champion").version) != champion:
            client.set_registered_model_alias("kiwi-edit", "champion", champion)
    assert [(c.name, c.passed) for c in broken.failed_blocking_checks] == [("quadruplet_files_intact", False)]
    assert outcome.ok, outcome.errors
    assert now == champion and meta["promoted"] is False
    assert "blocking check failed: quadruplets:quadruplet_files_intact[synth]" in meta["reasons"]
    assert fixed.ok and not fixed.failed_blocking_checks


@pytest.mark.slow
def test_existing_champion_is_not_ignored_when_it_is_not_re_evaluated(graph):
    """With a champion in place, running benchmark_results with evaluate_champion=false and then
    promoted_model must not treat the candidate as the first model: the decision names the current
    champion and never says there is none."""
    g, instance = graph
    tracking = g.resources["tracking"]
    client = tracking.client()
    champion = _stage_version(g, instance, 3)
    stand_in = _stage_version(g, instance, 2)  # the champion for this test: a version other than the candidate
    original = _results_metadata(instance)
    config = {"ops": {**FULL_RUN_CONFIG["ops"], "benchmark_results": {"config": {"evaluate_champion": False}}}}
    saved_tags = {v: dict(client.get_model_version("kiwi-edit", v).tags) for v in (champion, stand_in)}
    client.set_registered_model_alias("kiwi-edit", "champion", stand_in)
    try:
        outcomes = materialize("benchmark_results+", defs=g.defs, run_config=config)
        candidate = str(latest_metadata(instance, "benchmark_results")["candidate_version"])
        saved_tags.setdefault(candidate, {})
        decision = json.loads(client.get_model_version("kiwi-edit", candidate).tags["kiwi.promotion_decision"])
    finally:
        _record_results(instance, original)
        client.set_registered_model_alias("kiwi-edit", "champion", champion)
        for version, tags in saved_tags.items():
            current = client.get_model_version("kiwi-edit", version).tags
            for key in ("kiwi.promotion", "kiwi.promotion_decision", "kiwi.replaced_by"):
                if key in tags:
                    client.set_model_version_tag("kiwi-edit", version, key, tags[key])
                elif key in current:
                    client.delete_model_version_tag("kiwi-edit", version, key)
    assert all(o.ok for o in outcomes), [o.errors for o in outcomes]
    assert candidate != stand_in
    assert decision["champion"] == stand_in, decision
    assert not any("no champion yet" in r for r in decision["reasons"]), decision["reasons"]


@pytest.mark.slow
def test_benchmark_suites_picks_up_registered_suites(platform, demo_dir, tmp_path):
    """A suite registered with `kiwi suite add` (here through the same library call) joins the evaluated suite:
    its cases are in the merged `all` suite, and the materialization lists it with its format and skipped rows."""
    from assets.evaluation import SUITES_DIR, benchmark_suites
    from kiwi_platform.evaluation import load_suite
    from kiwi_platform.evaluation.suite_registry import register_suite
    from tests.evaluation.released_fixtures import openve_bench

    _, resources, instance = platform
    csv, root = openve_bench(demo_dir, tmp_path / "released")
    registered = register_suite(resources["store"].root_path, "openve-mini", "openve-bench", csv, root)
    config = {"ops": {"benchmark_suites": {"config": {"n": 2, "frames": 5, "height": 64, "width": 96}}}}
    result = dg.materialize(
        [benchmark_suites],
        resources={k: resources[k] for k in ("store", "dvc", "settings")},
        run_config=config,
        instance=instance,
    )
    assert result.success
    metadata = result.asset_materializations_for_node("benchmark_suites")[0].metadata
    listed = metadata["registered_suites"].value["openve-mini"]
    assert listed["format"] == "openve-bench" and listed["skipped"] == {"creative_edit": 1, "subtitle_edit": 1}
    assert metadata["skipped_as_upstream"].value == 2
    merged = load_suite(resources["store"].root_path / SUITES_DIR / "all")
    assert {c.case_id for c in registered.suite.cases} <= {c.case_id for c in merged.cases}
