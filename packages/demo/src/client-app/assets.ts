/**
 * The client app's one style sheet (the web app's pages and the single-page app's page), served
 * at /style.css, and its icon. Kept as text in a module, so they ship in dist/ with the code.
 */

export const STYLE = `
:root{color-scheme:light dark;--bg:#f3f4f7;--card:#fff;--text:#161a22;--muted:#555d6b;--line:#d3d7df;--code:#eef0f4;--primary:#1d4ed8;--primary-hover:#1e40af;--on-primary:#fff;--focus:#1d4ed8;--alert-bg:#fdeced;--alert-text:#8c1d24;--alert-line:#e0a3a8;--ok-bg:#e7f6ec;--ok-text:#14532d;--ok-line:#9fd6b0;--shadow:0 1px 2px rgba(16,24,40,.06),0 8px 24px rgba(16,24,40,.08)}
@media (prefers-color-scheme:dark){:root{--bg:#0e1116;--card:#181c23;--text:#e8eaef;--muted:#a4abb8;--line:#2f3541;--code:#10141a;--primary:#2f6fed;--primary-hover:#4b82f1;--on-primary:#fff;--focus:#8db3ff;--alert-bg:#3a1619;--alert-text:#ffc2c6;--alert-line:#7a2a31;--ok-bg:#12301d;--ok-text:#b7f0c9;--ok-line:#2c6a40;--shadow:0 1px 2px rgba(0,0,0,.4),0 8px 24px rgba(0,0,0,.35)}}
*,*::before,*::after{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;min-height:100vh;padding:24px 16px 48px;background:var(--bg);color:var(--text);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
.top,main{width:100%;max-width:760px;margin:0 auto}
.top{display:flex;flex-wrap:wrap;align-items:center;justify-content:space-between;gap:8px 20px;margin-bottom:16px}
.brand{display:flex;align-items:center;gap:10px;margin:0;font-weight:600;font-size:15px;color:var(--muted)}
.brand::before{content:"";width:18px;height:22px;border-radius:9px 9px 2px 2px;background:var(--primary)}
nav{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:15px}
nav a{color:var(--muted);text-decoration:none;padding:4px 0;border-bottom:2px solid transparent}
nav a[aria-current=page]{color:var(--text);border-bottom-color:var(--primary)}
main{background:var(--card);border:1px solid var(--line);border-radius:12px;box-shadow:var(--shadow);padding:28px}
main>:last-child{margin-bottom:0}
h1{margin:0 0 6px;font-size:24px;line-height:1.25;font-weight:650;letter-spacing:-.01em;overflow-wrap:anywhere}
h2{margin:28px 0 10px;font-size:17px;font-weight:650}
p{margin:0 0 14px}
.lead{color:var(--muted);overflow-wrap:anywhere}
.note{color:var(--muted);font-size:14px}
a{color:var(--primary)}
.status{font-size:18px;font-weight:600}
form{margin:0}
.actions{display:flex;flex-wrap:wrap;gap:10px;margin:18px 0}
button,a.button{display:inline-flex;align-items:center;justify-content:center;min-height:44px;padding:10px 18px;font:inherit;font-weight:600;line-height:1.2;border-radius:8px;border:1px solid var(--line);background:var(--card);color:var(--text);text-decoration:none;cursor:pointer}
button:hover,a.button:hover{background:var(--bg)}
button.primary,a.button.primary{background:var(--primary);border-color:var(--primary);color:var(--on-primary)}
button.primary:hover,a.button.primary:hover{background:var(--primary-hover);border-color:var(--primary-hover)}
button:disabled{opacity:.55;cursor:progress}
:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
table{width:100%;margin:0 0 18px;border-collapse:collapse;font-size:14px}
th,td{padding:7px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{width:32%;color:var(--muted);font-weight:600;overflow-wrap:anywhere}
td{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;overflow-wrap:anywhere;word-break:break-word}
pre{margin:0 0 14px;padding:12px;max-height:360px;overflow:auto;background:var(--code);border:1px solid var(--line);border-radius:8px;font:13px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;white-space:pre-wrap;overflow-wrap:anywhere}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.92em;overflow-wrap:anywhere}
.alert,.ok{margin:0 0 14px;padding:10px 12px;border:1px solid;border-radius:8px;font-size:15px;overflow-wrap:anywhere}
.alert{border-color:var(--alert-line);background:var(--alert-bg);color:var(--alert-text)}
.ok{border-color:var(--ok-line);background:var(--ok-bg);color:var(--ok-text)}
[hidden]{display:none!important}
@media (max-width:520px){body{padding:12px 10px 32px}main{padding:20px 16px}.actions{display:grid}button,a.button{width:100%}th{width:40%}}
`

export const FAVICON = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 18 22"><path d="M9 0a9 9 0 0 1 9 9v11a2 2 0 0 1-2 2H2a2 2 0 0 1-2-2V9a9 9 0 0 1 9-9z" fill="#1d4ed8"/></svg>'
