// The sample price grid: every subject the farm's servers list (or `?prefix=`), up to `?n=` (200),
// rendered once per animation frame, each cell labelled with its continuity, with the connection
// steps shown. Numbers for tests and benchmarks are on window.__grid.
import type { SubjectEvent } from '../index.js';
import { el, pageClient, params, showSteps } from './common.js';

const N = Number(params.get('n') ?? 200);
const PREFIX = params.get('prefix') ?? '';
const client = pageClient('price-grid');
const $ = (id: string): HTMLElement => document.getElementById(id)!;
const steps = showSteps(client, $('steps'));

const g = {
  client, steps, updates: 0, events: 0, frames: 0, gaps: 0, images: 0, labels: { continuous: 0, resumed: 0, gap: 0, fresh: 0 } as Record<string, number>,
  lastUpdateAt: 0, servers: {} as Record<string, number>, subjects: [] as string[], violations: [] as string[],
};
(globalThis as Record<string, unknown>).__grid = g;

const cells = new Map<string, Record<string, HTMLTableCellElement>>();
const catalogs = new Map<string, string[]>();
const last = new Map<string, { epoch: string; seq: bigint }>();
const explicit = params.get('list');

function cellsOf(subject: string): Record<string, HTMLTableCellElement> {
  let c = cells.get(subject);
  if (c) return c;
  const box = el('div', { class: 'tile', 'data-subject': subject });
  c = {} as Record<string, HTMLTableCellElement>;
  for (const k of ['subject', 'bid', 'ask', 'seq', 'continuity']) box.append((c[k] = el('span', { class: k }) as unknown as HTMLTableCellElement));
  c.subject.textContent = subject;
  cells.set(subject, c);
  $('grid').append(box);
  return c;
}

function setText(e: HTMLElement, text: string): void {
  const node = e.firstChild as Text | null;
  if (node && node.nodeType === 3) node.data = text;
  else e.textContent = text;
}

function tick(cell: HTMLElement, value: string): void {
  const before = Number(cell.textContent);
  setText(cell, value);
  const now = Number(value);
  if (now !== before) cell.dataset.dir = now > before ? 'up' : 'down';
}

function render(batch: SubjectEvent[]): void {
  g.frames++;
  for (const e of batch) {
    g.events += e.merged;
    if (e.type === 'status') {
      cellsOf(e.subject).subject.parentElement!.classList.toggle('stale', e.status === 'STALE');
      continue;
    }
    const c = cellsOf(e.subject);
    // Up or down in colour, without animations: hundreds of cells animating their background
    // would repaint on the main thread every frame.
    tick(c.bid, e.record.fields.bid ?? '');
    tick(c.ask, e.record.fields.ask ?? '');
    setText(c.seq, e.record.seq);
    if (e.continuity !== 'continuous' || c.continuity.firstChild) {
      setText(c.continuity, e.continuity === 'continuous' ? '' : e.continuity);
      c.subject.parentElement!.dataset.continuity = e.continuity;
    }
  }
  $('stats').textContent = `${g.subjects.length} subjects · ${g.updates} updates · ${g.images} images · ${g.gaps} gaps · served by ${client.server || '…'}`;
}

/** Subscribes to the subjects not yet on the grid (up to N in all). */
function add(names: string[]): void {
  const fresh = names.filter((n) => !g.subjects.includes(n)).slice(0, Math.max(0, N - g.subjects.length));
  if (fresh.length === 0) return;
  g.subjects.push(...fresh);
  for (const n of fresh) cellsOf(n); // tiles in subject order
  // Every message is checked (no silent gap), and counted; the page renders once a frame.
  client.subscribe(fresh, (e: SubjectEvent) => {
    if (e.type === 'status') return;
    const prev = last.get(e.subject);
    const seq = BigInt(e.seq);
    if (e.type === 'update') {
      g.updates++;
      if (prev && (prev.epoch !== e.epoch || seq !== prev.seq + BigInt(e.merged))) g.violations.push(`${e.subject} ${prev.epoch}/${prev.seq} -> ${e.epoch}/${e.seq}`);
    } else {
      g.images++;
    }
    g.labels[e.continuity]++;
    if (e.continuity === 'gap') g.gaps++;
    g.servers[e.server] = (g.servers[e.server] ?? 0) + 1;
    g.lastUpdateAt = Date.now();
    last.set(e.subject, { epoch: e.epoch, seq });
  });
  client.subscribe(fresh, render, { delivery: 'frame' });
}

/** Each server lists the subjects it holds; the grid follows the union of the lists (sorted, up to N). */
function catalogWatcher(id: string): void {
  client.subscribe(`/~sys/subjects/${id}`, (e: SubjectEvent) => {
    if (explicit || !e.record.fields.names) return;
    catalogs.set(id, e.record.fields.names.split(','));
    add([...new Set([...catalogs.values()].flat())].filter((s) => s.startsWith(PREFIX)).sort());
  });
}

const watched = new Set<string>();
client.on('table', (t) => t.servers.forEach((m) => {
  if (!watched.has(m.id)) {
    watched.add(m.id);
    catalogWatcher(m.id);
  }
}));
if (explicit) add(explicit.split(','));
client.connect();
