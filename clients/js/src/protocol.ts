// RTTP v1 lines (docs/protocol.md): escaping, parsing server lines, writing client lines.
// Pure functions: no I/O, no state.

/** A record's fields, values unescaped. */
export type Fields = Record<string, string>;

/** A line the server sent, parsed. Unknown verbs parse as `{ verb }` and are ignored by the client. */
export type ServerLine =
  | { verb: 'WELCOME'; version: number; server: string; session: string; maxline: number; ping: number; idle: number }
  | { verb: 'IMAGE' | 'UPDATE'; subject: string; epoch: bigint; seq: bigint; merged: number; fields: Fields; stamps?: Stamps }
  | { verb: 'STATUS'; subject: string; status: string; reason: string }
  | { verb: 'FARM'; version: number; count: number }
  | { verb: 'SERVER'; version: number; server: FarmServer }
  | { verb: 'FARMDEL'; version: number; id: string }
  | { verb: 'MOVE'; reason: string; server: string; after: number }
  | { verb: 'ACK'; id: string }
  | { verb: 'NACK'; id: string; code: string; after: number; text: string }
  | { verb: 'ERR'; code: string; meta: Fields; text: string }
  | { verb: 'BYE'; reason: string; text: string }
  | { verb: 'PING' | 'PONG'; token: string }
  | { verb: 'AUTH'; ok: boolean; exp: number }
  | { verb: 'OTHER'; line: string };

/**
 * The stamps of a record line's writes (HELLO `stamps=1`, docs/protocol.md 4a, "Refusing to go
 * back"): `clr`, the last image publication's (fields written before it were removed), and one per
 * field (from `@fts`, or `@ts` for all).
 */
export interface Stamps {
  clr: bigint;
  fields: Record<string, bigint>;
}

/** A client's copy of a subject's fields with their stamps, kept across moves. */
export interface StampedCopy {
  fields: Fields;
  stamps: Record<string, bigint>;
  clr: bigint;
}

/**
 * Merges a stamped IMAGE or UPDATE into a copy by the servers' own rule (`StampedFields` in .NET):
 * a field takes a value only from a write stamped at least as late as the one held; an image's
 * `clr` removes the fields written before it; a field an image lacks stays if written after its
 * `clr`. Returns the new copy (the old one is not changed), the fields taken (what changed), and
 * the fields kept because the copy holds later writes than the line (the farm lost them).
 */
export function mergeStamped(copy: StampedCopy | undefined, image: boolean, fields: Fields, stamps: Stamps): { copy: StampedCopy; taken: Fields; kept: string[] } {
  const out: StampedCopy = copy ? { fields: { ...copy.fields }, stamps: { ...copy.stamps }, clr: copy.clr } : { fields: {}, stamps: {}, clr: 0n };
  if (stamps.clr > out.clr) {
    out.clr = stamps.clr;
    for (const name of Object.keys(out.fields)) {
      if (out.stamps[name] < stamps.clr) {
        delete out.fields[name];
        delete out.stamps[name];
      }
    }
  }
  const taken: Fields = {};
  const kept: string[] = [];
  for (const [name, value] of Object.entries(fields)) {
    const stamp = stamps.fields[name] ?? 0n;
    const held = out.stamps[name];
    if (held !== undefined && held > stamp) {
      kept.push(name);
      continue;
    }
    if (held === undefined && stamp < out.clr && stamp !== 0n) continue; // an older write of a removed field
    out.fields[name] = value;
    out.stamps[name] = stamp;
    taken[name] = value;
  }
  if (image) {
    // The image's order first, then what it lacks (still held: written after its clr).
    const ordered: Fields = {};
    for (const name of Object.keys(fields)) if (name in out.fields) ordered[name] = out.fields[name];
    for (const name of Object.keys(out.fields)) {
      if (!(name in fields)) {
        ordered[name] = out.fields[name];
        kept.push(name);
      }
    }
    out.fields = ordered;
  }
  return { copy: out, taken, kept };
}

/** One server of the farm table (a `SERVER` line). */
export interface FarmServer {
  id: string;
  group: string;
  state: string;
  liveness: string;
  users: number;
  capacity: number;
  tcp: string;
  ws: string;
  http: string;
  [field: string]: string | number;
}

/** Error codes after which the server closes the connection (docs/protocol.md, section 5). */
export const FATAL_CODES: ReadonlySet<string> = new Set([
  'LINE_TOO_LONG', 'HELLO_REQUIRED', 'HELLO_TIMEOUT', 'VERSION', 'AUTH_FAILED', 'FULL',
  'SLOW_CONSUMER', 'IDLE', 'BINARY', 'INTERNAL', 'DRAINING', 'WRONG_GROUP', 'AUTH_EXPIRED',
]);

