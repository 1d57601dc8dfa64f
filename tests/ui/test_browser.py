"""The Dagster UI as a new user drives it, in headless Chromium, against a home where `kiwi ingest` ran.

One server for the module; the tests run in file order and the first looks at the timeline before
any run is launched from the UI, so the run it finds there is the command line's.
"""

from __future__ import annotations

import time

import dagster as dg
import pytest

from tests.ui.conftest import BATCH, RUN_TIMEOUT_S

pytestmark = [pytest.mark.slow, pytest.mark.ui]

GROUPS = {
    "ingestion": {"raw_edit_pairs", "normalized_clips"},
    "refvie": {"edit_regions", "reference_images", "quadruplets"},
    "training": {
        "training_manifests",
        "training_features",
        "stage1_checkpoint",
        "stage2_checkpoint",
        "stage3_checkpoint",
    },
    "evaluation": {"benchmark_suites", "benchmark_results", "promoted_model"},
}
RUNS = "{ runsOrError { ... on Runs { results { id status tags { key value } } } } }"


def _runs(ui) -> dict[str, dict]:
    return {r["id"]: r for r in ui.graphql(RUNS)["runsOrError"]["results"]}


def _code_location_groups() -> dict[str, set[str]]:
    """Group -> asset names as the code location defines them (what the graph must show)."""
    import assets

    groups: dict[str, set[str]] = {}
    for item in dg.load_assets_from_package_module(assets):
        if isinstance(item, dg.AssetsDefinition):
            for key in item.keys:
                groups.setdefault(item.group_names_by_key[key], set()).add(key.to_user_string())
    return groups


def _launched_run(ui, page, before: set[str], shot) -> dict:
    """The one run created since `before`, followed on its run page until it ends; returns it."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not (new := set(_runs(ui)) - before):
        assert time.monotonic() < deadline, "no run was created by the launch"
        time.sleep(1)
    [run_id] = new
    page.goto(f"/runs/{run_id}")
    while (run := _runs(ui)[run_id])["status"] not in ("SUCCESS", "FAILURE", "CANCELED"):
        assert time.monotonic() < deadline, f"run {run_id} still {run['status']} after {RUN_TIMEOUT_S} s"
        time.sleep(2)
    page.reload()
    page.get_by_text("Success" if run["status"] == "SUCCESS" else "Failure").first.wait_for()
    shot(page, "run")
    return run


def _open_materialize_dialog(page):
    page.goto("/assets/raw_edit_pairs")
    page.get_by_role("button", name="Materialize…").click()
    dialog = page.get_by_role("dialog").first
    dialog.get_by_text("Partition selection").wait_for()
    return dialog


def test_overview_timeline_lists_the_cli_run(page, ui, shot):
    """After `kiwi ingest` only, the Overview timeline is not empty: it lists the command line's run
    under the code location (before issue 16.2 it said "No runs")."""
    runs = _runs(ui)
    assert {t["value"] for r in runs.values() for t in r["tags"] if t["key"] == "kiwi/source"} == {"cli"}
    page.goto("/overview/activity/timeline")
    page.get_by_text("kiwi_platform.definitions").first.wait_for()
    page.get_by_text("Jobless asset materializations").first.wait_for()
    assert page.get_by_text("No runs or scheduled ticks").count() == 0
    shot(page, "timeline")
    assert page.errors == []


def test_asset_graph_shows_every_asset_in_its_group(page, shot):
    """The global asset graph lists all four groups and, opened in its tree, every asset of the code
    location under its own group."""
    expected = _code_location_groups()
    assert {g: expected.get(g, set()) for g in GROUPS} == GROUPS, "README's asset table and the code disagree"
    page.goto("/asset-groups")
    for group in expected:
        page.get_by_text(group, exact=True).first.wait_for()
    carets = page.locator("[aria-label=arrow_drop_down]")  # one per group in the tree, then the Materialize menu
    for i in range(len(expected)):
        carets.nth(i).click()
    page.get_by_text("training_manifests", exact=True).first.wait_for()
    shot(page, "graph")
    lines = [line.strip() for line in page.locator("body").inner_text().splitlines() if line.strip()]
    shown, group = {}, None
    for line in lines[lines.index("Reload definitions") + 1 :]:
        if line in expected and line == group:
            continue  # the tree shows each label twice (text and tooltip)
        if line in expected:
            if line in shown:
                break  # the graph's own group boxes start: the tree has been read
            group = line
            shown[group] = set()
        elif group is not None and line in expected[group]:
            shown[group].add(line)
    assert shown == expected
    assert page.errors == []


def test_asset_page_shows_metadata_and_a_preview_that_loads(page, shot):
    """`normalized_clips` shows its materialization metadata (counts, table hash, DVC md5) and its
    source | target preview opens as an image the browser actually decoded."""
    page.goto("/assets/normalized_clips")
    for key in ("accepted", "table_sha256", "dvc_md5", "preview"):
        page.get_by_text(key, exact=True).first.wait_for()
    page.get_by_text("Show Markdown").first.click()
    image = page.get_by_role("dialog").locator("img").first
    image.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    width, height = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert width >= 64 and height >= 64
    shot(page, "preview")
    assert page.errors == []


def test_materialize_dialog_run_for_an_existing_batch_succeeds(page, ui, shot):
    """Materialize on `raw_edit_pairs`, all (the one) batch selected, "Launch 1 run": the run goes
    through the queue and the daemon, and its run page ends in Success."""
    before = set(_runs(ui))
    dialog = _open_materialize_dialog(page)
    dialog.get_by_role("button", name="All").click()
    dialog.get_by_text(BATCH, exact=True).first.wait_for()
    shot(page, "dialog")
    dialog.get_by_role("button", name="Launch 1 run").click()
    run = _launched_run(ui, page, before, shot)
    assert run["status"] == "SUCCESS"
    assert {"key": "dagster/partition", "value": BATCH} in run["tags"]
    assert page.errors == []


def test_new_batch_from_the_ui_with_a_manifest_in_run_config_succeeds(page, ui, ui_home, shot):
    """Issue 16.1's contract: "Add a partition" in the Materialize dialog, then config
    `ops: {raw_edit_pairs: {config: {manifest: /abs/path.csv}}}`: the new batch is ingested and the
    run ends in Success."""
    manifest = ui_home.parent / "new-batch" / "manifest.csv"
    before = set(_runs(ui))
    dialog = _open_materialize_dialog(page)
    dialog.get_by_role("button", name="Add a partition").click()
    page.get_by_placeholder("name").fill("ui-new-batch")
    page.get_by_role("button", name="Save").click()
    dialog.get_by_text("ui-new-batch", exact=True).first.wait_for()
    dialog.get_by_text("Config", exact=True).click()
    dialog.get_by_role("button", name="Add config").click()
    page.locator(".CodeMirror").last.wait_for()
    yaml = f'ops: {{raw_edit_pairs: {{config: {{manifest: "{manifest}"}}}}}}'
    page.locator(".CodeMirror").last.evaluate("(el, text) => el.CodeMirror.setValue(text)", yaml)
    page.get_by_role("button", name="Save config").click()
    shot(page, "dialog")
    dialog.get_by_role("button", name="Launch 1 run").click()
    run = _launched_run(ui, page, before, shot)
    assert run["status"] == "SUCCESS"
    assert {"key": "dagster/partition", "value": "ui-new-batch"} in run["tags"]
    assert page.errors == []
