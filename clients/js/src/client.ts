// FarmClient: the two-step connect over WebSocket (first addresses, farm table, chosen server,
// make-before-break move), retry once, rediscover, jittered backoff, MOVE; subscriptions that
// survive every move, labelled with their continuity; publishing with acknowledgements.
import { ConnectError, type FarmTable, RttpSession, type WebSocketLike } from './connection.js';
import { type Fields, type FarmServer, type ServerLine, type StampedCopy, isSubject, mergeStamped, pubLine } from './protocol.js';
import { backoffDelay, defaultSelector, type Selector } from './selection.js';
import { type Continuity, type SubjectEvent, type SubjectRecord, Subscription, type SubscribeOptions } from './subscription.js';

/** The steps of the two-step connect and of failover, as the .NET client names them. */
export type StepKind =
  | 'resolved' | 'firstServer' | 'tableReceived' | 'chosen' | 'moved' | 'subscribed' | 'lost'
  | 'retried' | 'rediscovered' | 'failed' | 'republished' | 'refused' | 'unavailable';

export interface Step {
  kind: StepKind;
  text: string;
  at: number;
}

export interface FarmClientOptions {
  /** The first addresses: WebSocket URLs (`ws://127.0.0.2:7480/rttp`) or `host:port` of the HTTP side. */
  servers: string | string[];
  /** How the serving server is chosen (default: active, preferred group, power of two choices). */
  selector?: Selector;
  /** The client's group: preferred by the default selector, and sent in HELLO. */
  group?: string;
  /** Client name in HELLO. */
  name?: string;
  /** A token for HELLO, or a function giving one at each connect and, for a JWT, again before it expires (renewed in the session with AUTH). */
  token?: string | (() => string | Promise<string>);
  user?: string;
  password?: string;
  /** Seeded chance for selection, shuffling and jitter. */
  random?: () => number;
  /** A server silent this long is hung (servers PING when idle). Default 3,000 ms; a longer one asks the server to ping a third as often (HELLO `ping=`). */
  heartbeatTimeoutMs?: number;
  /** Longest random pause before obeying MOVE. Default 1,000 ms. */
  moveSpreadMs?: number;
  /** Backoff between failed rounds of rediscovery: full jitter, doubling. Default 100 to 5,000 ms. */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  connectTimeoutMs?: number;
  /** The address of a server from its table entry (default: its `ws` URL, or `wss` when secure). */
  addressOf?: (server: FarmServer) => string;
  /**
   * Move only to servers' TLS addresses (the table's `wss` URLs). Default: on when the page was
   * served over https (a browser blocks `ws://` from an https page) or a first address is `wss://`.
   */
  secure?: boolean;
  /** WebSocket constructor (default: the global one). */
  WebSocket?: WebSocketLike;
  /**
   * Ask for the writes' stamps (HELLO `stamps=1`) and never show a field older than one shown,
   * across moves too: when the farm lost the newest writes (every server that had them died), the
   * record keeps them, its `behind` lists those fields, and `stats.keptNewer` counts it
   * (docs/protocol.md 4a, "Refusing to go back"). Default on; off takes the farm's lines as they come.
   */
  stamps?: boolean;
}

/** A publication refused (NACK) or lost. */
export class PublishError extends Error {
  constructor(readonly subject: string, readonly code: string, message: string, readonly after = 0) {
    super(message);
    this.name = 'PublishError';
  }
}

export interface PublishOptions {
  /** Wait for the owner's ACK (the promise rejects with PublishError on NACK). */
  ack?: boolean;
  /** PUBIMAGE: replace the whole record. */
  replace?: boolean;
}

interface Pub {
  subject: string;
  fields: Fields;
  replace: boolean;
  ack: boolean;
  waiters: { resolve: () => void; reject: (e: Error) => void }[];
  session?: RttpSession;
}

interface Outcome {
  kind: 'lost' | 'move' | 'stopped';
  text: string;
}

type Listener<T> = (value: T) => void;

