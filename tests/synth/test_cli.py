"""`kiwi synth` command: prints a summary, rejects bad arguments with a clear user error."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from kiwi_platform.cli.synth_cmd import register
from kiwi_platform.errors import KiwiUserError


@pytest.fixture()
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:
        """kiwi (test stand-in)."""

    return app


SMALL_ARGS = ["--n", "6", "--frames", "3", "--height", "64", "--width", "96"]


def test_synth_prints_counts_and_paths(app: typer.Typer, tmp_path: Path) -> None:
    """The command writes the set and prints counts per edit type, media counts and the manifest path."""
    out = tmp_path / "set"
    result = CliRunner().invoke(app, ["synth", "--out", str(out), *SMALL_ARGS, "--with-ref"])
    assert result.exit_code == 0, result.output
    for edit_type in ("local_add", "local_replace", "local_remove", "recolor", "background_change", "global_style"):
        assert edit_type in result.output
    assert "6 synthetic pairs" in result.output
    assert "manifest.csv" in result.output and "ground_truth.jsonl" in result.output
    assert (out / "manifest.csv").read_text().splitlines()[0] == "prompt,src_video,tgt_video,ref_image"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--height", "72"], "multiple of 16"),
        (["--width", "100"], "multiple of 16"),
        (["--image-share", "1.5"], "between 0 and 1"),
        (["--n", "0"], "at least 1"),
        (["--demo-dir", "/nonexistent/demo"], "demo folder not found"),
    ],
)
def test_synth_rejects_bad_arguments(app: typer.Typer, tmp_path: Path, args: list[str], message: str) -> None:
    """Bad sizes, shares, counts or a missing demo folder raise a one-line KiwiUserError before writing anything."""
    out = tmp_path / "set"
    result = CliRunner().invoke(app, ["synth", "--out", str(out), *SMALL_ARGS, *args])
    assert isinstance(result.exception, KiwiUserError)
    assert message in str(result.exception)
    assert "\n" not in str(result.exception)
    assert not (out / "manifest.csv").exists()
