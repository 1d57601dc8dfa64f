"""The report's stylesheet, inlined into the page (one file, no network)."""

CSS = """
:root { --ink:#1f2430; --muted:#6b7280; --line:#e5e7eb; --bg:#f6f7f9; --card:#fff; --accent:#2f6fde;
  --good:#16794c; --good-bg:#e7f6ee; --bad:#b42318; --bad-bg:#fdecea; --warn:#8a5a00; --warn-bg:#fff5da; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink); line-height:1.45;
  font:14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "DejaVu Sans", Arial, sans-serif; }
main { max-width:1200px; margin:0 auto; padding:28px 28px 40px; }
header.top { display:flex; justify-content:space-between; align-items:flex-end; gap:24px;
  border-bottom:1px solid var(--line); padding-bottom:18px; margin-bottom:22px; }
h1 { font-size:24px; margin:0 0 4px; letter-spacing:-0.01em; }
h2 { font-size:17px; margin:0 0 14px; }
h3 { font-size:14px; margin:18px 0 8px; color:#374151; }
.sub { color:var(--muted); font-size:13px; }
code, .mono { font-family: "JetBrains Mono", "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size:12px; }
.meta { display:grid; grid-template-columns:auto auto; gap:2px 14px; font-size:12.5px; color:var(--muted); }
.meta b { color:var(--ink); font-weight:600; }
section.card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:20px 22px;
  margin:0 0 18px; box-shadow:0 1px 2px rgba(16,24,40,.04); }
.kpis { display:flex; flex-wrap:wrap; gap:12px; margin-bottom:18px; }
.kpi { flex:1 1 150px; max-width:270px; background:var(--card); border:1px solid var(--line); border-radius:10px; padding:12px 14px; }
.kpi .label { font-size:11.5px; text-transform:uppercase; letter-spacing:.05em; color:var(--muted); }
.kpi .value { font-size:23px; font-weight:650; margin-top:2px; font-variant-numeric:tabular-nums; }
.kpi .note { font-size:12px; color:var(--muted); }
.badge { display:inline-block; padding:2px 10px; border-radius:999px; font-size:12px; font-weight:600; }
.badge.good { background:var(--good-bg); color:var(--good); }
.badge.bad { background:var(--bad-bg); color:var(--bad); }
.badge.warn { background:var(--warn-bg); color:var(--warn); }
.badge.plain { background:#eef2ff; color:#3730a3; }
.notice { border-left:4px solid #d4a514; background:var(--warn-bg); padding:12px 16px; border-radius:6px; }
.decision { display:flex; gap:22px; align-items:flex-start; }
.decision ul { margin:6px 0 0; padding-left:18px; }
table { border-collapse:collapse; width:100%; font-size:13px; font-variant-numeric:tabular-nums; }
th, td { padding:6px 9px; border-bottom:1px solid var(--line); text-align:right; white-space:nowrap; }
th:first-child, td:first-child { text-align:left; }
thead th { font-size:11.5px; text-transform:uppercase; letter-spacing:.04em; color:var(--muted); font-weight:600;
  border-bottom:2px solid var(--line); }
tr.overall td { font-weight:650; border-top:2px solid #cbd5e1; background:#f8fafc; }
td.na { color:#9ca3af; }
table.scores.judge { width:auto; min-width:640px; }
table.scores.judge td, table.scores.judge th { padding-left:18px; }
.pill { display:inline-block; min-width:46px; text-align:center; padding:1px 8px; border-radius:6px; font-weight:600; }
.tablewrap { overflow-x:auto; margin:4px 0 14px; }
thead th { white-space:normal; vertical-align:bottom; line-height:1.25; }
.charts { display:grid; grid-template-columns:repeat(auto-fill, minmax(420px, 1fr)); gap:18px; align-items:start; }
img.fig { width:100%; height:auto; border:1px solid var(--line); border-radius:6px; background:#fff; }
.strips { columns:2 380px; column-gap:18px; }
.strips figure { break-inside:avoid; margin:0 0 16px; }
figure { margin:0; }
figcaption { font-size:12.5px; color:var(--muted); margin-top:4px; }
.stages { display:grid; grid-template-columns:repeat(auto-fill, minmax(300px, 1fr)); gap:16px; }
.stage h3 { margin-top:0; }
svg.lineage { width:100%; height:auto; display:block; margin:4px 0 10px; }
svg.lineage text { font-family:-apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; }
svg.lineage text.t { font-size:12px; font-weight:650; fill:#111827; }
svg.lineage text.s { font-size:10.5px; fill:#4b5563; font-family:"DejaVu Sans Mono", Menlo, Consolas, monospace; }
svg.lineage text.col { font-size:10.5px; letter-spacing:.08em; fill:#9ca3af; font-weight:600; }
svg.lineage rect { stroke-width:1.2; }
svg.lineage .raw rect { fill:#f9fafb; stroke:#cbd5e1; }
svg.lineage .batch rect { fill:#eef4ff; stroke:#93b4f0; }
svg.lineage .manifest rect { fill:#ecfbf6; stroke:#7cc9ae; }
svg.lineage .stage rect { fill:#f3efff; stroke:#a996e8; }
svg.lineage .model rect { fill:#e9f7ef; stroke:#3fa46a; stroke-width:2; }
svg.lineage .edge { fill:none; stroke:#9aa4b2; stroke-width:1.3; }
svg.lineage .arrowhead { fill:#9aa4b2; }
details { margin-top:10px; }
summary { cursor:pointer; color:var(--accent); font-size:13px; }
details table td, details table th { font-size:12px; }
.wrap td { white-space:normal; }
footer { color:var(--muted); font-size:12px; text-align:center; margin-top:10px; }
"""
