/**
 * The one style sheet of every page. Its text never varies, so the app's Content-Security-Policy
 * can allow it by hash (`STYLE_CSP_SOURCE`) instead of `'unsafe-inline'`.
 */
import { createHash } from 'node:crypto'

/** The exact text of the pages' single `<style>` element. */
export const STYLE = `
:root{color-scheme:light dark;--bg:#f3f4f7;--card:#fff;--text:#161a22;--muted:#555d6b;--line:#d3d7df;--field:#fff;--field-line:#8a92a1;--primary:#1d4ed8;--primary-hover:#1e40af;--on-primary:#fff;--focus:#1d4ed8;--ring:rgba(29,78,216,.25);--alert-bg:#fdeced;--alert-text:#8c1d24;--alert-line:#e0a3a8;--check:#15803d;--shadow:0 1px 2px rgba(16,24,40,.06),0 8px 24px rgba(16,24,40,.08)}
@media (prefers-color-scheme:dark){:root{--bg:#0e1116;--card:#181c23;--text:#e8eaef;--muted:#a4abb8;--line:#2f3541;--field:#10141a;--field-line:#6b7483;--primary:#2f6fed;--primary-hover:#4b82f1;--on-primary:#fff;--focus:#8db3ff;--ring:rgba(141,179,255,.3);--alert-bg:#3a1619;--alert-text:#ffc2c6;--alert-line:#7a2a31;--check:#4ade80;--shadow:0 1px 2px rgba(0,0,0,.4),0 8px 24px rgba(0,0,0,.35)}}
*,*::before,*::after{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;min-height:100vh;display:flex;flex-direction:column;align-items:center;justify-content:center;padding:24px 16px;background:var(--bg);color:var(--text);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main>:last-child{margin-bottom:0}
main{width:100%;max-width:400px;background:var(--card);border:1px solid var(--line);border-radius:12px;box-shadow:var(--shadow);padding:32px 28px}
.brand{display:flex;align-items:center;gap:10px;margin:0 0 24px;font-weight:600;font-size:15px;color:var(--muted);letter-spacing:.01em}
.brand::before{content:"";width:18px;height:22px;border-radius:9px 9px 2px 2px;background:var(--primary)}
h1{margin:0 0 6px;font-size:24px;line-height:1.25;font-weight:650;letter-spacing:-.01em;overflow-wrap:anywhere;text-wrap:balance}
.lead{margin:0 0 24px;color:var(--muted);overflow-wrap:anywhere}
.lead strong{color:var(--text);font-weight:600}
p{margin:0 0 16px}
.message{margin-top:16px}
form{margin:0}
.field{margin:0 0 18px}
label{display:block;margin:0 0 6px;font-weight:600;font-size:15px}
input[type=text],input[type=password]{display:block;width:100%;min-height:44px;padding:10px 12px;font:inherit;color:var(--text);background:var(--field);border:1px solid var(--field-line);border-radius:8px}
input[type=text]:focus,input[type=password]:focus{outline:2px solid transparent;border-color:var(--focus);box-shadow:0 0 0 3px var(--ring)}
input[aria-invalid=true]{border-color:var(--alert-text)}
.actions{display:grid;gap:10px;margin-top:24px}
button{display:block;width:100%;min-height:44px;padding:10px 16px;font:inherit;font-weight:600;border-radius:8px;border:1px solid var(--field-line);background:var(--card);color:var(--text);cursor:pointer}
button:hover{background:var(--bg)}
button.primary{background:var(--primary);border-color:var(--primary);color:var(--on-primary)}
button.primary:hover{background:var(--primary-hover);border-color:var(--primary-hover)}
:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
.alert{margin:0 0 20px;padding:10px 12px;border:1px solid var(--alert-line);border-radius:8px;background:var(--alert-bg);color:var(--alert-text);font-size:15px}
.scopes-intro{margin:0 0 8px;font-weight:600;font-size:15px}
.scopes{list-style:none;margin:0;padding:0;border-top:1px solid var(--line)}
.scopes li{position:relative;padding:11px 0 11px 30px;border-bottom:1px solid var(--line);overflow-wrap:anywhere}
.scopes li::before{content:"";position:absolute;left:4px;top:16px;width:12px;height:7px;border-left:2px solid var(--check);border-bottom:2px solid var(--check);transform:rotate(-45deg)}
.note{margin:16px 0 0;color:var(--muted);font-size:14px}
@media (max-width:420px){body{padding:16px 12px;justify-content:flex-start}main{padding:24px 20px;margin-top:8vh}}
`

/** CSP source expression allowing `STYLE`, for `style-src` (CSP3 hash-source). */
export const STYLE_CSP_SOURCE = `'sha256-${createHash('sha256').update(STYLE, 'utf8').digest('base64')}'`
