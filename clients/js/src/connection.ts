// One RTTP session over one WebSocket: HELLO, WELCOME and the farm table, then lines in and out.
// It keeps the farm table current (FARM blocks, SERVER and FARMDEL deltas) and answers PING; the
// FarmClient decides what to do with everything else.
import { type FarmServer, type ServerLine, helloLine, parseLine, splitLines, escapeValue, tokenExpiry, quietPongAfter, FATAL_CODES } from './protocol.js';

/** The WebSocket constructor to use (the global one in browsers and Node 22+). */
export type WebSocketLike = new (url: string) => WebSocket;

/** The farm table as a server sent it. */
export interface FarmTable {
  version: number;
  /** Servers in id order. */
  servers: FarmServer[];
}

/** A connect that failed: `code` is the server's refusal (FULL, DRAINING, AUTH_FAILED...), '' when unreachable. */
export class ConnectError extends Error {
  constructor(message: string, readonly code: string = '', readonly after = 0) {
    super(message);
    this.name = 'ConnectError';
  }
}

export interface SessionOptions {
  client: string;
  group?: string;
  token?: string;
  /** Gives a new token before the one in use (a JWT) expires: sent in the session as `AUTH token=...`. */
  renewToken?: () => Promise<string>;
  /** Renew this many ms before the token's `exp` (at most half its remaining life). */
  renewBeforeMs?: number;
  user?: string;
  password?: string;
  connectTimeoutMs: number;
  /** The keep-alive interval asked of the server (HELLO `ping=`); the server's own when absent. */
  keepAliveMs?: number;
  /** Ask for the writes' stamps on record lines (HELLO `stamps=1`). */
  stamps?: boolean;
  WebSocket: WebSocketLike;
}

/** How a session ended. */
export interface SessionEnd {
  why: string;
  code?: string;
}

export class RttpSession {
  server = '';
  ping = 1000;
  lastReceived = Date.now();
  /** When a line was last queued (ms); a plain PING is answered only once this is quietPongMs old. */
  lastSent = Date.now();
  /** From WELCOME's ping= and idle= (quietPongAfter); 0 (answer every PING) until then. */
  quietPongMs = 0;
  table: FarmTable = { version: 0, servers: [] };
  /** Data lines after the WELCOME and table (IMAGE, UPDATE, STATUS, ACK, NACK, ERR, MOVE, BYE). */
  onLine: (line: ServerLine) => void = () => {};
  onTable: (table: FarmTable) => void = () => {};
  onEnd: (end: SessionEnd) => void = () => {};
  private readonly _ws: WebSocket;
  private _out: string[] = [];
  private _block: FarmServer[] | null = null;
  private _blockVersion = 0;
  private _blockCount = 0;
  private _ended = false;
  private _renewal: ReturnType<typeof setTimeout> | undefined;
  private _opts: SessionOptions | undefined;
  /** Token renewals the server took (`AUTH OK`). */
  renewals = 0;

  private constructor(readonly url: string, ws: WebSocket) {
    this._ws = ws;
  }

  /** Sets the timer that renews a signed token before `exp` (seconds since 1970). */
  private scheduleRenewal(exp: number): void {
    const opts = this._opts;
    if (!opts?.renewToken || exp <= 0 || this._ended) return;
    clearTimeout(this._renewal);
    const left = exp * 1000 - Date.now();
    const due = left - Math.min(opts.renewBeforeMs ?? 30_000, left / 2);
    this._renewal = setTimeout(() => {
      opts.renewToken!().then(
        (token) => this.send('AUTH token=' + escapeValue(token)),
        () => {}, // no new token: the session ends at exp with AUTH_EXPIRED
      );
    }, Math.max(0, due));
  }

