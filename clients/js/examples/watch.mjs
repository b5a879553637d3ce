// Watches subjects through a farm, printing each connection step and each message.
//   node --experimental-websocket examples/watch.mjs ws://127.0.0.2:7480/rttp /FX/USDEUR /FX/USDGBP
import { FarmClient } from '../dist/index.js';

const [first = 'ws://127.0.0.2:7480/rttp', ...subjects] = process.argv.slice(2);
const client = new FarmClient({ servers: first, name: 'watch-example' });
client.on('step', (s) => console.error(`[${s.kind}] ${s.text}`));
await client.connect();
for await (const e of client.subscribe(subjects.length ? subjects : ['/FX/USDEUR'])) {
  console.log(JSON.stringify({ type: e.type, subject: e.subject, epoch: e.epoch, seq: e.seq, continuity: e.continuity, server: e.server, fields: e.fields }));
}
