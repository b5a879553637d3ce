// The live dashboard every node serves at `/`: the farm table (changes highlighted, dead and gone
// servers shown), message rates and users per server as uPlot charts over the last minutes, the
// server's limits and counters, and a live grid of subjects. Everything arrives over RTTP through
// the client: the farm table and its deltas, and the system subjects /~sys/server/<id> and
// /~sys/subjects/<id> (docs/protocol.md).
import uPlot from 'uplot';
import type { FarmTable, SubjectEvent } from '../index.js';
import { el, fmt, pageClient, params, setCell, showSteps } from './common.js';

const WINDOW_S = 300;
const client = pageClient('dashboard');
const $ = (id: string): HTMLElement => document.getElementById(id)!;
showSteps(client, $('steps'));

// ---- the farm table -------------------------------------------------------------------------

interface Row { tr: HTMLTableRowElement; cells: Record<string, HTMLTableCellElement> }
const rows = new Map<string, Row>();
const seen = new Set<string>();
const stats = new Map<string, Record<string, string>>();
const COLS = ['id', 'group', 'state', 'liveness', 'users', 'capacity', 'in_rate', 'out_rate', 'subjects', 'ws'];

function row(id: string): Row {
  let r = rows.get(id);
  if (r) return r;
  const tr = el('tr', { 'data-server': id });
  const cells: Record<string, HTMLTableCellElement> = {};
  for (const c of COLS) tr.append((cells[c] = el('td', { class: c })));
  r = { tr, cells };
  rows.set(id, r);
  const body = $('farm-body');
  const after = [...rows.keys()].sort().indexOf(id);
  body.insertBefore(tr, body.children[after] ?? null);
  return r;
}

function renderTable(t: FarmTable): void {
  $('farm-version').textContent = `v${t.version}`;
  const present = new Set(t.servers.map((m) => m.id));
  for (const m of t.servers) {
    seen.add(m.id);
    const r = row(m.id);
    const s = stats.get(m.id) ?? {};
    for (const c of COLS) setCell(r.cells[c], String(c in m && c !== 'subjects' ? m[c] : s[c] ?? ''));
    r.tr.className = `${m.state} ${m.liveness}${m.id === client.server ? ' serving' : ''}`;
  }
  for (const id of seen) {
    if (present.has(id)) continue;
    const r = row(id);
    r.tr.className = 'gone dead';
    setCell(r.cells.liveness, 'gone');
    setCell(r.cells.state, 'left the table');
  }
  $('serving').textContent = client.server || '(connecting)';
  syncCharts(t);
}

client.on('table', renderTable);
client.on('server', () => renderTable(client.table));

// ---- charts ---------------------------------------------------------------------------------

const times: number[] = [];
const rate = new Map<string, (number | null)[]>();
const users = new Map<string, (number | null)[]>();
let chartIds: string[] = [];
let rateChart: uPlot | null = null;
let usersChart: uPlot | null = null;
const palette = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777'];

function makeChart(target: HTMLElement, title: string, ids: string[], series: Map<string, (number | null)[]>): uPlot {
  target.replaceChildren();
  const opts: uPlot.Options = {
    title, width: Math.max(320, target.clientWidth || 560), height: 220,
    scales: { x: { time: true } },
    series: [{}, ...ids.map((id, i) => ({ label: id, stroke: palette[i % palette.length], width: 2, spanGaps: false }))],
    axes: [{}, { size: 60 }],
  };
  return new uPlot(opts, [times, ...ids.map((id) => series.get(id)!)] as uPlot.AlignedData, target);
}

function syncCharts(t: FarmTable): void {
  const ids = [...new Set([...seen, ...t.servers.map((m) => m.id)])].sort();
  if (ids.join() === chartIds.join()) return;
  chartIds = ids;
  for (const id of ids) {
    if (!rate.has(id)) rate.set(id, times.map(() => null));
    if (!users.has(id)) users.set(id, times.map(() => null));
  }
  rateChart?.destroy();
  usersChart?.destroy();
  rateChart = makeChart($('rate-chart'), 'messages out per second', ids, rate);
  usersChart = makeChart($('users-chart'), 'users', ids, users);
}

function sample(): void {
  const now = Date.now() / 1000;
  times.push(now);
  const live = new Map(client.table.servers.map((m) => [m.id, m]));
  for (const id of chartIds) {
    const m = live.get(id);
    const s = stats.get(id);
    const fresh = m && m.liveness !== 'dead' && s;
    rate.get(id)!.push(fresh ? Number(s.out_rate) : null);
    users.get(id)!.push(m && m.liveness !== 'dead' ? m.users : null);
  }
  while (times.length > 0 && times[0] < now - WINDOW_S) {
    times.shift();
    for (const a of [...rate.values(), ...users.values()]) a.shift();
  }
  const data = (series: Map<string, (number | null)[]>) => [times, ...chartIds.map((id) => series.get(id)!)] as uPlot.AlignedData;
  if (!document.hidden) {
    rateChart?.setData(data(rate));
    usersChart?.setData(data(users));
  }
}
setInterval(sample, 1000);

// ---- counters and limits, per server, from /~sys/server/<id> -----------------------------------

