/** The dashboard's stylesheet, inlined into every page (no build step, no static files). @module */

/** The CSS. */
export const STYLE = `
:root{--bg:#f6f7f9;--fg:#1d2330;--muted:#6a7385;--line:#dde1e8;--card:#fff;--accent:#2f6fde;
--ok:#1f8a4c;--bad:#c8362f;--warn:#b8720b;--run:#2f6fde;--wait:#7a5cc7;--mono:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
@media (prefers-color-scheme:dark){:root{--bg:#12151b;--fg:#e4e7ee;--muted:#97a0b3;--line:#2a303b;--card:#1a1e26;--accent:#6d9cf0}}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg)}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
header.top{display:flex;align-items:center;gap:18px;padding:10px 20px;background:var(--card);border-bottom:1px solid var(--line);flex-wrap:wrap}
header.top .brand{font-weight:700;font-size:16px;color:var(--fg)}
header.top nav{display:flex;gap:4px;flex-wrap:wrap}
header.top nav a{padding:5px 10px;border-radius:6px;color:var(--fg)}
header.top nav a.active{background:var(--accent);color:#fff}
header.top .right{margin-left:auto;display:flex;gap:12px;align-items:center;color:var(--muted);font-size:12px}
.live-dot{display:inline-block;width:8px;height:8px;border-radius:50%;background:var(--muted);margin-right:5px}
.live-dot.on{background:var(--ok)}.live-dot.off{background:var(--bad)}
main{padding:18px 20px;max-width:1400px;margin:0 auto}
h1{font-size:20px;margin:4px 0 14px}h2{font-size:15px;margin:18px 0 8px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px;margin-bottom:14px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.card .k{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:22px;font-weight:600;font-variant-numeric:tabular-nums}
.card .s{color:var(--muted);font-size:12px}
.card.bad .v{color:var(--bad,#c8362f)}.card.bad{border-color:#e6a9a5}
.panel{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 14px;margin-bottom:14px;overflow-x:auto}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;color:var(--muted);font-weight:600;white-space:nowrap}
td.nowrap{white-space:nowrap}th.wide,td.wide{width:100%}td.wide{word-break:break-all}
tr.stuck td{background:rgba(200,54,47,.12)}
tr.stuck td:first-child{box-shadow:inset 3px 0 var(--bad)}
.mono,code,pre{font-family:var(--mono);font-size:12.5px}
pre{background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:8px 10px;overflow:auto;max-height:420px;margin:4px 0;white-space:pre-wrap;word-break:break-word}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff;background:var(--muted);white-space:nowrap}
.badge.succeeded{background:var(--ok)}.badge.failed{background:var(--bad)}.badge.running{background:var(--run)}
.badge.queued{background:var(--wait)}.badge.scheduled{background:#5b6b86}.badge.cancelled{background:#8a8f99}
.badge.warn{background:var(--warn)}.badge.stale{background:var(--warn)}.badge.paused{background:var(--warn)}.badge.done{background:#8a8f99}.badge.active{background:var(--ok)}
.muted{color:var(--muted)}.err{color:var(--bad)}.small{font-size:12px}
.tabs{display:flex;gap:4px;flex-wrap:wrap;margin-bottom:10px}
.tabs a{padding:5px 10px;border:1px solid var(--line);border-radius:6px;background:var(--card);color:var(--fg)}
.tabs a.active{border-color:var(--accent);box-shadow:inset 0 -2px var(--accent)}
.tabs .n{color:var(--muted);margin-left:4px;font-variant-numeric:tabular-nums}
form.inline{display:inline}
.filters{display:flex;gap:8px;flex-wrap:wrap;align-items:end;margin-bottom:10px}
[hidden]{display:none!important}
label{display:flex;flex-direction:column;gap:2px;font-size:12px;color:var(--muted)}
label.check{flex-direction:row;align-items:center;gap:6px;color:var(--fg);font-size:13px}
input,select,textarea{font:inherit;color:var(--fg);background:var(--card);border:1px solid var(--line);border-radius:6px;padding:5px 8px}
textarea{font-family:var(--mono);font-size:12.5px}
button{font:inherit;border:1px solid var(--line);background:var(--card);color:var(--fg);border-radius:6px;padding:5px 12px;cursor:pointer}
button:hover{border-color:var(--accent)}button.primary{background:var(--accent);border-color:var(--accent);color:#fff}
button.danger{color:var(--bad)}button:disabled{opacity:.5;cursor:not-allowed}
.actions{display:flex;gap:6px;flex-wrap:wrap;align-items:center;margin:8px 0}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:14px}
.form-grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:10px;margin-bottom:10px}
.form-error{color:var(--bad);font-weight:600;margin:6px 0;white-space:pre-wrap}
.form-error:empty{display:none}
#flash{position:fixed;right:16px;bottom:16px;max-width:460px;padding:10px 14px;border-radius:8px;background:var(--fg);color:var(--bg);box-shadow:0 4px 16px rgba(0,0,0,.2);z-index:10}
#flash.bad{background:var(--bad);color:#fff}#flash:empty{display:none}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:4px 14px;margin:0}
dl.kv dt{color:var(--muted)}dl.kv dd{margin:0}
svg.chart{width:100%;height:170px;display:block}
svg.chart .axis{stroke:var(--line)}svg.chart .grid{stroke:var(--line);stroke-dasharray:2 3;opacity:.7}svg.chart text{fill:var(--muted);font-size:10px}svg.chart .bar:hover rect{opacity:.8}svg.chart .bar:hover rect[fill=transparent]{fill:rgba(127,127,127,.12)}
.note{color:var(--muted);font-size:12px;margin:6px 0}
progress{width:160px;vertical-align:middle}
.login{max-width:380px;margin:80px auto}
`;
