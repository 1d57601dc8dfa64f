"""Hostile manifest rows must be quarantined, never crash the batch ("nothing crashes the run").

These cases once crashed the batch; each now ends in quarantine with a reason.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

from kiwi_platform.ingestion.manifest import read_manifest
from kiwi_platform.ingestion.validate import validate_manifest
from kiwi_platform.lib.quarantine import REASONS
from tests.ingestion.ingest_media import MIN_FRAMES, Kit


def png_header_only(width: int, height: int) -> bytes:
    """A tiny valid-looking PNG that declares a huge size (Pillow refuses > ~179 Mpx as a bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def quarantines_without_crash(write_manifest: Callable[..., Path], row: tuple, *, reason: str) -> None:
    """The bad row plus a good row: the good one is accepted, the bad one quarantined with exactly `reason`."""
    assert reason in REASONS, f"test asks for an unknown reason code {reason!r}"
    good = ("make the sky purple", "a.mp4", "a_tgt.mp4", "")
    result = validate_manifest(read_manifest(write_manifest([row, good])), min_frames=MIN_FRAMES)
    assert [a["row"] for a in result.accepted] == [2]
    assert [(q.row, q.reason) for q in result.quarantined] == [(1, reason)], result.quarantined


def test_directory_instead_of_file_is_quarantined(write_manifest: Callable[..., Path]) -> None:
    """A path naming a folder is quarantined (not_media), the batch goes on."""
    quarantines_without_crash(write_manifest, ("p", ".", "a_tgt.mp4", ""), reason="not_media")


def test_decompression_bomb_image_is_quarantined(kit: Kit, write_manifest: Callable[..., Path]) -> None:
    """An image declaring 20000x10000 px (Pillow's bomb guard) is quarantined as unreadable_image, not a crash."""
    (kit.root / "bomb.png").write_bytes(png_header_only(20000, 10000))
    quarantines_without_crash(write_manifest, ("p", "a.mp4", "a_tgt.mp4", "bomb.png"), reason="unreadable_image")


def test_symlink_loop_is_quarantined(kit: Kit, write_manifest: Callable[..., Path]) -> None:
    """A symlink pointing at itself is quarantined, not a RuntimeError that stops the batch."""
    loop = kit.root / "loop.mp4"
    if not loop.is_symlink():
        loop.symlink_to(loop)
    quarantines_without_crash(write_manifest, ("p", "loop.mp4", "a_tgt.mp4", ""), reason="missing_file")


def test_overlong_file_name_is_quarantined(write_manifest: Callable[..., Path]) -> None:
    """A 300-character file name (ENAMETOOLONG) is quarantined, not an OSError that stops the batch."""
    quarantines_without_crash(write_manifest, ("p", "x" * 300 + ".mp4", "a_tgt.mp4", ""), reason="missing_file")


def test_nul_byte_in_path_is_quarantined(write_manifest: Callable[..., Path]) -> None:
    """A path cell with a NUL byte (csv passes it through) is quarantined, not a ValueError."""
    quarantines_without_crash(write_manifest, ("p", "a\x00.mp4", "a_tgt.mp4", ""), reason="missing_file")