const SUSPECT_MS = 5000;

export class FarmClient {
  private readonly _o: Required<Omit<FarmClientOptions, 'token' | 'user' | 'password' | 'group' | 'selector' | 'addressOf' | 'secure'>> & FarmClientOptions;
  private readonly _secure: boolean;
  private readonly _first: string[];
  private readonly _selector: Selector;
  private readonly _random: () => number;
  private _session: RttpSession | null = null;
  private _table: FarmTable = { version: 0, servers: [] };
  private _stopped = false;
  private _loop: Promise<void> | null = null;
  private _wake: ((o: Outcome) => void) | null = null;
  private readonly _records = new Map<string, SubjectRecord>();
  /** With stamps: each subject's fields with their writes' stamps, kept across moves. */
  private readonly _stamped = new Map<string, StampedCopy>();
  private readonly _subs = new Map<string, Set<Subscription>>();
  private readonly _resubscribed = new Set<string>();
  private readonly _suspected = new Map<string, number>();
  private _lastLost = '';
  private readonly _acks = new Map<string, Pub>();
  private _held: Pub[] = [];
  private _ackCounter = 0;
  private _moveAfter = 0;
  private _connected: Promise<void>;
  private _resolveConnected!: () => void;
  private readonly _listeners: Record<string, Set<Listener<never>>> = {};
  /** Counts for dashboards and tests. */
  readonly stats = { moves: 0, lost: 0, gaps: 0, republished: 0, messages: 0, keptNewer: 0 };

