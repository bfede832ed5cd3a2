// The UI's stylesheet, served as /ui/assets/ui.css: the CSP allows no inline style.
export const UI_STYLESHEET = `
:root {
  --fg: #1d2330; --muted: #5b6475; --line: #d9dee7; --bg: #ffffff; --band: #f4f6fa;
  --accent: #2456c7; --ok: #1c7a3d; --ok-bg: #e3f4e8; --bad: #b3261e; --bad-bg: #fbe5e3;
  --warn: #8a5a00; --warn-bg: #fdf1d6; --info: #24549c; --info-bg: #e2ecfa;
  --mask: #6b3fa0; --mask-bg: #efe6f8;
}
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
header.top { display: flex; align-items: center; gap: 16px; padding: 10px 24px;
  background: #16213a; color: #fff; }
header.top .brand { font-weight: 700; color: #fff; letter-spacing: .02em; }
header.top .who { margin-left: auto; color: #c8d1e4; font-size: 13px; }
header.top form { margin: 0; }
header.top button { background: transparent; color: #fff; border: 1px solid #5a6b90;
  border-radius: 4px; padding: 3px 10px; cursor: pointer; }
main { padding: 16px 24px 40px; max-width: 1400px; }
h1 { font-size: 20px; margin: 4px 0 12px; }
h2 { font-size: 16px; margin: 20px 0 8px; }
code, pre, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 13px; }
pre.statement { margin: 0; white-space: pre-wrap; word-break: break-word; background: var(--band);
  padding: 6px 8px; border-radius: 4px; border: 1px solid var(--line); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted);
  background: var(--band); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.gap td { color: var(--bad); font-style: italic; }
.muted { color: var(--muted); }
.small { font-size: 12px; }
form.filters { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap: 8px 12px;
  align-items: end; background: var(--band); padding: 12px; border: 1px solid var(--line);
  border-radius: 6px; margin-bottom: 14px; }
form.filters label { display: flex; flex-direction: column; gap: 2px; font-size: 12px; color: var(--muted); }
input, select, textarea { font: inherit; padding: 5px 7px; border: 1px solid #b9c1d0; border-radius: 4px;
  background: #fff; color: var(--fg); }
button.primary { background: var(--accent); color: #fff; border: 0; border-radius: 4px;
  padding: 7px 14px; font: inherit; cursor: pointer; }
.actions { display: flex; gap: 10px; align-items: center; }
.badge { display: inline-block; padding: 1px 7px; border-radius: 10px; font-size: 12px; font-weight: 600;
  white-space: nowrap; }
.badge.allowed, .badge.verified, .badge.approved-verdict { color: var(--ok); background: var(--ok-bg); }
.badge.denied, .badge.broken, .badge.error { color: var(--bad); background: var(--bad-bg); }
.badge.pending, .badge.expired, .badge.open { color: var(--warn); background: var(--warn-bg); }
.badge.approved { color: var(--info); background: var(--info-bg); }
.badge.masked { color: var(--mask); background: var(--mask-bg); }
.badge.type { color: var(--muted); background: var(--band); border: 1px solid var(--line); font-weight: 500; }
.error-box { color: var(--bad); background: var(--bad-bg); border: 1px solid #f0b9b4; padding: 8px 12px;
  border-radius: 6px; margin: 10px 0; }
.notice { background: var(--band); border: 1px solid var(--line); padding: 8px 12px; border-radius: 6px; }
dl.summary { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0 0 12px; }
dl.summary dt { color: var(--muted); }
dl.summary dd { margin: 0; }
.pager { display: flex; gap: 16px; margin-top: 12px; }
.chain { margin: 8px 0 14px; }
.chain ul { margin: 6px 0 0; padding-left: 20px; }
.login { max-width: 560px; margin: 60px auto; }
.login textarea { width: 100%; min-height: 120px; }
.login form { display: flex; flex-direction: column; gap: 10px; }
.player { max-width: 1000px; margin-top: 12px; }
.details { display: flex; flex-direction: column; gap: 4px; }
.badge.abandoned { color: #fff; background: var(--bad); }
figure.activity { margin: 0 0 14px; padding: 8px 12px; border: 1px solid var(--line); border-radius: 6px; }
figure.activity figcaption { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; }
pre.command { font-size: 12px; white-space: pre; overflow-x: auto; }
`;