const COUNTERS = ['state', 'connections', 'users', 'capacity', 'routes', 'subjects', 'subscriptions', 'msgs_in', 'msgs_out', 'in_rate', 'out_rate',
  'conflations', 'slow_consumer_closes', 'rejected_full', 'rejected_pubs', 'rebalance_moves', 'uptime_s',
  'max_line', 'max_fields', 'max_subs', 'max_outbound', 'slow_consumer_ms', 'ping_ms', 'idle_ms'];
const counterCells = new Map<string, HTMLTableCellElement>();
const subscribedStats = new Set<string>();
const staleStats = new Set<string>();

function renderCounters(): void {
  const ids = [...stats.keys()].sort();
  const head = $('counters-head');
  if (head.childElementCount !== ids.length + 1) {
    head.replaceChildren(el('th', {}, 'counter'), ...ids.map((id) => el('th', {}, id)));
    const body = $('counters-body');
    body.replaceChildren();
    counterCells.clear();
    for (const c of COUNTERS) {
      const tr = el('tr', {}, '');
      tr.append(el('th', {}, c));
      for (const id of ids) {
        const td = el('td', { 'data-server': id, 'data-counter': c });
        counterCells.set(`${id} ${c}`, td);
        tr.append(td);
      }
      body.append(tr);
    }
  }
  for (const id of ids) {
    const s = stats.get(id)!;
    for (const c of COUNTERS) {
      const td = counterCells.get(`${id} ${c}`);
      if (td) setCell(td, /^\d+$/.test(s[c] ?? '') ? fmt(Number(s[c])) : s[c] ?? '');
    }
    for (const td of document.querySelectorAll<HTMLElement>(`#counters td[data-server="${id}"]`)) td.classList.toggle('stale', staleStats.has(id));
  }
}

function watchServer(id: string): void {
  if (subscribedStats.has(id)) return;
  subscribedStats.add(id);
  client.subscribe([`/~sys/server/${id}`, `/~sys/subjects/${id}`], (batch: SubjectEvent[]) => {
    for (const e of batch) {
      if (e.status === 'DENIED') {
        $('denied').hidden = false;
        continue;
      }
      if (e.subject.startsWith('/~sys/server/')) {
        if (e.type === 'status') {
          if (e.status === 'STALE') staleStats.add(id); else staleStats.delete(id);
        }
        if (e.record.fields.id) stats.set(id, e.record.fields);
      } else if (e.subject.startsWith('/~sys/subjects/')) {
        catalogs.set(id, (e.record.fields.names ?? '').split(',').filter(Boolean));
        syncGrid();
      }
    }
    renderCounters();
    renderTable(client.table);
  }, { delivery: 'frame' });
}

client.on('table', (t) => t.servers.forEach((m) => watchServer(m.id)));

// ---- the subjects grid ----------------------------------------------------------------------

const catalogs = new Map<string, string[]>();
const gridRows = new Map<string, Record<string, HTMLTableCellElement>>();
const gridFields: string[] = [];
const MAX_GRID = Number(params.get('subjects') ?? 50);
let gridSub: { close(): void } | null = null;
let gridNames: string[] = [];

function syncGrid(): void {
  const all = [...new Set([...catalogs.values()].flat())].sort();
  $('subject-count').textContent = `${all.length} subject(s)${all.length > MAX_GRID ? `, the first ${MAX_GRID} shown` : ''}`;
  const names = all.slice(0, MAX_GRID);
  if (names.join() === gridNames.join()) return;
  gridNames = names;
  gridSub?.close();
  gridRows.clear();
  $('grid-body').replaceChildren();
  if (names.length === 0) return;
  gridSub = client.subscribe(names, (batch: SubjectEvent[]) => batch.forEach(renderSubject), { delivery: 'frame' });
}

function renderSubject(e: SubjectEvent): void {
  let cells = gridRows.get(e.subject);
  const fields = Object.keys(e.record.fields).filter((f) => !gridFields.includes(f));
  if (fields.length > 0 && gridFields.length < 6) {
    gridFields.push(...fields.slice(0, 6 - gridFields.length));
    $('grid-head').replaceChildren(...['subject', 'seq', ...gridFields, 'status', 'continuity'].map((h) => el('th', {}, h)));
    for (const [s] of gridRows) gridRows.delete(s);
    $('grid-body').replaceChildren();
    cells = undefined;
  }
  if (!cells) {
    const tr = el('tr');
    cells = {};
    for (const c of ['subject', 'seq', ...gridFields, 'status', 'continuity']) tr.append((cells[c] = el('td', { class: c })));
    cells.subject.textContent = e.subject;
    gridRows.set(e.subject, cells);
    tr.dataset.subject = e.subject;
    const next = [...$('grid-body').children].find((r) => ((r as HTMLElement).dataset.subject ?? '') > e.subject);
    $('grid-body').insertBefore(tr, next ?? null); // rows in subject order
  }
  setCell(cells.seq, e.record.seq);
  for (const f of gridFields) setCell(cells[f], e.record.fields[f] ?? '');
  setCell(cells.status, e.record.status);
  setCell(cells.continuity, e.record.continuity);
}

// ---- go -------------------------------------------------------------------------------------

$('page-server').textContent = location.host;
client.connect().then(() => renderTable(client.table));
(globalThis as Record<string, unknown>).__dashboard = { client, stats, rows };
