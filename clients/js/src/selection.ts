// Choosing the server that will serve the client: the same policies, composition and explanations
// as the .NET client (src/StreamFarm.Client/Selection/Selectors.cs). Pure: chance is handed in.
import type { FarmServer } from './protocol.js';

/** A chosen server and why it was chosen. */
export interface ServerChoice {
  server: FarmServer;
  /** For example `s2: group eu, 812/2000 users, table v37 (power of two choices of 3); active`. */
  reason: string;
}

/** Picks one of the candidates, or null when none is acceptable. `random()` returns [0, 1). */
export type Selector = (candidates: readonly FarmServer[], tableVersion: number, random: () => number) => ServerChoice | null;

/** A server's load: users relative to capacity. */
export const load = (m: FarmServer): number => m.users / Math.max(1, m.capacity);

const describe = (m: FarmServer, version: number): string => `${m.id}: group ${m.group}, ${m.users}/${m.capacity} users, table v${version}`;

const pickIndex = (n: number, random: () => number): number => Math.min(n - 1, Math.floor(random() * n));

function chooser(name: string, pick: (c: readonly FarmServer[], random: () => number) => FarmServer): Selector {
  return (c, version, random) => {
    if (c.length === 0) return null;
    const m = pick(c, random);
    return { server: m, reason: `${describe(m, version)} (${name} of ${c.length})` };
  };
}

/** Uniformly at random. */
export const random = (): Selector => chooser('random', (c, r) => c[pickIndex(c.length, r)]);

/** The fewest users relative to capacity; ties broken at random. */
export const fewestUsers = (): Selector => chooser('fewest users', (c, r) => {
  const min = Math.min(...c.map(load));
  const best = c.filter((m) => load(m) === min);
  return best[pickIndex(best.length, r)];
});

/** Sample two, take the less loaded: stays balanced when many clients act on one stale table. */
export const powerOfTwoChoices = (): Selector => chooser('power of two choices', (c, r) => {
  const a = c[pickIndex(c.length, r)];
  const b = c[pickIndex(c.length, r)];
  return load(b) < load(a) ? b : a;
});

/** At random, weighted by free capacity. */
export const weighted = (): Selector => chooser('weighted by free capacity', (c, r) => {
  const weights = c.map((m) => Math.max(1, m.capacity - m.users));
  let x = r() * weights.reduce((a, b) => a + b, 0);
  for (let i = 0; i < c.length; i++) {
    x -= weights[i];
    if (x < 0) return c[i];
  }
  return c[c.length - 1];
});

function filter(inner: Selector, keep: (m: FarmServer) => boolean, spill: boolean, what: string): Selector {
  return (candidates, version, r) => {
    const kept = candidates.filter(keep);
    const c = kept.length > 0 ? inner(kept, version, r) : null;
    if (c) return { server: c.server, reason: `${c.reason}; ${what}` };
    // A preferred group spills over both when it has no server and when the inner filters accept
    // none of its servers.
    const s = spill ? inner(candidates, version, r) : null;
    return s ? { server: s.server, reason: `${s.reason}; no ${what} server, spilled over` } : null;
  };
}

/** Only active, alive servers: never joining, draining, leaving, suspect or dead. */
export const activeOnly = (inner: Selector): Selector =>
  filter(inner, (m) => m.state === 'active' && m.liveness === 'alive', false, 'active');

/** Servers of `group` while it has any acceptable one; the others otherwise. */
export const preferGroup = (inner: Selector, group?: string): Selector =>
  group ? filter(inner, (m) => m.group === group, true, `group ${group}`) : inner;

/** The default: active servers, the preferred group if any, power of two choices. */
export const defaultSelector = (group?: string): Selector => activeOnly(preferGroup(powerOfTwoChoices(), group));

/** A policy by name, as the command line takes it: random, fewest, p2c, weighted. */
export function parseSelector(name: string, group?: string): Selector {
  const base = ({
    random, fewest: fewestUsers, 'fewest-users': fewestUsers, weighted, p2c: powerOfTwoChoices, 'power-of-two': powerOfTwoChoices,
  } as Record<string, () => Selector>)[name.toLowerCase()];
  if (!base) throw new TypeError(`unknown selection policy '${name}' (random, fewest, p2c, weighted)`);
  return activeOnly(preferGroup(base(), group));
}

/** A seeded source of chance (mulberry32), for tests and reproducible runs. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Capped exponential backoff with full jitter: random in [0, min(max, initial × 2^round)) ms. */
export function backoffDelay(round: number, random: () => number, initialMs = 100, maxMs = 5000): number {
  const cap = Math.min(maxMs, initialMs * Math.pow(2, Math.min(round, 30)));
  return random() * cap;
}
