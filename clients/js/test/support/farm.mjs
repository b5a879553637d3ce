// A real local farm for the client's farm and browser tests: `streamfarm node` processes from the
// built CLI, each on its own loopback address of a random 127.x.y.0/24 (so that runs, and other
// people's farms on the machine, never collide), with the same ports.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(here, '../../../..');
export const dll = process.env.STREAMFARM_DLL ?? join(repo, 'src/StreamFarm.Cli/bin/Release/net10.0/streamfarm.dll');

export class LocalFarm {
  constructor(count = 3, { logDir = join(repo, 'clients/js/artifacts/logs'), args = [] } = {}) {
    this.subnet = `127.${100 + Math.floor(Math.random() * 150)}.${Math.floor(Math.random() * 250) + 1}`;
    this.key = randomBytes(32).toString('base64');
    this.ids = Array.from({ length: count }, (_, i) => `s${i + 1}`);
    this.procs = new Map();
    this.logDir = logDir;
    this.args = args;
    mkdirSync(logDir, { recursive: true });
  }

  ip(id) {
    return `${this.subnet}.${Number(id.slice(1)) + 1}`;
  }

  ws(id) {
    return `ws://${this.ip(id)}:7480/rttp`;
  }

  http(id) {
    return `http://${this.ip(id)}:7480`;
  }

  async start() {
    for (const id of this.ids) this.launch(id);
    await this.waitActive(this.ids, 60000);
    return this;
  }

  launch(id) {
    const seeds = this.ids.slice(0, 2).map((s) => `${this.ip(s)}:7401`).join(',');
    const argv = [dll, 'node', '--id', id, '--listen', this.ip(id), '--seeds', seeds, '--gossip-key', this.key,
      '--preset', 'local', '--farm-name', `js-${this.subnet.replaceAll('.', '-')}`, '--group', Number(id.slice(1)) % 2 ? 'east' : 'west', ...this.args];
    const log = createWriteStream(join(this.logDir, `${this.subnet}-${id}.log`), { flags: 'a' });
    const p = spawn('dotnet', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout.pipe(log);
    p.stderr.pipe(log);
    this.procs.set(id, p);
    return p;
  }

  /** The farm table as a server's /farm serves it. */
  async table(id) {
    const r = await fetch(`${this.http(id)}/farm`, { signal: AbortSignal.timeout(2000) });
    return r.json();
  }

  /** Waits until every one of `ids` answers and sees all of them active and alive. */
  async waitActive(ids, ms = 30000) {
    const end = Date.now() + ms;
    for (;;) {
      try {
        const tables = await Promise.all(ids.map((id) => this.table(id)));
        if (tables.every((t) => ids.every((id) => t.some((m) => m.id === id && m.state === 'active' && m.liveness === 'alive')))) return;
      } catch {
        // not up yet
      }
      if (Date.now() > end) throw new Error(`farm ${this.subnet} not active in ${ms} ms (logs in ${this.logDir})`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Waits until `seer` sees `id` dead (or gone). */
  async waitDead(id, seer, ms = 30000) {
    const end = Date.now() + ms;
    for (;;) {
      const t = await this.table(seer).catch(() => []);
      const m = t.find((x) => x.id === id);
      if (!m || m.liveness === 'dead') return;
      if (Date.now() > end) throw new Error(`${seer} did not see ${id} dead`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  kill9(id) {
    const p = this.procs.get(id);
    p?.kill('SIGKILL');
    this.procs.delete(id);
  }

  async stop() {
    const waits = [];
    for (const [id, p] of this.procs) {
      waits.push(new Promise((r) => { if (p.exitCode !== null) r(); else p.once('exit', r); }));
      p.kill('SIGTERM');
      setTimeout(() => { if (p.exitCode === null) p.kill('SIGKILL'); }, 5000).unref();
      this.procs.delete(id);
    }
    await Promise.all(waits);
  }
}

/** Publishes `count` price subjects (/PX/P000...) `rate` times a second in total, over one client. */
export function startPricePublisher(client, { count = 200, rate = 400, prefix = '/PX/P' } = {}) {
  const names = Array.from({ length: count }, (_, i) => prefix + String(i).padStart(3, '0'));
  let n = 0;
  let stopped = false;
  const tickMs = 20;
  const perTick = Math.max(1, Math.round((rate * tickMs) / 1000));
  const timer = setInterval(() => {
    if (stopped) return;
    for (let i = 0; i < perTick; i++) {
      const k = n++ % count;
      const bid = (100 + k + Math.sin(n / 50)).toFixed(4);
      client.publish(names[k], { bid, ask: (Number(bid) + 0.02).toFixed(4), n: String(n) }).catch(() => {});
    }
  }, tickMs);
  return { names, published: () => n, stop: () => { stopped = true; clearInterval(timer); } };
}
