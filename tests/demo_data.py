"""Where the tests find the Kiwi-Edit demo media, and the one rule for when it is missing.

The rule: a missing or incomplete demo folder FAILS the tests that need it, with a message that
says where it looked and how to point it elsewhere. Tests never skip for it (CI always has the
demo data, so a skip would only hide a broken checkout). Every conftest goes through
`require_demo_dir` (the `demo_dir` fixture in tests/conftest.py wraps it), so all of them resolve
the same folder the platform does: KIWI_DEMO_DIR, else `<repo>/data/kiwi_demo`, else
`<repo>/../shared/data/kiwi_demo` (see `kiwi_platform.settings.KiwiSettings.demo_dir`).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kiwi_platform.settings import find_demo_dir

#: The real clip the model CLI tests edit (832x480, 81 frames).
DEMO_VIDEO = "video/source/7800630815900c243b81f8ed5acb6a9dd40b47fb18b48373bcf132039ffb0a8d.mp4"
#: The reference still (a stack of grey balancing stones).
DEMO_REF = "video/reference/reco_replace_088301.jpg"
#: Every demo file some test reads by name (relative to the demo folder).
REQUIRED_FILES = (
    DEMO_VIDEO,
    "video/source/0005e4ad9f49814db1d3f2296b911abf.mp4",
    DEMO_REF,
    "video_demo_training_set.csv",
    "image_demo_training_set.csv",
    "video_ref_demo_training_set.csv",
)


def resolve_demo_dir() -> Path:
    """The demo folder as the platform resolves it (KIWI_DEMO_DIR wins), whether or not it exists."""
    env = os.environ.get("KIWI_DEMO_DIR")
    return Path(env).expanduser().resolve() if env else find_demo_dir()


def missing_demo_files(path: Path) -> list[str]:
    """REQUIRED_FILES absent under `path` (all of them when the folder itself is missing)."""
    return [rel for rel in REQUIRED_FILES if not (path / rel).is_file()]


def require_demo_dir() -> Path:
    """The demo folder, or a test failure naming the folder and the missing files (never a skip)."""
    path = resolve_demo_dir()
    missing = missing_demo_files(path)
    if missing:
        what = "not found" if not path.is_dir() else f"incomplete (missing {', '.join(missing)})"
        pytest.fail(
            f"Kiwi-Edit demo data {what} at {path}: these tests need it; "
            f"put the demo folder there or set KIWI_DEMO_DIR to its location",
            pytrace=False,
        )
    return path
