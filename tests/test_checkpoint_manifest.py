"""Checkpoint manifests: a frozen checkpoint lists every file's sha256, and loaders refuse a changed one."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.lib.checkpoint_manifest import (
    MANIFEST_NAME,
    checkpoint_problems,
    require_intact_checkpoint,
    write_checkpoint_manifest,
)


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "ckpt"
    (folder / "transformer").mkdir(parents=True)
    (folder / "model_index.json").write_text("{}")
    (folder / "transformer" / "weights.safetensors").write_bytes(b"\1" * 64)
    return folder


def test_manifest_is_deterministic_and_an_intact_folder_passes(tmp_path):
    """Writing the manifest twice gives the same bytes, and an untouched folder has no problems."""
    folder = _folder(tmp_path)
    first = write_checkpoint_manifest(folder).read_bytes()
    assert write_checkpoint_manifest(folder).read_bytes() == first
    assert checkpoint_problems(folder) == []
    require_intact_checkpoint(folder)


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda f: (f / "transformer" / "weights.safetensors").write_bytes(b"\2" * 64), "does not match"),
        (lambda f: (f / "transformer" / "weights.safetensors").unlink(), "is missing"),
        (lambda f: (f / MANIFEST_NAME).write_text("not json"), "unreadable"),
    ],
    ids=["changed", "missing", "manifest-corrupt"],
)
def test_a_damaged_checkpoint_is_refused_with_one_line(tmp_path, damage, expected):
    """A changed or missing weight file, or a corrupt manifest, makes loading refuse the folder with a
    one-line user error naming the problem (reason code `checkpoint_changed`)."""
    folder = _folder(tmp_path)
    write_checkpoint_manifest(folder)
    damage(folder)
    with pytest.raises(KiwiUserError) as err:
        require_intact_checkpoint(folder)
    assert expected in str(err.value) and "\n" not in str(err.value)
    assert err.value.code == "checkpoint_changed"


def test_folders_without_a_manifest_load_as_before(tmp_path):
    """Released or hand-made checkpoint folders carry no manifest; they are not refused."""
    folder = _folder(tmp_path)
    assert checkpoint_problems(folder) is None
    require_intact_checkpoint(folder)
