"""`--config FILE`: the Launchpad's run config for `kiwi ingest` and `kiwi materialize`."""

from __future__ import annotations

from pathlib import Path

from tests.integration.test_cli import kiwi

SHORT_CLIPS = "ops:\n  raw_edit_pairs: {config: {min_frames: 9}}\n  normalized_clips: {config: {num_frames: 9}}\n"


def _synth(tmp_path: Path, demo_dir: Path) -> Path:
    from kiwi_platform.synth import generate

    out = tmp_path / "synth"
    generate(out, 2, seed=3, frames=9, height=64, width=96, image_share=0.0, demo_dir=demo_dir)
    return out / "manifest.csv"


def test_ingest_config_file_reaches_the_assets(kiwi_home, tmp_path, demo_dir):
    """9-frame videos are `too_few_frames` under the default (81); with a YAML run config lowering
    min_frames and num_frames the same manifest is accepted and normalized to 9-frame clips."""
    manifest = _synth(tmp_path, demo_dir)
    default = kiwi("ingest", str(manifest), "--batch", "short", home=kiwi_home)
    assert default.returncode == 0, default.stderr[-2000:]
    assert "0 accepted, 2 quarantined" in default.stdout and "too_few_frames" in default.stdout
    config = tmp_path / "short.yaml"
    config.write_text(SHORT_CLIPS)
    again = kiwi("ingest", str(manifest), "--batch", "short9", "--config", str(config), home=kiwi_home)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "2 accepted, 0 quarantined" in again.stdout
    import pandas as pd

    clips = pd.read_parquet(kiwi_home / "data" / "batches" / "short9" / "normalized_clips" / "table.parquet")
    assert list(clips["frames"]) == [9, 9]


def test_bad_config_files_are_one_line_errors(kiwi_home, tmp_path):
    """A missing file, a file that is not a mapping, and a field the asset does not have each give one
    `error:` line and a non-zero exit, never a traceback."""
    missing = kiwi("materialize", "--select", "raw_edit_pairs", "--config", str(tmp_path / "no.yaml"), home=kiwi_home)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    not_mapping = kiwi("materialize", "--select", "training_manifests", "--config", str(listed), home=kiwi_home)
    for proc in (missing, not_mapping):
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert [line for line in proc.stderr.splitlines() if line.startswith("error:")], proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr + proc.stdout
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("ops: {training_manifests: {config: {no_such_field: 1}}}\n")
    bad_field = kiwi("materialize", "--select", "training_manifests", "--config", str(unknown), home=kiwi_home)
    assert bad_field.returncode != 0
    assert "no_such_field" in bad_field.stderr + bad_field.stdout
    assert "Traceback" not in bad_field.stderr + bad_field.stdout
