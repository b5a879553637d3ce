// Shared by the pages a node serves: the first address (this node), credentials from the query
// string, the connection steps panel, and small DOM helpers.
import { FarmClient, type Step } from '../index.js';

export const params = new URLSearchParams(location.search);

/** A client whose first address is the node that served this page (or `?servers=` URLs). */
export function pageClient(name: string): FarmClient {
  const first = params.get('servers')?.split(',') ?? [`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/rttp`];
  return new FarmClient({
    servers: first,
    name,
    token: params.get('token') ?? undefined,
    user: params.get('user') ?? undefined,
    password: params.get('password') ?? undefined,
    group: params.get('group') ?? undefined,
  });
}

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text = ''): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text) e.textContent = text;
  return e;
}

/**
 * Sets a cell's text; a changed value flashes. The flash restarts by switching between two
 * classes with the same animation under two names: no forced layout (reading offsetWidth to
 * restart an animation costs a synchronous layout per cell, which at thousands of changes a second
 * is the whole frame budget).
 */
export function setCell(td: HTMLElement, text: string): void {
  const node = td.firstChild;
  if (node && node.nodeType === 3) {
    if ((node as Text).data === text) return;
    (node as Text).data = text; // the same text node: no node churn
  } else {
    td.textContent = text;
  }
  const a = td.classList.contains('chg');
  td.classList.toggle('chg', !a);
  td.classList.toggle('chg2', a);
}

/** Shows the connection steps (the two-step connect and every failover) in `box`, newest first. */
export function showSteps(client: FarmClient, box: HTMLElement, keep = 40): Step[] {
  const steps: Step[] = [];
  client.on('step', (s) => {
    steps.push(s);
    const row = el('div', { class: `step ${s.kind}` });
    row.append(el('time', {}, new Date(s.at).toISOString().slice(11, 23)), el('b', {}, s.kind), document.createTextNode(' ' + s.text));
    box.prepend(row);
    while (box.childElementCount > keep) box.lastElementChild?.remove();
  });
  return steps;
}

export const fmt = (n: number): string => (Number.isFinite(n) ? n.toLocaleString('en-US') : '');