  /** Opens a session; resolves once WELCOME and the whole farm table arrived. */
  static open(url: string, opts: SessionOptions): Promise<RttpSession> {
    return new Promise((resolve, reject) => {
      let ws: WebSocket;
      try {
        ws = new opts.WebSocket(url);
      } catch (e) {
        reject(new ConnectError(`${url}: ${(e as Error).message}`));
        return;
      }
      const s = new RttpSession(url, ws);
      s._opts = opts;
      let welcomed = false;
      let settled = false;
      const fail = (e: ConnectError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        s.end({ why: e.message, code: e.code });
        reject(e);
      };
      const timer = setTimeout(() => fail(new ConnectError(`${url}: no WELCOME within ${opts.connectTimeoutMs} ms`)), opts.connectTimeoutMs);
      ws.onopen = () => s.send(helloLine(opts));
      ws.onerror = () => fail(new ConnectError(`${url}: cannot connect`));
      ws.onclose = (ev) => {
        if (!settled) fail(new ConnectError(`${url}: closed before WELCOME (${ev.code})`));
        else s.end({ why: 'connection closed' });
      };
      ws.onmessage = (ev) => {
        if (typeof ev.data !== 'string') return;
        s.lastReceived = Date.now();
        for (const text of splitLines(ev.data)) {
          let line: ServerLine;
          try {
            line = parseLine(text);
          } catch (e) {
            s.onLine({ verb: 'ERR', code: 'CLIENT_PARSE', meta: {}, text: `${(e as Error).message}: ${text.slice(0, 200)}` });
            continue;
          }
          if (settled) {
            s.handle(line);
            continue;
          }
          if (line.verb === 'WELCOME') {
            s.server = line.server;
            s.ping = line.ping;
            s.quietPongMs = quietPongAfter(line.ping, line.idle);
            welcomed = true;
          } else if (line.verb === 'ERR' && FATAL_CODES.has(line.code)) {
            fail(new ConnectError(`${url}: ${line.code} ${line.text}`.trim(), line.code, Number(line.meta.after ?? 0)));
            return;
          } else if (line.verb === 'BYE') {
            fail(new ConnectError(`${url}: BYE ${line.reason} ${line.text}`.trim(), line.reason));
            return;
          } else if (line.verb === 'MOVE') {
            fail(new ConnectError(`${url}: MOVE ${line.reason}`, line.reason));
            return;
          } else {
            s.handle(line);
          }
          if (welcomed && s.table.version > 0 && s._block === null) {
            settled = true;
            clearTimeout(timer);
            s.scheduleRenewal(tokenExpiry(opts.token));
            resolve(s);
          }
        }
      };
    });
  }

  /** Queues a line; lines queued in one turn go out as one WebSocket message. */
  send(line: string): void {
    if (this._ended) return;
    this.lastSent = Date.now();
    this._out.push(line);
    if (this._out.length === 1) queueMicrotask(() => this.flush());
  }

  private flush(): void {
    if (this._out.length === 0 || this._ended) return;
    const text = this._out.join('\n') + '\n';
    this._out = [];
    try {
      this._ws.send(text);
    } catch (e) {
      this.end({ why: `send failed: ${(e as Error).message}` });
    }
  }

  /** Milliseconds since the last line arrived. */
  get silence(): number {
    return Date.now() - this.lastReceived;
  }

  get ended(): boolean {
    return this._ended;
  }

  /** Says goodbye and closes. */
  close(reason = 'client closing'): void {
    if (this._ended) return;
    this.send('BYE ' + reason.replace(/\s+/g, ' '));
    this.flush();
    this.end({ why: reason });
  }

  /** Ends the session once: closes the socket and tells the owner. */
  end(end: SessionEnd): void {
    if (this._ended) return;
    this._ended = true;
    clearTimeout(this._renewal);
    this._ws.onmessage = null;
    this._ws.onclose = null;
    this._ws.onerror = () => {};
    try {
      this._ws.close();
    } catch {
      // already closed
    }
    this.onEnd(end);
  }

  private handle(line: ServerLine): void {
    switch (line.verb) {
      case 'PING':
        // A token means the server waits for this answer. A plain PING is the server's keep-alive:
        // it needs to hear from this end within its idle timeout, not once per PING
        // (docs/protocol.md, "Keep-alive").
        if (line.token) {
          this.send('PONG ' + line.token);
          return;
        }
        if (Date.now() - this.lastSent >= this.quietPongMs) this.send('PONG');
        return;
      case 'PONG':
        return;
      case 'AUTH':
        if (line.ok) {
          this.renewals++;
          this.scheduleRenewal(line.exp);
        }
        return;
      case 'FARM':
        this._block = [];
        this._blockVersion = line.version;
        this._blockCount = line.count;
        if (line.count === 0) this.completeBlock();
        return;
      case 'SERVER':
        if (this._block) {
          this._block.push(line.server);
          if (this._block.length >= this._blockCount) this.completeBlock();
        } else if (line.version >= this.table.version) {
          // a delta: insert or replace (a version out of order is older news: ignored)
          this.setTable(line.version, [...this.table.servers.filter((m) => m.id !== line.server.id), line.server]);
        }
        return;
      case 'FARMDEL':
        if (line.version >= this.table.version) this.setTable(line.version, this.table.servers.filter((m) => m.id !== line.id));
        return;
      case 'BYE':
        this.onLine(line);
        this.end({ why: `BYE ${line.reason} ${line.text}`.trim(), code: line.reason });
        return;
      case 'ERR':
        this.onLine(line);
        if (FATAL_CODES.has(line.code)) this.end({ why: `ERR ${line.code} ${line.text}`.trim(), code: line.code });
        return;
      default:
        this.onLine(line);
    }
  }

  private completeBlock(): void {
    const servers = this._block ?? [];
    this._block = null;
    this.setTable(this._blockVersion, servers);
  }

  private setTable(version: number, servers: FarmServer[]): void {
    servers.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    this.table = { version, servers };
    this.onTable(this.table);
  }
}
