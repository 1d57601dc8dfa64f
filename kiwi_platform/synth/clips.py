"""Base clips for synthetic pairs: real demo footage (cropped, panned, time-shifted) and procedural scenes.

Real footage gives realistic texture and motion; procedural clips add variety (and new
backgrounds) without any download.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

from kiwi_platform.errors import KiwiUserError
from kiwi_platform.synth.palette import COLORS, hsv_to_rgb

#: How much wider than the output the cached demo frames are, so crops can zoom and pan.
MAX_ZOOM = 1.25
#: Frame rate of procedural clips (and of clips whose rate cannot be read).
DEFAULT_FPS = 16
#: Human descriptions of the shipped demo files, used in background-change prompts.
DEMO_DESCRIPTIONS = {
    "0005e4ad9f49814db1d3f2296b911abf.mp4": "a forest with monkeys",
    "7800630815900c243b81f8ed5acb6a9dd40b47fb18b48373bcf132039ffb0a8d.mp4": "an outdoor scene with a bathtub",
    "reco_replace_088301.jpg": "a stack of grey balancing stones",
}
PROCEDURAL_KINDS = ("gradient", "clouds", "waves")


@dataclass(frozen=True)
class Clip:
    """RGB frames (T,H,W,3) uint8 plus where they came from and how a prompt names them."""

    frames: np.ndarray
    fps: int
    origin: str
    description: str


def default_demo_dir() -> Path:
    """KIWI_DEMO_DIR, else `<repo>/data/kiwi_demo`, else `<repo>/../shared/data/kiwi_demo`."""
    if env := os.environ.get("KIWI_DEMO_DIR"):
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    local = repo / "data" / "kiwi_demo"
    return local if local.is_dir() else repo.parent / "shared" / "data" / "kiwi_demo"


@dataclass
class DemoLibrary:
    """The demo clips and stills, decoded once per output size and cached in memory."""

    demo_dir: Path
    height: int
    width: int
    videos: list[Path] = field(init=False)
    stills: list[Path] = field(init=False)
    _cache: dict[Path, tuple[np.ndarray, int]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.demo_dir = Path(self.demo_dir)
        if not self.demo_dir.is_dir():
            raise KiwiUserError(
                f"demo folder not found: {self.demo_dir} (set --demo-dir or KIWI_DEMO_DIR)", code="demo_dir_missing"
            )
        self.videos = sorted((self.demo_dir / "video" / "source").glob("*.mp4"))
        self.stills = sorted(p for p in self.demo_dir.glob("*/*/*.jp*g"))
        if not self.videos:
            raise KiwiUserError(f"no demo videos in {self.demo_dir / 'video' / 'source'}", code="demo_dir_empty")

    def _load(self, path: Path) -> tuple[np.ndarray, int]:
        """Decode a file at a size covering MAX_ZOOM x the output, keeping its aspect."""
        if path not in self._cache:
            if path.suffix == ".mp4":
                with av.open(str(path)) as container:
                    stream = container.streams.video[0]
                    fps = int(round(float(stream.average_rate or DEFAULT_FPS)))
                    raw = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
            else:
                raw = [cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)]
                fps = DEFAULT_FPS
            h, w = raw[0].shape[:2]
            scale = max(MAX_ZOOM * self.height / h, MAX_ZOOM * self.width / w)
            size = (max(int(np.ceil(w * scale)), self.width), max(int(np.ceil(h * scale)), self.height))
            self._cache[path] = (np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in raw]), fps)
        return self._cache[path]

    def clip(self, rng: np.random.Generator, path: Path, frames: int) -> Clip:
        """A random crop of `path`: random start frame, zoom, slow pan and horizontal flip."""
        source, fps = self._load(path)
        total, ch, cw = source.shape[:3]
        start = int(rng.integers(0, max(total - frames, 0) + 1))
        index = _pingpong(start + np.arange(frames), total)
        zoom = float(rng.uniform(1.0, min(ch / self.height, cw / self.width)))
        wh, ww = int(round(self.height * zoom)), int(round(self.width * zoom))
        y = np.linspace(rng.uniform(0, ch - wh), rng.uniform(0, ch - wh), frames).round().astype(int)
        x = np.linspace(rng.uniform(0, cw - ww), rng.uniform(0, cw - ww), frames).round().astype(int)
        flip = bool(rng.random() < 0.5)
        out = np.empty((frames, self.height, self.width, 3), np.uint8)
        for t in range(frames):
            crop = source[index[t], y[t] : y[t] + wh, x[t] : x[t] + ww]
            if crop.shape[:2] != (self.height, self.width):
                crop = cv2.resize(crop, (self.width, self.height), interpolation=cv2.INTER_AREA)
            out[t] = crop[:, ::-1] if flip else crop
        description = DEMO_DESCRIPTIONS.get(path.name, "a real-world scene")
        return Clip(out, fps, f"demo:{path.relative_to(self.demo_dir).as_posix()}", description)


def _pingpong(index: np.ndarray, total: int) -> np.ndarray:
    """Map frame numbers past the end back and forth, so short clips still give `frames` frames."""
    if total == 1:
        return np.zeros_like(index)
    period = 2 * (total - 1)
    k = index % period
    return np.where(k < total, k, period - k)


def procedural_clip(rng: np.random.Generator, kind: str, frames: int, height: int, width: int) -> Clip:
    """A moving synthetic scene: a drifting two-color gradient, scrolling clouds, or flowing waves."""
    names = rng.choice(list(COLORS), size=2, replace=False)
    c1, c2 = (hsv_to_rgb(COLORS[n], 0.55, 0.9).astype(np.float32) for n in names)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = np.arange(frames, dtype=np.float32)[:, None, None]
    angle = rng.uniform(0, 2 * np.pi)
    proj = (xx * np.cos(angle) + yy * np.sin(angle)) / max(height, width)
    if kind == "gradient":
        weight = 0.5 + 0.5 * np.sin(2 * np.pi * (proj[None] * 0.8 + t * rng.uniform(0.01, 0.03)))
        description = f"a drifting {names[0]} and {names[1]} gradient"
    elif kind == "waves":
        freq = rng.uniform(3, 6)
        bend = np.sin(2 * np.pi * (yy * np.sin(angle) - xx * np.cos(angle)) / max(height, width) * 2)
        weight = 0.5 + 0.5 * np.sin(2 * np.pi * (freq * proj[None] + 0.3 * bend[None] - t * 0.04))
        description = f"flowing {names[0]} and {names[1]} waves"
    elif kind == "clouds":
        grid = rng.random((6, 10)).astype(np.float32)
        big = cv2.resize(grid, (2 * width, 2 * height), interpolation=cv2.INTER_CUBIC)
        big = (
            np.clip(
                big
                + 0.25
                * cv2.resize(
                    rng.random((24, 40)).astype(np.float32), (2 * width, 2 * height), interpolation=cv2.INTER_CUBIC
                ),
                0,
                1.25,
            )
            / 1.25
        )
        dy, dx = rng.uniform(-0.4, 0.4, size=2) * np.array([height, width]) / max(frames, 1)
        oy, ox = rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width
        weight = np.stack(
            [big[int(oy + dy * k) % height :][:height, int(ox + dx * k) % width :][:, :width] for k in range(frames)]
        )
        description = f"drifting {names[0]} and {names[1]} clouds"
    else:
        raise ValueError(f"unknown procedural kind {kind!r}")
    rgb = c1 * weight[..., None] + c2 * (1 - weight[..., None])
    return Clip(np.clip(rgb, 0, 255).astype(np.uint8), DEFAULT_FPS, f"procedural:{kind}", description)


def sample_clip(
    rng: np.random.Generator, library: DemoLibrary, frames: int, *, exclude: str | None = None, demo_share: float = 0.6
) -> Clip:
    """Pick a base clip: real demo footage with probability `demo_share`, else a procedural scene.

    Stills (jpg) join the pool only for 1-frame pairs. `exclude` avoids reusing an origin
    (background changes need a different background).
    """
    files = library.videos + (library.stills if frames == 1 else [])
    files = [p for p in files if f"demo:{p.relative_to(library.demo_dir).as_posix()}" != exclude]
    kinds = [k for k in PROCEDURAL_KINDS if f"procedural:{k}" != exclude]
    if files and rng.random() < demo_share:
        return library.clip(rng, files[int(rng.integers(len(files)))], frames)
    return procedural_clip(rng, kinds[int(rng.integers(len(kinds)))], frames, library.height, library.width)
