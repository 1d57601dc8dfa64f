"""Hostile input gets the reason that tells the user what to fix, and costs only its own row.

Each case once got a misleading reason (a PNG renamed .mp4 was `too_few_frames`, permission
denied was `missing_file`), was accepted (NUL bytes in a prompt), failed the whole manifest (one
huge prompt cell), or was resolved silently (a column named twice).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.ingestion.manifest import read_manifest
from kiwi_platform.ingestion.validate import MAX_PROMPT_CHARS, validate_manifest
from kiwi_platform.lib.quarantine import REASONS
from tests.ingestion.ingest_media import MIN_FRAMES, Kit, make_image, make_video

GOOD = ("make the sky purple", "a.mp4", "a_tgt.mp4", "")


def reasons(path: Path) -> list[tuple[int, str]]:
    result = validate_manifest(read_manifest(path), min_frames=MIN_FRAMES)
    assert result.total == len(read_manifest(path).rows)
    return [(a["row"], "accepted") for a in result.accepted] + [(q.row, q.reason) for q in result.quarantined]


def only_bad_row_quarantined(write_manifest: Callable[..., Path], row: tuple, reason: str) -> str:
    """The bad row plus a good row: the good one is accepted, the bad one has exactly `reason`; returns its message."""
    assert reason in REASONS
    result = validate_manifest(read_manifest(write_manifest([row, GOOD])), min_frames=MIN_FRAMES)
    assert [a["row"] for a in result.accepted] == [2]
    assert [(q.row, q.reason) for q in result.quarantined] == [(1, reason)], result.quarantined
    message = result.quarantined[0].message
    assert "\n" not in message and len(message.split()) >= 4
    return message


def test_one_huge_prompt_cell_quarantines_only_its_row(write_manifest: Callable[..., Path]) -> None:
    """A 200,000-character prompt (past csv's 128 KiB field limit) no longer rejects the whole manifest:
    that row is quarantined as prompt_too_long, the next row is accepted."""
    message = only_bad_row_quarantined(write_manifest, ("x" * 200_000, "a.mp4", "a_tgt.mp4", ""), "prompt_too_long")
    assert "200,000" in message and f"{MAX_PROMPT_CHARS:,}" in message


def test_unclosed_quote_swallowing_lines_is_named_in_the_message(kit: Kit) -> None:
    """An unclosed quote that swallows following lines into one long prompt says so in its message."""
    path = kit.root / "unclosed.csv"
    body = "".join(f"prompt {i},a.mp4,a_tgt.mp4\n" for i in range(600))
    path.write_text(f'prompt,src_video,tgt_video\n"runaway,a.mp4,a_tgt.mp4\n{body}', encoding="utf-8")
    result = validate_manifest(read_manifest(path), min_frames=MIN_FRAMES)
    [record] = result.quarantined
    assert record.reason == "prompt_too_long" and "unclosed quote" in record.message


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b"], ids=["nul", "bell", "escape"])
def test_control_characters_in_prompt_are_bad_prompt(write_manifest: Callable[..., Path], char: str) -> None:
    """A prompt holding a NUL byte or another control character is quarantined as bad_prompt (naming
    the character), not accepted into the table and the tokenizer."""
    message = only_bad_row_quarantined(write_manifest, (f"make it{char} red", "a.mp4", "a_tgt.mp4", ""), "bad_prompt")
    assert f"U+{ord(char):04X}" in message or "NUL" in message


def test_tabs_and_line_breaks_in_prompt_are_fine(write_manifest: Callable[..., Path]) -> None:
    """Tabs and quoted line breaks are ordinary prompt text and stay accepted."""
    path = write_manifest([("make it\tred,\nthen blue", "a.mp4", "a_tgt.mp4", "")])
    assert reasons(path) == [(1, "accepted")]


def test_png_named_mp4_is_kind_mismatch(kit: Kit, write_manifest: Callable[..., Path]) -> None:
    """A PNG renamed .mp4 is a kind_mismatch naming the PNG, not a one-frame video that is too_few_frames."""
    make_image(kit.root / "still.png")
    shutil.copyfile(kit.root / "still.png", kit.root / "still_png.mp4")
    message = only_bad_row_quarantined(write_manifest, ("p", "still_png.mp4", "a_tgt.mp4", ""), "kind_mismatch")
    assert "PNG" in message and "still_png.mp4" in message


def test_jpeg_named_mov_is_kind_mismatch(kit: Kit, write_manifest: Callable[..., Path]) -> None:
    """The same for a JPEG renamed .mov, as the target."""
    shutil.copyfile(kit.root / "img_tgt.jpg", kit.root / "still_jpg.mov")
    only_bad_row_quarantined(write_manifest, ("p", "a.mp4", "still_jpg.mov", ""), "kind_mismatch")


def test_mp4_named_png_is_kind_mismatch(kit: Kit, write_manifest: Callable[..., Path]) -> None:
    """A video renamed .png (as the reference) is a kind_mismatch, not an unreadable_image."""
    shutil.copyfile(kit.root / "b.mp4", kit.root / "clip_named.png")
    message = only_bad_row_quarantined(write_manifest, ("p", "a.mp4", "a_tgt.mp4", "clip_named.png"), "kind_mismatch")
    assert "video" in message


def _validate_as_unprivileged(manifest: Path) -> list[tuple[int, str]]:
    """Validate where the kernel refuses unreadable files: in this process for a normal user, in a
    child without capabilities when running as root (root ignores file modes)."""
    if os.geteuid() != 0:
        return reasons(manifest)
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: no way to have a read refused")
    code = (
        "import json, sys; from tests.ingestion.test_ingest_input_reasons import reasons;"
        "print(json.dumps(reasons(__import__('pathlib').Path(sys.argv[1]))))"
    )
    drop = ["--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all"]
    proc = subprocess.run(
        [setpriv, *drop, "--", sys.executable, "-c", code, str(manifest)],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        check=True,
    )
    return [tuple(r) for r in json.loads(proc.stdout.strip().splitlines()[-1])]


@pytest.mark.parametrize("name", ["locked.mp4", "locked.jpg"])
def test_permission_denied_is_unreadable_file(kit: Kit, write_manifest: Callable[..., Path], name: str) -> None:
    """A file that exists but may not be read (mode 000) is unreadable_file, not missing_file (the fix is
    chmod, not finding the file) and not unreadable_image (the bytes were never seen)."""
    locked = kit.root / name
    if name.endswith(".mp4"):
        make_video(locked, 24, seed=1)
        row = ("p", name, "a_tgt.mp4", "")
    else:
        make_image(locked, 64, 64, seed=3)
        row = ("p", "a.mp4", "a_tgt.mp4", name)
    locked.chmod(0)
    try:
        got = _validate_as_unprivileged(write_manifest([row, GOOD]))
    finally:
        locked.chmod(0o644)
    assert sorted(got) == [(1, "unreadable_file"), (2, "accepted")]


def test_repeated_header_column_rejects_the_manifest(tmp_path: Path) -> None:
    """A header naming src_video twice is refused with one line naming the column and both positions,
    instead of silently reading the last one."""
    path = tmp_path / "twice.csv"
    path.write_text("prompt,src_video,tgt_video,src_video\np,a.mp4,b.mp4,c.mp4\n", encoding="utf-8")
    with pytest.raises(KiwiUserError) as err:
        read_manifest(path)
    message = str(err.value)
    assert "\n" not in message and "'src_video'" in message and "2, 4" in message and "twice.csv" in message
    assert err.value.exit_code != 0


def test_repeated_unknown_or_blank_columns_are_ignored(tmp_path: Path) -> None:
    """Columns we do not read may repeat (trailing commas, notes): the manifest still reads."""
    path = tmp_path / "extra.csv"
    path.write_text("prompt,src_video,tgt_video,note,note,,\np,a.mp4,b.mp4,x,y,,\n", encoding="utf-8")
    assert [(r.prompt, r.src, r.tgt) for r in read_manifest(path).rows] == [("p", "a.mp4", "b.mp4")]


def test_fifo_as_manifest_says_it_is_a_fifo(tmp_path: Path) -> None:
    """A named pipe given as the manifest is reported as a FIFO (one line), not as "does not exist",
    and nothing blocks waiting for a writer."""
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(KiwiUserError) as err:
        read_manifest(fifo)
    message = str(err.value)
    assert "FIFO" in message and "does not exist" not in message and "pipe.csv" in message
    assert "\n" not in message
