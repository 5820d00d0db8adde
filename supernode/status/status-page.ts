// The status page (`GET /` on the admin listener): plain HTML and one small inline script that
// opens `/events` and redraws from each snapshot (see status-model.ts). Everything shown is set as
// text (never parsed as HTML), and the page's policy allows this one script and nothing else.
import { createHash } from 'node:crypto';

const SCRIPT = `
const $ = (s) => document.querySelector(s);
const el = (tag, attrs, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
};
const bytes = (n) => {
  if (n === null || n === undefined) return '\\u2014';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + ' ' + u[i];
};
const rate = (n) => (n === null || n === undefined ? '\\u2014' : bytes(n) + '/s');
const short = (s) => (s.length > 16 ? s.slice(0, 12) + '\\u2026' : s);
function draw(s) {
  $('#updated').textContent = new Date(s.at).toLocaleTimeString();
  $('#totals').textContent = s.totals.peers + ' peers, ' + s.totals.tasks + ' tasks; seed: ' + bytes(s.totals.seedRegistryBytes) + ' from the registry, ' + bytes(s.totals.seedServedBytes) + ' to peers';
  const peers = $('#peers tbody');
  peers.replaceChildren(...s.peers.map((p) => el('tr', { 'data-peer': p.id },
    el('td', { title: p.id }, short(p.id)), el('td', {}, p.address), el('td', {}, p.version ?? '\\u2014'),
    el('td', {}, bytes(p.storeBytes) + (p.storeQuotaBytes ? ' of ' + bytes(p.storeQuotaBytes) : '')), el('td', {}, rate(p.downBps)), el('td', {}, rate(p.upBps)), el('td', {}, p.tasks))));
  const tasks = $('#tasks');
  tasks.replaceChildren(...s.tasks.map((t) => {
    const rows = t.grid.map((r) => el('tr', { class: 'row', 'data-peer': r.peer, 'data-held': r.held },
      el('td', { title: r.peer }, short(r.peer)),
      el('td', { class: 'cells' }, ...[...r.cells].map((c) => el('span', { class: 'c c' + c }))),
      el('td', { class: 'held' }, r.held + '/' + t.pieceCount)));
    return el('section', { class: 'task', 'data-digest': t.digest, 'data-complete': t.complete },
      el('h3', {}, t.digest.slice(0, 19) + '\\u2026 ', el('small', {}, bytes(t.size) + ', ' + t.pieceCount + ' pieces, ' + t.holders + ' holders, ' + t.complete + ' complete; seed ' + t.seed + '; from the seed ' + bytes(t.bytes.seed) + ', from peers ' + bytes(t.bytes.peers))),
      el('table', { class: 'grid' }, el('tbody', {}, ...rows)));
  }));
  if (s.tasks.length === 0) tasks.append(el('p', {}, 'No tasks.'));
  $('#jobs tbody').replaceChildren(...s.jobs.map((j) => el('tr', { 'data-job': j.id },
    el('td', {}, j.id), el('td', {}, j.state + ' (' + j.phase + ')'), el('td', {}, j.target ?? ''),
    el('td', {}, j.progress.layers.done + '/' + j.progress.layers.total + ' layers, ' + j.progress.peers.done + '/' + j.progress.peers.total + ' peers'),
    el('td', {}, j.reason ?? ''))));
}
const source = new EventSource('events');
source.onmessage = (e) => { $('#state').textContent = 'live'; draw(JSON.parse(e.data)); };
source.onerror = () => { $('#state').textContent = 'reconnecting'; };
`;

const STYLE = `
body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.5em; } h3 { font: 13px monospace; margin: .8em 0 .3em; }
table { border-collapse: collapse; } td, th { padding: 2px 8px; text-align: left; border-bottom: 1px solid #eee; }
td { font-family: monospace; } small { color: #666; font-family: system-ui; }
.cells { white-space: nowrap; } .c { display: inline-block; width: 8px; height: 12px; margin-right: 1px; background: #eee; }
.c1,.c2,.c3 { background: #cde; } .c4,.c5,.c6 { background: #8ac; } .c7,.c8 { background: #47a; } .c9 { background: #158; }
#state { color: #080; }
`;

export const STATUS_PAGE_CSP = `default-src 'none'; script-src 'sha256-${createHash('sha256').update(SCRIPT).digest('base64')}'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Pollen supernode</title><style>${STYLE}</style></head>
<body>
<h1>Pollen supernode <small id="state">connecting</small> <small id="updated"></small></h1>
<p id="totals"></p>
<h2>Peers</h2>
<table id="peers"><thead><tr><th>id</th><th>address</th><th>version</th><th>store</th><th>down</th><th>up</th><th>tasks</th></tr></thead><tbody></tbody></table>
<h2>Tasks</h2>
<p><small>Pieces by peer: one cell per piece (or range of pieces), darker when held.</small></p>
<div id="tasks"></div>
<h2>Preheat jobs</h2>
<table id="jobs"><thead><tr><th>id</th><th>state</th><th>image</th><th>progress</th><th>reason</th></tr></thead><tbody></tbody></table>
<script>${SCRIPT}</script>
</body></html>
`;