  constructor(options: FarmClientOptions) {
    const WS = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketLike }).WebSocket;
    if (!WS) throw new TypeError('no WebSocket: pass options.WebSocket (Node < 22: run with --experimental-websocket)');
    this._o = {
      name: 'streamfarm-js', random: Math.random, heartbeatTimeoutMs: 3000, moveSpreadMs: 1000, stamps: true,
      backoffInitialMs: 100, backoffMaxMs: 5000, connectTimeoutMs: 5000, ...options, WebSocket: WS,
    };
    this._first = (Array.isArray(options.servers) ? options.servers : [options.servers]).map(toUrl);
    if (this._first.length === 0) throw new TypeError('servers: give at least one first address');
    const page = (globalThis as { location?: { protocol?: string } }).location?.protocol;
    this._secure = options.secure ?? (page === 'https:' || this._first.some((a) => a.startsWith('wss://')));
    this._selector = options.selector ?? defaultSelector(options.group);
    this._random = this._o.random;
    this._connected = new Promise((r) => (this._resolveConnected = r));
  }

  // ---- events -------------------------------------------------------------------------------

  /** `step` (each connection step), `table` (the farm table changed), `server` (serving server changed), `error`. */
  on(event: 'step', f: Listener<Step>): () => void;
  on(event: 'table', f: Listener<FarmTable>): () => void;
  on(event: 'server', f: Listener<string>): () => void;
  on(event: 'error', f: Listener<unknown>): () => void;
  on(event: string, f: Listener<never>): () => void {
    (this._listeners[event] ??= new Set()).add(f);
    return () => this._listeners[event]?.delete(f);
  }

  private emit(event: string, value: unknown): void {
    for (const f of this._listeners[event] ?? []) {
      try {
        (f as Listener<unknown>)(value);
      } catch (e) {
        if (event !== 'error') this.emit('error', e);
      }
    }
  }

  private step(kind: StepKind, text: string): void {
    this.emit('step', { kind, text, at: Date.now() });
  }

  // ---- public API ---------------------------------------------------------------------------

  /** Starts the connect loop; resolves once connected (and subscribed) the first time. */
  connect(): Promise<void> {
    this._loop ??= this.run();
    return this._connected;
  }

  /** The id of the server now serving this client, '' when not connected. */
  get server(): string {
    return this._session?.server ?? '';
  }

  /** The latest farm table. */
  get table(): FarmTable {
    return this._table;
  }

  /** A subject's last value (undefined before its first message). */
  record(subject: string): SubjectRecord | undefined {
    return this._records.get(subject);
  }

  /** Every record this client holds. */
  get records(): ReadonlyMap<string, SubjectRecord> {
    return this._records;
  }

  /**
   * Subscribes to subjects; they stay subscribed across every move. With a callback, each event
   * (or, with `delivery: 'frame'`, each animation frame's conflated batch) is passed to it;
   * without one, iterate the subscription with `for await`.
   */
  subscribe(subjects: string | string[], callback?: (e: SubjectEvent) => void, options?: SubscribeOptions): Subscription;
  subscribe(subjects: string | string[], callback: (batch: SubjectEvent[]) => void, options: { delivery: 'frame' }): Subscription;
  subscribe(subjects: string | string[], callback?: ((e: SubjectEvent) => void) | ((b: SubjectEvent[]) => void), options: SubscribeOptions = {}): Subscription {
    const list = [...new Set(Array.isArray(subjects) ? subjects : [subjects])];
    for (const s of list) if (!isSubject(s)) throw new TypeError(`invalid subject '${s}'`);
    const sub = new Subscription(list, callback, options.delivery ?? 'each', (x) => this.unsubscribe(x), (e) => this.emit('error', e));
    const fresh: string[] = [];
    for (const s of list) {
      let set = this._subs.get(s);
      if (!set) {
        this._subs.set(s, (set = new Set()));
        fresh.push(s);
      }
      set.add(sub);
      const r = this._records.get(s);
      if (r && r.seq !== '') sub.deliver(this.event('image', r, r.fields, 'continuous', 1));
    }
    if (fresh.length > 0 && this._session) this.sendSubs('SUB', fresh, this._session);
    return sub;
  }

  /** Publishes fields of a subject. Resolves when sent (or, with `ack`, when the owner applied it). */
  publish(subject: string, fields: Fields, options: PublishOptions = {}): Promise<void> {
    pubLine(subject, fields, { replace: options.replace }); // validates now, not later on another connection
    return new Promise((resolve, reject) => {
      const pub: Pub = { subject, fields, replace: !!options.replace, ack: !!options.ack, waiters: [{ resolve, reject }] };
      if (this._session && this._held.length === 0) this.send(pub, this._session);
      else this._held.push(pub);
    });
  }

  /** Stops: says BYE, ends every subscription's iteration. */
  async close(): Promise<void> {
    this._stopped = true;
    this._wake?.({ kind: 'stopped', text: 'closing' });
    this._session?.close('client closing');
    for (const set of this._subs.values()) for (const s of [...set]) s.close();
    for (const p of [...this._acks.values(), ...this._held]) for (const w of p.waiters) w.reject(new PublishError(p.subject, 'CLOSED', 'client closed before an answer'));
    this._acks.clear();
    this._held = [];
    await this._loop;
  }

  // ---- the connect loop ---------------------------------------------------------------------

  private async run(): Promise<void> {
    let round = 0;
    while (!this._stopped) {
      if (round > 1) {
        const delay = backoffDelay(round - 2, this._random, this._o.backoffInitialMs, this._o.backoffMaxMs);
        await sleep(delay);
        if (this._stopped) return;
        this.step('rediscovered', `asking the first addresses again (round ${round}, waited ${Math.round(delay)} ms)`);
      } else if (round === 1) {
        this.step('rediscovered', 'asking the first addresses again');
      }
      round++;
      let session = await this.discover();
      while (session && !this._stopped) {
        const outcome = await this.serve(session);
        if (outcome.kind === 'stopped') return;
        round = 0;
        this.stats.lost++;
        if (outcome.kind === 'move') {
          this.step('lost', `server ${session.server} asks clients to move: ${outcome.text}`);
          session = await this.move(session);
          continue;
        }
        this.step('lost', `server ${session.server} at ${session.url}: ${outcome.text}`);
        this.suspect(session.server, session.url);
        this.clear(session);
        this.step('retried', `trying ${session.url} once more`);
        const lost = session;
        const again = await this.tryConnect(session.url);
        session = again.session;
        if (session) this.activate(session);
        else this.step('failed', `${lost.url} did not answer the retry; asking for the service again`);
      }
      round = Math.max(round, 1);
    }
  }

  private async discover(): Promise<RttpSession | null> {
    // The first addresses shuffled (so that pages spread over them), then the servers of the last
    // table (a page whose first address is gone still finds the farm); servers lost lately last.
    const known = this._table.servers.map((m) => this.addressOf(m)).filter((a) => a && !this._first.includes(a));
    const order = [...shuffle([...this._first], this._random), ...shuffle(known, this._random)]
      .sort((a, b) => Number(this.isSuspected(a)) - Number(this.isSuspected(b)));
    this.step('resolved', `first addresses: ${order.join(', ')}`);
    let first: RttpSession | null = null;
    for (const url of order) {
      if (this._stopped) return null;
      first = (await this.tryConnect(url)).session;
      if (first) break;
    }
    if (!first) return null;
    this.step('firstServer', `first server ${first.server} at ${first.url}`);
    const table = first.table;
    this.setTable(table);
    this.step('tableReceived', `farm table v${table.version}: ${table.servers.map((m) => `${m.id} ${m.state}/${m.liveness} ${m.users}/${m.capacity}${m.group === 'default' ? '' : ' ' + m.group}`).join(', ')}`);
    const excluded = new Set<string>();
    for (let attempt = 0; attempt < 3; attempt++) {
      const choice = this.choose(table, excluded);
      if (!choice) {
        this.step('failed', `no acceptable server in table v${table.version}`);
        first.close('no acceptable server');
        return null;
      }
      this.step('chosen', choice.reason);
      if (choice.server.id === first.server) {
        this.step('moved', `staying on ${first.server}: the first server is the chosen one`);
        this.activate(first);
        return first;
      }
      const address = this.addressOf(choice.server);
      let tried = await this.tryConnect(address);
      if (!tried.session && !tried.error?.code) {
        this.step('retried', `trying ${choice.server.id} at ${address} once more`);
        tried = await this.tryConnect(address);
      }
      if (tried.session) {
        // Make-before-break: the first connection closes only now that the second is ready.
        first.close('moving to the chosen server');
        this.step('moved', `moved to ${tried.session.server} at ${address}; closed ${first.server}`);
        this.activate(tried.session);
        return tried.session;
      }
      if (!tried.error?.code) break; // unreachable twice: ask for the service again
      excluded.add(choice.server.id); // refused (full, draining): obey, and choose another
    }
    first.close('no server to move to');
    return null;
  }

  private async move(current: RttpSession): Promise<RttpSession | null> {
    // The server's @after first, then a random moment, so that a server's clients do not all
    // arrive elsewhere at once.
    const pause = this._moveAfter + this._random() * this._o.moveSpreadMs;
    this._moveAfter = 0;
    await sleep(pause);
    const excluded = new Set([current.server]);
    for (let attempt = 0; attempt < 3 && !this._stopped; attempt++) {
      const choice = this.choose(this._table, excluded);
      if (!choice) break;
      this.step('chosen', choice.reason);
      const next = (await this.tryConnect(this.addressOf(choice.server))).session;
      if (next) {
        await this.whenAnswered(current, this._o.heartbeatTimeoutMs);
        this.clear(current);
        current.close('moving');
        this.step('moved', `moved to ${next.server} at ${next.url} after ${Math.round(pause)} ms; left ${current.server}`);
        this.activate(next);
        return next;
      }
      excluded.add(choice.server.id);
    }
    this.clear(current);
    current.close('moving');
    this.step('failed', 'no other server to move to; asking for the service again');
    return null;
  }

  /** Waits (at most `ms`) until the publications sent on `session` are answered. */
  private async whenAnswered(session: RttpSession, ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (Date.now() < until && !session.ended && [...this._acks.values()].some((p) => p.session === session)) await sleep(20);
  }

  private serve(session: RttpSession): Promise<Outcome> {
    return new Promise((resolve) => {
      let done = false;
      const finish = (o: Outcome): void => {
        if (done) return;
        done = true;
        clearInterval(watch);
        this._wake = null;
        resolve(o);
      };
      this._wake = finish;
      const watch = setInterval(() => {
        if (session.silence > this._o.heartbeatTimeoutMs) {
          session.end({ why: `silent for ${this._o.heartbeatTimeoutMs} ms: hung` });
        }
      }, Math.max(10, this._o.heartbeatTimeoutMs / 4));
      if (session.ended) finish({ kind: 'lost', text: 'connection closed' });
      session.onEnd = (end) => {
        this.sessionEnded(session);
        finish({ kind: 'lost', text: end.why });
      };
      session.onLine = (line) => {
        if (line.verb === 'MOVE') {
          this._moveAfter = line.after;
          finish({ kind: 'move', text: `MOVE ${line.reason}${line.after ? ` after ${line.after} ms` : ''}${line.server ? ' toward ' + line.server : ''}` });
          return;
        }
        this.onLine(line, session);
      };
    });
  }

  private async tryConnect(url: string): Promise<{ session: RttpSession | null; error?: ConnectError }> {
    try {
      const token = typeof this._o.token === 'function' ? await this._o.token() : this._o.token;
      const provider = this._o.token;
      const session = await RttpSession.open(url, {
        client: this._o.name, group: this._o.group, token, user: this._o.user, password: this._o.password,
        renewToken: typeof provider === 'function' ? async () => await provider() : undefined,
        connectTimeoutMs: this._o.connectTimeoutMs, WebSocket: this._o.WebSocket,
        // A silence allowance longer than 3 s is asked of the server too: pinged a third as often
        // (docs/protocol.md, "Keep-alive").
        keepAliveMs: this._o.heartbeatTimeoutMs > 3000 ? this._o.heartbeatTimeoutMs / 3 : undefined,
        stamps: this._o.stamps,
      });
      return { session };
    } catch (e) {
      const error = e instanceof ConnectError ? e : new ConnectError(String(e));
      this.step(error.code ? 'refused' : 'failed', error.message);
      return { session: null, error };
    }
  }

  /** Makes `session` the serving one and restores every subscription and held publication on it. */
  private activate(session: RttpSession): void {
    this._session = session;
    this.stats.moves++;
    session.onTable = (t) => {
      if (this._session === session) this.setTable(t);
    };
    this.setTable(session.table);
    this.emit('server', session.server);
    const subjects = [...this._subs.keys()];
    this._resubscribed.clear();
    for (const s of subjects) this._resubscribed.add(s);
    if (subjects.length > 0) {
      this.sendSubs('SUB', subjects, session);
      this.step('subscribed', `${subjects.length} subscription(s) on ${session.server}`);
    }
    const held = this._held;
    this._held = [];
    for (const p of held) this.send(p, session);
    this._resolveConnected();
  }

  private clear(session: RttpSession): void {
    if (this._session === session) {
      this._session = null;
      this.emit('server', '');
    }
    this.sessionEnded(session);
  }

  /**
   * Publications sent on an ended session and not answered: their outcome is unknown, so the
   * latest value of each such subject is published again (merged, in order) on the next server.
   */
  private sessionEnded(session: RttpSession): void {
    const lost = [...this._acks.entries()].filter(([, p]) => p.session === session);
    if (lost.length === 0) return;
    const bySubject = new Map<string, Pub>();
    for (const [id, p] of lost) {
      this._acks.delete(id);
      const prev = bySubject.get(p.subject);
      bySubject.set(p.subject, prev
        ? { ...p, fields: p.replace ? p.fields : { ...prev.fields, ...p.fields }, replace: prev.replace || p.replace, waiters: [...prev.waiters, ...p.waiters] }
        : { ...p, waiters: [...p.waiters] });
    }
    for (const p of bySubject.values()) {
      this.stats.republished++;
      this.step('republished', `${p.subject}: ${p.waiters.length} publication(s) unanswered when their connection ended: sending the latest value again`);
      p.session = undefined;
      this._held.unshift(p);
    }
    if (this._session && !this._session.ended) {
      const held = this._held;
      this._held = [];
      for (const p of held) this.send(p, this._session);
    }
  }

  private send(p: Pub, session: RttpSession): void {
    if (!p.ack) {
      session.send(pubLine(p.subject, p.fields, { replace: p.replace }));
      for (const w of p.waiters) w.resolve();
      return;
    }
    const id = 'a' + (++this._ackCounter).toString(36);
    p.session = session;
    this._acks.set(id, p);
    session.send(pubLine(p.subject, p.fields, { replace: p.replace, ack: id }));
  }

  private sendSubs(verb: 'SUB' | 'UNSUB', subjects: string[], session: RttpSession): void {
    // Several lines, each well under the line limit.
    for (let i = 0; i < subjects.length; i += 100) session.send(verb + ' ' + subjects.slice(i, i + 100).join(' '));
  }

  private unsubscribe(sub: Subscription): void {
    const gone: string[] = [];
    for (const s of sub.subjects) {
      const set = this._subs.get(s);
      if (!set) continue;
      set.delete(sub);
      if (set.size === 0) {
        this._subs.delete(s);
        this._records.delete(s);
        this._stamped.delete(s);
        gone.push(s);
      }
    }
    if (gone.length > 0 && this._session && !this._stopped) this.sendSubs('UNSUB', gone, this._session);
  }

  // ---- messages -----------------------------------------------------------------------------

  private onLine(line: ServerLine, session: RttpSession): void {
    switch (line.verb) {
      case 'IMAGE':
      case 'UPDATE': {
        const subs = this._subs.get(line.subject);
        if (!subs) return;
        this.stats.messages++;
        const epoch = line.epoch.toString();
        const seq = line.seq.toString();
        const before = this._records.get(line.subject);
        let continuity: Continuity = 'continuous';
        if (line.verb === 'IMAGE') {
          if (this._resubscribed.delete(line.subject) && before && before.seq !== '') {
            const prevSeq = BigInt(before.seq);
            continuity = before.epoch !== epoch || line.seq < prevSeq ? 'fresh' : line.seq === prevSeq ? 'resumed' : 'gap';
          }
        } else if (before && before.seq !== '' && (before.epoch !== epoch || line.seq !== BigInt(before.seq) + BigInt(line.merged))) {
          continuity = 'gap'; // never expected (the server signals with an IMAGE or STALE): counted and shown
        }
        if (continuity === 'gap') this.stats.gaps++;
        let fields: Fields;
        let changed = line.fields;
        let behind = before?.behind;
        if (line.stamps) {
          // Merged by the writes' stamps: nothing older than what was shown replaces it.
          const m = mergeStamped(this._stamped.get(line.subject), line.verb === 'IMAGE', line.fields, line.stamps);
          this._stamped.set(line.subject, m.copy);
          fields = m.copy.fields;
          changed = line.verb === 'IMAGE' ? m.copy.fields : m.taken;
          const still = new Set((behind ?? []).filter((f) => !(f in m.taken) && f in m.copy.fields));
          for (const f of m.kept) still.add(f);
          if (m.kept.length > 0) this.stats.keptNewer++;
          behind = still.size > 0 ? [...still] : undefined;
        } else {
          fields = line.verb === 'IMAGE' ? line.fields : { ...before?.fields, ...line.fields };
        }
        const record: SubjectRecord = {
          subject: line.subject, epoch, seq,
          fields,
          status: before?.status === 'STALE' || !before?.status ? 'OK' : before.status,
          server: session.server, continuity, merged: (before?.merged ?? 0) + line.merged - 1, updatedAt: Date.now(),
        };
        if (before?.status === 'STALE') record.status = 'STALE'; // OK comes as its own STATUS line
        if (behind) record.behind = behind;
        this._records.set(line.subject, record);
        const e = this.event(line.verb === 'IMAGE' ? 'image' : 'update', record, changed, continuity, line.merged);
        for (const s of subs) s.deliver(e);
        return;
      }
      case 'STATUS': {
        const subs = this._subs.get(line.subject);
        if (!subs) return;
        const before = this._records.get(line.subject);
        const record: SubjectRecord = before
          ? { ...before, status: line.status, server: session.server, updatedAt: Date.now() }
          : { subject: line.subject, epoch: '', seq: '', fields: {}, status: line.status, server: session.server, continuity: 'continuous', merged: 0, updatedAt: Date.now() };
        this._records.set(line.subject, record);
        const e = this.event('status', record, {}, 'continuous', 1);
        for (const s of subs) s.deliver(e);
        return;
      }
      case 'ACK': {
        const p = this._acks.get(line.id);
        if (!p) return;
        this._acks.delete(line.id);
        for (const w of p.waiters) w.resolve();
        return;
      }
      case 'NACK': {
        const p = this._acks.get(line.id);
        if (!p) return;
        this._acks.delete(line.id);
        this.step('refused', `${p.subject}: NACK ${line.code} ${line.text}`);
        for (const w of p.waiters) w.reject(new PublishError(p.subject, line.code, `${p.subject}: ${line.code} ${line.text}`, line.after));
        return;
      }
      case 'ERR':
        if (line.code === 'UNAVAILABLE') this.step('unavailable', `${line.meta.subject ?? ''}: ${line.text} (retry after ${line.meta.after ?? '?'} ms)`);
        this.emit('error', new PublishError(line.meta.subject ?? '', line.code, `ERR ${line.code} ${line.text}`, Number(line.meta.after ?? 0)));
        return;
      default:
        return;
    }
  }

  private event(type: SubjectEvent['type'], record: SubjectRecord, fields: Fields, continuity: Continuity, merged: number): SubjectEvent {
    return { type, subject: record.subject, epoch: record.epoch, seq: record.seq, fields, status: record.status, continuity, merged, server: record.server, record };
  }

  // ---- choosing -----------------------------------------------------------------------------

  private setTable(t: FarmTable): void {
    if (t === this._table) return;
    this._table = t;
    this.emit('table', t);
  }

  private addressOf(m: FarmServer): string {
    if (this._o.addressOf) return this._o.addressOf(m);
    // A server without TLS has no wss address: with secure on it is not reached (empty address).
    return this._secure ? String(m.wss ?? '') : m.ws;
  }

  private suspect(id: string, url: string): void {
    const until = Date.now() + SUSPECT_MS;
    this._suspected.set(id, until);
    this._suspected.set(url, until);
    this._lastLost = id;
  }

  private isSuspected(key: string): boolean {
    return (this._suspected.get(key) ?? 0) > Date.now();
  }

  private choose(table: FarmTable, excluded: Set<string>) {
    // A server lost moments ago is passed over while the table may not know yet that it is dead;
    // when it is the only candidate, it is still chosen (but never the one lost last, if others remain).
    // Only servers this client has an address for (a server with TLS only has no ws address).
    const reachable = table.servers.filter((m) => this.addressOf(m));
    let candidates = reachable.filter((m) => !excluded.has(m.id) && !this.isSuspected(m.id) && !this.isSuspected(this.addressOf(m)));
    if (candidates.length === 0) {
      candidates = reachable.filter((m) => !excluded.has(m.id) && m.id !== this._lastLost);
      if (candidates.length === 0) candidates = reachable.filter((m) => !excluded.has(m.id));
    }
    return this._selector(candidates, table.version, this._random);
  }
}

function toUrl(address: string): string {
  if (/^wss?:\/\//.test(address)) return address;
  if (/^https?:\/\//.test(address)) return address.replace(/^http/, 'ws').replace(/\/?$/, '/rttp');
  return `ws://${address}/rttp`;
}

function shuffle<T>(a: T[], random: () => number): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