/** Escapes a field value: `\` space LF CR TAB and other control bytes. */
export function escapeValue(value: string): string {
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c > 0x20 && c !== 0x5c && c !== 0x7f) { out += value[i]; continue; }
    switch (c) {
      case 0x5c: out += '\\\\'; break;
      case 0x20: out += '\\s'; break;
      case 0x0a: out += '\\n'; break;
      case 0x0d: out += '\\r'; break;
      case 0x09: out += '\\t'; break;
      default: out += '\\x' + c.toString(16).padStart(2, '0');
    }
  }
  return out;
}

/** Unescapes a field value; throws on an invalid escape (the server never sends one). */
export function unescapeValue(text: string): string {
  if (text.indexOf('\\') < 0) return text;
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch !== '\\') { out += ch; continue; }
    const next = text[++i];
    switch (next) {
      case '\\': out += '\\'; break;
      case 's': out += ' '; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'x': {
        const hex = text.slice(i + 1, i + 3);
        const code = /^[0-9a-fA-F]{2}$/.test(hex) ? parseInt(hex, 16) : -1;
        if (code < 0 || (code > 0x1f && code !== 0x7f)) throw new Error(`bad escape \\x${hex}`);
        out += String.fromCharCode(code);
        i += 2;
        break;
      }
      default: throw new Error(`bad escape \\${next ?? ''}`);
    }
  }
  return out;
}

const SUBJECT = /^(\/[A-Za-z0-9_\-.:~+]+)+$/;
const FIELD = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/** Whether `s` is a valid subject (`/FX/GBPUSD`). */
export function isSubject(s: string): boolean {
  return s.length <= 256 && SUBJECT.test(s);
}

/** Whether `s` is a valid field name. */
export function isFieldName(s: string): boolean {
  return s.length <= 64 && FIELD.test(s);
}

/** Writes `name=value` tokens; throws on an invalid name. */
export function writeFields(fields: Fields): string {
  let out = '';
  for (const name in fields) {
    if (!isFieldName(name)) throw new TypeError(`invalid field name '${name}'`);
    out += ' ' + name + '=' + escapeValue(String(fields[name]));
  }
  return out;
}

function num(v: string | undefined, fallback = 0): number {
  const n = v === undefined ? NaN : Number(v);
  return Number.isFinite(n) ? n : fallback;
}

/** Splits tokens into positionals and `name=value` / `@meta=value` pairs (values unescaped). */
function split(tokens: string[], from: number): { args: string[]; fields: Fields; meta: Fields } {
  const args: string[] = [];
  const fields: Fields = {};
  const meta: Fields = {};
  for (let i = from; i < tokens.length; i++) {
    const t = tokens[i];
    const eq = t.indexOf('=');
    if (eq < 0) { args.push(t); continue; }
    const value = unescapeValue(t.slice(eq + 1));
    if (t[0] === '@') meta[t.slice(1, eq)] = value; else fields[t.slice(0, eq)] = value;
  }
  return { args, fields, meta };
}

/** The free text after a code and its meta attributes (ERR, NACK, BYE). */
function freeText(tokens: string[], from: number, meta: Fields): string {
  let i = from;
  while (i < tokens.length && tokens[i][0] === '@' && tokens[i].includes('=')) {
    const t = tokens[i++];
    const eq = t.indexOf('=');
    meta[t.slice(1, eq)] = unescapeValue(t.slice(eq + 1));
  }
  return tokens.slice(i).join(' ');
}

