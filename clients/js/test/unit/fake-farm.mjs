// An in-memory farm for unit tests: FakeWebSocket speaks RTTP with fake servers, no sockets.
export class FakeFarm {
  constructor() {
    this.servers = new Map();
    this.version = 1;
    this.log = [];
    const farm = this;
    this.WebSocket = class FakeWebSocket {
      constructor(url) {
        this.url = url;
        this.readyState = 0;
        this.server = [...farm.servers.values()].find((s) => s.ws === url || s.wss === url);
        farm.log.push(`connect ${url}`);
        setTimeout(() => this.server && this.server.up ? this.server.accept(this) : this.fail(), 1);
      }
      fail() {
        this.onerror?.({});
        this.onclose?.({ code: 1006 });
      }
      send(text) {
        if (this.readyState !== 1) return;
        for (const line of text.split('\n').filter(Boolean)) this.server.receive(this, line);
      }
      close() {
        if (this.readyState === 3) return;
        this.readyState = 3;
        this.server?.sockets.delete(this);
        this.onclose?.({ code: 1000 });
      }
      deliver(text) {
        if (this.readyState === 1) setTimeout(() => this.readyState === 1 && this.onmessage?.({ data: text }), 0);
      }
    };
  }

  add(id, fields = {}) {
    const s = new FakeServer(this, { id, group: 'default', state: 'active', liveness: 'alive', users: 0, capacity: 100, ...fields });
    this.servers.set(id, s);
    this.version++;
    return s;
  }

  tableLines() {
    const rows = [...this.servers.values()].map((s) => s.line(this.version));
    return [`FARM ${this.version} ${rows.length}`, ...rows];
  }

  /** Sends a delta to every connected socket. */
  delta(line) {
    for (const s of this.servers.values()) for (const ws of s.sockets) ws.deliver(line + '\n');
  }
}

export class FakeServer {
  constructor(farm, member) {
    this.farm = farm;
    this.member = member;
    this.id = member.id;
    this.ws = `ws://${member.id}/rttp`;
    this.wss = `wss://${member.id}/rttp`;
    this.up = true;
    this.refuse = '';
    this.sockets = new Set();
    this.records = new Map(); // subject -> {epoch, seq, fields}
    this.received = [];
    this.nack = new Set();
    this.silentAcks = false;
    this.welcome = 'ping=1000 idle=10000';
  }

  line(version) {
    const m = this.member;
    return `SERVER ${version} id=${m.id} group=${m.group} state=${m.state} liveness=${m.liveness} users=${m.users} capacity=${m.capacity} tcp=${m.id}:7400 ws=${this.ws} http=http://${m.id} wss=${this.wss}`;
  }

  accept(ws) {
    ws.readyState = 1;
    this.sockets.add(ws);
    ws.onopen?.({});
  }

  receive(ws, line) {
    this.received.push(line);
    const [verb, ...args] = line.split(' ');
    if (verb === 'HELLO') {
      if (this.refuse) {
        ws.deliver(`ERR ${this.refuse} @after=100 refused\n`);
        setTimeout(() => ws.close(), 2);
        return;
      }
      ws.deliver([`WELCOME 1 server=${this.id} session=1 maxline=16384 ${this.welcome}`, ...this.farm.tableLines()].join('\n') + '\n');
    } else if (verb === 'SUB') {
      for (const s of args) {
        const r = this.records.get(s);
        ws.deliver(r ? `IMAGE ${s} ${r.epoch} ${r.seq} ${r.meta ? r.meta + ' ' : ''}${Object.entries(r.fields).map(([k, v]) => `${k}=${v}`).join(' ')}\n` : `STATUS ${s} NOT_FOUND\n`);
      }
    } else if (verb === 'PUB') {
      const ack = args.find((a) => a.startsWith('@ack='))?.slice(5);
      if (ack && !this.silentAcks) ws.deliver(this.nack.has(args[0]) ? `NACK ${ack} DENIED no\n` : `ACK ${ack}\n`);
    }
  }

  push(line) {
    for (const ws of this.sockets) ws.deliver(line + '\n');
  }

  /** Like kill -9: every socket drops, new ones fail. */
  kill() {
    this.up = false;
    for (const ws of [...this.sockets]) ws.close();
  }
}

export const until = async (cond, ms = 3000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
};
