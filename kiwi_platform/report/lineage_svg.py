"""The lineage as an inline SVG graph: raw files -> batches -> training manifests -> stages -> model.

Drawn by hand (fixed column layout, boxes and Bezier arrows) so the report needs no graphviz binary
and no JavaScript. Hashes are shortened; the full values are in the report's file table and in
`kiwi lineage --json`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from kiwi_platform.lineage.walk import BatchLineage, Lineage

STAGE_NAMES = {1: "alignment", 2: "instruction tuning", 3: "reference tuning"}
COLUMNS = (
    ("raw", "Raw files", 216),
    ("batch", "Quadruplet batches", 196),
    ("manifest", "Training manifests", 196),
    ("stage", "Training stages", 224),
    ("model", "Registered model", 180),
)
GAP_X, GAP_Y, PAD, HEADER = 46, 12, 8, 30
TITLE_PX, LINE_PX = 17, 14
MAX_FILES = 4  # raw files shown per batch, the rest summarised in one box


def short(value: str, n: int = 8) -> str:
    """The first `n` characters of a hash (or an en dash when there is none)."""
    return value[:n] if value else "–"


@dataclass
class Node:
    key: str
    column: str
    title: str
    lines: list[str] = field(default_factory=list)
    x: float = 0.0
    y: float = 0.0
    width: float = 0.0

    @property
    def height(self) -> float:
        return 2 * PAD + TITLE_PX + LINE_PX * len(self.lines)


def _fit(text: str, width: float, px_per_char: float) -> str:
    room = max(4, int((width - 2 * 10) / px_per_char))
    return text if len(text) <= room else text[: room - 1] + "…"


def _graph(lineage: Lineage, stage_batches: dict[int, list[str]]) -> tuple[list[Node], list[tuple[str, str]]]:
    nodes: list[Node] = []
    edges: list[tuple[str, str]] = []
    for b in lineage.batches:
        nodes += _raw_nodes(b, edges)
        nodes.append(
            Node(
                f"batch:{b.batch}",
                "batch",
                f"batch {b.batch}",
                [
                    f"quadruplets md5 {short(b.quadruplets_dvc_md5)}",
                    f"raw md5 {short(b.raw_dvc_md5)}",
                    f"{b.samples_used} pairs used",
                ],
            )
        )
    stages = sorted(lineage.stages, key=lambda s: s.stage)
    known_batches = [b.batch for b in lineage.batches]
    for i, st in enumerate(stages):
        mkey, skey = f"manifest:{st.stage}", f"stage:{st.stage}"
        extra = [f"lakeFS {short(st.lakefs_commit, 10)}"] if st.lakefs_commit else []
        nodes.append(
            Node(
                mkey,
                "manifest",
                Path(st.manifest.path).name or "manifest",
                [
                    f"DVC md5 {short(st.manifest_dvc_md5)}",
                    f"sha256 {short(st.manifest.sha256)}",
                    f"data rev {short(st.data_repo_rev)}",
                ]
                + extra,
            )
        )
        nodes.append(
            Node(
                skey,
                "stage",
                f"Stage {st.stage} · {STAGE_NAMES.get(st.stage, 'training')}",
                [
                    f"model v{st.model_version} · run {short(st.run_id)}",
                    f"config {short(st.config_hash)}",
                    f"code {short(st.code_git_sha)}",
                ],
            )
        )
        for batch in stage_batches.get(st.stage) or known_batches:
            if batch in known_batches:
                edges.append((f"batch:{batch}", mkey))
        edges.append((mkey, skey))
        if i:
            edges.append((f"stage:{stages[i - 1].stage}", skey))
    aliases = " ".join(f"@{a}" for a in lineage.aliases) or "no alias"
    model_lines = [aliases] + ([lineage.promotion] if lineage.promotion else [])
    nodes.append(Node("model", "model", f"{lineage.registered_model} v{lineage.version}", model_lines))
    if stages:
        edges.append((f"stage:{stages[-1].stage}", "model"))
    return nodes, edges


def _raw_nodes(b: BatchLineage, edges: list[tuple[str, str]]) -> list[Node]:
    nodes = []
    # the manifest and the original files first; versioned copies are counted in the summary box
    files = sorted(b.files, key=lambda f: (f.role != "raw manifest", not f.role.startswith("raw")))
    for i, f in enumerate(files[:MAX_FILES]):
        key = f"raw:{b.batch}:{i}"
        nodes.append(Node(key, "raw", Path(f.path).name, [f"{f.role} · {short(f.sha256, 10)}"]))
        edges.append((key, f"batch:{b.batch}"))
    if len(files) > MAX_FILES:
        key = f"raw:{b.batch}:more"
        nodes.append(Node(key, "raw", f"+ {len(files) - MAX_FILES} more files", ["listed in the table below"]))
        edges.append((key, f"batch:{b.batch}"))
    return nodes


def _layout(nodes: list[Node], edges: list[tuple[str, str]]) -> tuple[float, float]:
    """Place columns left to right; stack each column, then centre each batch/model on what feeds it."""
    x = 0.0
    heights: dict[str, float] = {}
    for name, _, width in COLUMNS:
        y = HEADER
        for n in (n for n in nodes if n.column == name):
            n.x, n.width, n.y = x, width, y
            y += n.height + GAP_Y
        heights[name] = y - GAP_Y
        x += width + GAP_X
    total_h = max(heights.values())
    by_key = {n.key: n for n in nodes}
    for name, _, _ in COLUMNS:  # centre short columns vertically
        shift = (total_h - heights[name]) / 2
        for n in (n for n in nodes if n.column == name):
            n.y += shift
    model = by_key.get("model")
    feeders = [by_key[a] for a, b in edges if b == "model" and a in by_key]
    if model and feeders:  # put the model beside the last stage
        model.y = feeders[-1].y + (feeders[-1].height - model.height) / 2
    return x - GAP_X, total_h + 4


def _edge(a: Node, b: Node) -> str:
    if a.column == b.column:  # stage -> next stage, straight down
        x = a.x + a.width / 2
        return f'<path class="edge" d="M{x:.1f},{a.y + a.height:.1f} L{x:.1f},{b.y - 2:.1f}" marker-end="url(#arrow)"/>'
    x1, y1 = a.x + a.width, a.y + a.height / 2
    x2, y2 = b.x - 2, b.y + b.height / 2
    mid = (x1 + x2) / 2
    return (
        f'<path class="edge" d="M{x1:.1f},{y1:.1f} C{mid:.1f},{y1:.1f} {mid:.1f},{y2:.1f} {x2:.1f},{y2:.1f}" '
        f'marker-end="url(#arrow)"/>'
    )


def _node(n: Node) -> str:
    parts = [
        f'<g class="node {n.column}"><title>{escape(n.title)}</title>',
        f'<rect x="{n.x:.1f}" y="{n.y:.1f}" width="{n.width:.1f}" height="{n.height:.1f}" rx="7"/>',
        f'<text class="t" x="{n.x + 10:.1f}" y="{n.y + PAD + 12:.1f}">{escape(_fit(n.title, n.width, 7.0))}</text>',
    ]
    for i, line in enumerate(n.lines):
        y = n.y + PAD + TITLE_PX + LINE_PX * i + 10
        parts.append(f'<text class="s" x="{n.x + 10:.1f}" y="{y:.1f}">{escape(_fit(line, n.width, 6.2))}</text>')
    parts.append("</g>")
    return "".join(parts)


def lineage_svg(lineage: Lineage, stage_batches: dict[int, list[str]] | None = None) -> str:
    """An inline `<svg>` element (scales to its container's width) of the model's lineage graph."""
    nodes, edges = _graph(lineage, stage_batches or {})
    width, height = _layout(nodes, edges)
    by_key = {n.key: n for n in nodes}
    x, heads = 0.0, []
    for name, label, w in COLUMNS:
        if any(n.column == name for n in nodes):
            heads.append(f'<text class="col" x="{x:.1f}" y="14">{escape(label.upper())}</text>')
        x += w + GAP_X
    body = [_edge(by_key[a], by_key[b]) for a, b in edges if a in by_key and b in by_key] + [_node(n) for n in nodes]
    return (
        f'<svg class="lineage" viewBox="-2 0 {width + 4:.0f} {height:.0f}" '
        f'role="img" aria-label="lineage graph of {escape(lineage.model)}">'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker></defs>'
        + "".join(heads)
        + "".join(body)
        + "</svg>"
    )