/** Parses one server line (without its terminator). */
export function parseLine(line: string): ServerLine {
  const tokens = line.split(' ').filter((t) => t.length > 0);
  const verb = tokens[0] ?? '';
  switch (verb) {
    case 'IMAGE':
    case 'UPDATE': {
      const { fields, meta } = split(tokens, 4);
      const stamps = meta.clr !== undefined || meta.fts !== undefined || meta.ts !== undefined ? readStamps(tokens, meta) : undefined;
      return { verb, subject: tokens[1], epoch: BigInt(tokens[2] ?? '0'), seq: BigInt(tokens[3] ?? '0'), merged: num(meta.merged, 1), fields, stamps };
    }
    case 'STATUS': {
      const { meta } = split(tokens, 3);
      return { verb, subject: tokens[1], status: tokens[2] ?? '', reason: meta.reason ?? '' };
    }
    case 'WELCOME': {
      const { fields } = split(tokens, 2);
      return { verb, version: num(tokens[1]), server: fields.server ?? '', session: fields.session ?? '', maxline: num(fields.maxline, 16384), ping: num(fields.ping, 1000), idle: num(fields.idle, 10000) };
    }
    case 'FARM':
      return { verb, version: num(tokens[1]), count: num(tokens[2]) };
    case 'SERVER': {
      const { fields } = split(tokens, 2);
      const server: FarmServer = {
        ...fields,
        id: fields.id ?? '', group: fields.group ?? 'default', state: fields.state ?? '', liveness: fields.liveness ?? '',
        users: num(fields.users), capacity: num(fields.capacity), tcp: fields.tcp ?? '', ws: fields.ws ?? '', http: fields.http ?? '',
      };
      return { verb, version: num(tokens[1]), server };
    }
    case 'FARMDEL':
      return { verb, version: num(tokens[1]), id: tokens[2] ?? '' };
    case 'MOVE': {
      const { meta } = split(tokens, 2);
      return { verb, reason: tokens[1] ?? '', server: meta.server ?? '', after: num(meta.after) };
    }
    case 'ACK':
      return { verb, id: tokens[1] ?? '' };
    case 'NACK': {
      const meta: Fields = {};
      const text = freeText(tokens, 3, meta);
      return { verb, id: tokens[1] ?? '', code: tokens[2] ?? '', after: num(meta.after), text };
    }
    case 'ERR': {
      const meta: Fields = {};
      const text = freeText(tokens, 2, meta);
      return { verb, code: tokens[1] ?? '', meta, text };
    }
    case 'BYE':
      return { verb, reason: tokens[1] ?? '', text: tokens.slice(2).join(' ') };
    case 'PING':
    case 'PONG':
      return { verb, token: tokens[1] ?? '' };
    case 'AUTH': {
      const { fields } = split(tokens, 2);
      return { verb, ok: tokens[1] === 'OK', exp: num(fields.exp, 0) };
    }
    default:
      return { verb: 'OTHER', line };
  }
}

/**
 * How long a connection must have written nothing before it answers a plain keep-alive PING, given
 * the server's ping interval and idle timeout from WELCOME (docs/protocol.md, "Keep-alive"): a
 * quarter of the idle timeout, never so long that a skipped PING plus the next interval could
 * reach it; 0 (answer every PING) when either is unknown or there is no room.
 */
export function quietPongAfter(pingMs: number, idleMs: number): number {
  if (!(pingMs > 0) || !(idleMs > 0)) return 0;
  return Math.max(0, Math.min(idleMs / 4, idleMs - 2 * pingMs));
}

/** Splits a WebSocket text message into lines (LF, optional CR), skipping empty ones. */
export function splitLines(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.length > 0) out.push(line);
  }
  return out;
}

/** `@clr`, and `@fts` (one per field token, in order: a repeated field keeps its last) or `@ts`. */
function readStamps(tokens: string[], meta: Fields): Stamps {
  const big = (v: string | undefined): bigint => (v !== undefined && /^[0-9]{1,20}$/.test(v) ? BigInt(v) : 0n);
  const list = meta.fts?.split(',');
  const fields: Record<string, bigint> = {};
  let i = 0;
  for (const t of tokens.slice(4)) {
    const eq = t.indexOf('=');
    if (eq <= 0 || t[0] === '@') continue;
    fields[t.slice(0, eq)] = list ? big(list[i]) : big(meta.ts);
    i++;
  }
  return { clr: big(meta.clr), fields };
}

/** The HELLO line. */
export function helloLine(opts: { client?: string; group?: string; token?: string; user?: string; password?: string; keepAliveMs?: number; stamps?: boolean }): string {
  const f: Fields = {};
  if (opts.client) f.client = opts.client;
  if (opts.group) f.group = opts.group;
  if (opts.token) f.token = opts.token;
  if (opts.user) f.user = opts.user;
  if (opts.password !== undefined && opts.user) f.password = opts.password;
  if (opts.keepAliveMs !== undefined && opts.keepAliveMs > 0) f.ping = String(Math.round(opts.keepAliveMs));
  if (opts.stamps) f.stamps = '1';
  return 'HELLO 1' + writeFields(f);
}

/** A PUB or PUBIMAGE line. */
export function pubLine(subject: string, fields: Fields, opts: { replace?: boolean; ack?: string } = {}): string {
  if (!isSubject(subject)) throw new TypeError(`invalid subject '${subject}'`);
  const body = writeFields(fields);
  if (!opts.replace && body.length === 0) throw new TypeError('PUB needs at least one field');
  return (opts.replace ? 'PUBIMAGE ' : 'PUB ') + subject + (opts.ack ? ' @ack=' + opts.ack : '') + body;
}

/** The `exp` of a JWT in seconds (read, not verified: the server verifies), or 0 for other tokens. */
export function tokenExpiry(token: string | undefined): number {
  const parts = token?.split('.');
  if (!parts || parts.length !== 3) return 0;
  try {
    const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const json = JSON.parse(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4))) as { exp?: unknown };
    return typeof json.exp === 'number' ? json.exp : 0;
  } catch {
    return 0;
  }
}
