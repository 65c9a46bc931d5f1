//! The status page's inline CSS: readable at 3 a.m., one colour per level (P1 red … ok
//! green), no web fonts, no images.

pub const CSS: &str = r#"
:root { --p1:#c62828; --p2:#ef6c00; --p3:#f9a825; --p4:#1e88e5; --ok:#2e7d32;
  --muted:#5f6b7a; --line:#dde3ea; --bg:#f5f7fa; --card:#fff; --ink:#1b2330; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
  color:var(--ink); background:var(--bg); }
main { max-width:1240px; margin:0 auto; padding:16px 20px 40px; }
header.top { background:#1b2330; color:#fff; padding:14px 20px; }
header.top .inner { max-width:1240px; margin:0 auto; display:flex; flex-wrap:wrap;
  align-items:center; gap:10px 18px; }
header.top h1 { font-size:20px; margin:0; letter-spacing:.5px; }
header.top .fact { color:#c9d3df; font-size:13px; }
header.top .fact b { color:#fff; font-weight:600; }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px;
  font-weight:700; color:#fff; white-space:nowrap; }
.mode-enforce { background:var(--p1); } .mode-dry-run { background:#8e6c00; }
.mode-off { background:#6b7785; }
.lvl-P1 { background:var(--p1); } .lvl-P2 { background:var(--p2); }
.lvl-P3 { background:var(--p3); color:#222; } .lvl-P4 { background:var(--p4); }
.lvl-ok { background:var(--ok); } .lvl-none { background:#9aa5b1; }
.banner { margin:6px 0 18px; padding:12px 16px; border-radius:6px; font-size:17px;
  font-weight:600; color:#fff; }
.banner.lvl-P3 { color:#222; }
h2 { font-size:16px; margin:22px 0 8px; color:#243447; }
h2 .count { color:var(--muted); font-weight:400; }
table { width:100%; border-collapse:collapse; background:var(--card);
  border:1px solid var(--line); border-radius:6px; overflow:hidden; }
th { text-align:left; font-size:12px; text-transform:uppercase; letter-spacing:.4px;
  color:var(--muted); background:#eef2f6; padding:6px 8px; border-bottom:1px solid var(--line); }
td { padding:6px 8px; border-bottom:1px solid var(--line); vertical-align:baseline; }
tr:last-child td { border-bottom:none; }
tr.row-P1 td:first-child { box-shadow:inset 4px 0 var(--p1); } tr.row-P1 { background:#fdecea; }
tr.row-P2 td:first-child { box-shadow:inset 4px 0 var(--p2); } tr.row-P2 { background:#fff3e0; }
tr.row-P3 td:first-child { box-shadow:inset 4px 0 var(--p3); } tr.row-P3 { background:#fffbe6; }
tr.row-P4 td:first-child { box-shadow:inset 4px 0 var(--p4); } tr.row-P4 { background:#eaf3fd; }
tr.row-ok td:first-child { box-shadow:inset 4px 0 var(--ok); }
tr.row-none td:first-child { box-shadow:inset 4px 0 #9aa5b1; }
.id { font-weight:600; font-family:ui-monospace,"DejaVu Sans Mono",monospace; font-size:13px; }
.sub { display:block; color:var(--muted); font-size:12px; overflow-wrap:anywhere; }
.sub.why { overflow-wrap:normal; }
td.probe { min-width:230px; }
.detail { max-width:360px; word-break:break-word; }
.num { text-align:right; white-space:nowrap; font-variant-numeric:tabular-nums; }
.nowrap { white-space:nowrap; }
.ago { color:var(--muted); font-size:12px; white-space:nowrap; }
.out-healthy { color:var(--ok); font-weight:600; } .out-failed { color:var(--p1); font-weight:600; }
.out-degraded { color:#b45f00; font-weight:600; } .out-unknown { color:#6b7785; font-weight:600; }
.out-pending { color:#6b7785; font-style:italic; }
.dec-act { color:var(--p1); font-weight:600; } .dec-dry_run { color:#8e6c00; font-weight:600; }
.dec-hold { color:var(--muted); font-weight:600; }
.incident { background:var(--card); border:1px solid var(--line); border-radius:6px;
  margin:0 0 14px; overflow:hidden; }
.incident > .head { display:flex; flex-wrap:wrap; align-items:center; gap:6px 12px;
  padding:10px 12px; border-bottom:1px solid var(--line); }
.incident.inc-P1 { border-left:5px solid var(--p1); } .incident.inc-P2 { border-left:5px solid var(--p2); }
.incident.inc-P3 { border-left:5px solid var(--p3); } .incident.inc-P4 { border-left:5px solid var(--p4); }
.incident .title { font-size:15px; font-weight:600; }
.incident .meta { color:var(--muted); font-size:13px; }
.incident table { border:none; border-radius:0; }
.breached { color:var(--p1); font-weight:700; }
.kind { font-size:12px; font-weight:600; text-transform:uppercase; color:#3d4f63; }
.kind-detected, .kind-escalated, .kind-breached, .kind-relapsed { color:var(--p1); }
.kind-green, .kind-resolved, .kind-improved { color:var(--ok); }
.kind-action { color:#6a1b9a; }
.empty { color:var(--muted); background:var(--card); border:1px dashed var(--line);
  border-radius:6px; padding:10px 12px; }
a { color:#1565c0; }
footer { margin-top:28px; color:var(--muted); font-size:12px; }
"#;
