"""`kiwi edit` and `kiwi model init` as a user runs them: outputs, exit codes, one-line errors."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from tests.model.helpers import run_cli


def test_model_init_writes_released_layout(tmp_path):
    """`kiwi model init --config tiny --out DIR` writes every component folder; a second run refuses to overwrite."""
    code, out = run_cli("model", "init", "--config", "tiny", "--out", str(tmp_path / "ck"))
    assert code == 0, out
    names = {p.name for p in (tmp_path / "ck").iterdir()}
    assert {
        "transformer",
        "vae",
        "mllm_encoder",
        "source_embedder",
        "ref_embedder",
        "processor",
        "scheduler",
        "model_index.json",
    } <= names
    code, out = run_cli("model", "init", "--config", "tiny", "--out", str(tmp_path / "ck"))
    assert code == 2 and "not empty" in out
    code, out = run_cli("model", "init", "--config", "huge", "--out", str(tmp_path / "x"))
    assert code == 2 and "unknown config 'huge'" in out


def test_edit_real_demo_video_writes_decodable_mp4(tiny_ckpt, demo_video, demo_ref, tmp_path):
    """Editing the real demo clip with a reference writes an mp4 with the requested frames and size at 15 fps."""
    out = tmp_path / "edited.mp4"
    code, text = run_cli(
        "edit",
        "--checkpoint",
        str(tiny_ckpt),
        "--video",
        str(demo_video),
        "--prompt",
        "Replace the towel",
        "--ref",
        str(demo_ref),
        "--out",
        str(out),
        "--steps",
        "2",
        "--height",
        "64",
        "--width",
        "96",
        "--frames",
        "5",
    )
    assert code == 0, text
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        assert float(stream.average_rate) == 15.0
    assert len(frames) == 5
    assert frames[0].shape == (64, 96, 3)


@pytest.mark.parametrize("case", ["no_checkpoint", "missing_component", "bad_video", "bad_ref"])
def test_edit_user_errors_are_one_line(case, tiny_ckpt, demo_video, tmp_path):
    """Bad inputs give exit code 2 and a one-line message naming the problem, never a traceback."""
    import shutil

    ckpt, video, ref = tiny_ckpt, demo_video, None
    expected = ""
    if case == "no_checkpoint":
        ckpt, expected = tmp_path / "nope", "does not exist"
    elif case == "missing_component":
        ckpt = tmp_path / "partial"
        shutil.copytree(tiny_ckpt, ckpt)
        shutil.rmtree(ckpt / "mllm_encoder")
        expected = "missing component folder(s): mllm_encoder"
    elif case == "bad_video":
        video = tmp_path / "broken.mp4"
        video.write_bytes(b"this is not a video" * 10)
        expected = "cannot read video"
    else:
        ref = tmp_path / "ref.jpg"
        ref.write_text("not an image")
        expected = "is not a readable image"
    args = [
        "edit",
        "--checkpoint",
        str(ckpt),
        "--video",
        str(video),
        "--prompt",
        "x",
        "--out",
        str(tmp_path / "o.mp4"),
        "--steps",
        "1",
        "--height",
        "32",
        "--width",
        "32",
        "--frames",
        "1",
    ]
    if ref is not None:
        args += ["--ref", str(ref)]
    code, text = run_cli(*args)
    assert code == 2
    assert text.startswith("error: ") and expected in text and "\n" not in text.strip()
    assert not Path(tmp_path / "o.mp4").exists()
