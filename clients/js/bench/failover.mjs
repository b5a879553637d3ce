// Reconnect time of the JS client: kill -9 of the server a subscriber is on -> the first message
// from another server, over N kills, on a real farm of three `streamfarm node` processes; the
// counterpart of `streamfarm bench failover` for the .NET FarmClient (docs/benchmarks.md).
//   node --experimental-websocket bench/failover.mjs [--runs 10] [--browser]
// --browser runs the subscriber in Chromium (the price grid page at /grid?list=/bench/failover).
import { FarmClient } from '../dist/index.js';
import { LocalFarm } from '../test/support/farm.mjs';

const args = process.argv.slice(2);
const runs = Number(args[args.indexOf('--runs') + 1] || 10) || 10;
const inBrowser = args.includes('--browser');
const farm = await new LocalFarm(3).start();
const SUBJECT = '/bench/failover';

// One publisher pinned to each server (as the .NET bench feeds every server): the same counter to
// each every 1 ms, so the subject stays published whichever server dies.
const pinned = (id) => (c, v) => {
  const m = c.find((s) => s.id === id);
  return m ? { server: m, reason: `${id} (pinned)` } : null;
};
const pubs = farm.ids.map((id) => new FarmClient({ servers: farm.ws(id), name: `bench-pub-${id}`, selector: pinned(id), backoffMaxMs: 200 }));
await Promise.all(pubs.map((p) => p.connect()));
let n = 0;
const feed = setInterval(() => {
  n++;
  for (const p of pubs) if (p.server) p.publish(SUBJECT, { n: String(n) }).catch(() => {});
}, 1);

let events = [];
let current = () => '';
let browser;
if (inBrowser) {
  const { chromium } = await import('playwright-core');
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  const page = await browser.newPage();
  await page.exposeFunction('__bench', (server, type, continuity) => events.push({ at: Date.now(), server, type, continuity }));
  await page.goto(`${farm.http('s1')}/grid?list=${SUBJECT}`);
  await page.waitForFunction(() => globalThis.__grid && globalThis.__grid.updates > 10);
  await page.evaluate(() => globalThis.__grid.client.subscribe('/bench/failover', (e) => globalThis.__bench(e.server, e.type, e.continuity)));
  let server = '';
  setInterval(async () => { server = await page.evaluate(() => globalThis.__grid.client.server).catch(() => server); }, 20).unref();
  current = () => server;
  await new Promise((r) => setTimeout(r, 200));
} else {
  const sub = new FarmClient({ servers: farm.ids.map((id) => farm.ws(id)), name: 'bench-sub' });
  await sub.connect();
  sub.subscribe(SUBJECT, (e) => events.push({ at: Date.now(), server: e.server, type: e.type, continuity: e.continuity }));
  current = () => sub.server;
}

const results = [];
for (let run = 1; run <= runs; run++) {
  const until = Date.now() + 20000;
  while (!(events.length > 5 && Date.now() - events[events.length - 1].at < 50 && current())) {
    if (Date.now() > until) throw new Error('the subscriber is not receiving');
    await new Promise((r) => setTimeout(r, 10));
  }
  const victim = current();
  events = [];
  const killedAt = Date.now();
  farm.kill9(victim);
  while (!events.some((e) => e.server !== victim)) await new Promise((r) => setTimeout(r, 1));
  const first = events.find((e) => e.server !== victim);
  results.push({ ms: first.at - killedAt, victim, type: first.type, continuity: first.continuity, to: first.server });
  process.stderr.write(`run ${run}: killed ${victim}, first message from ${first.server} after ${first.at - killedAt} ms (${first.type}, ${first.continuity})\n`);
  farm.launch(victim);
  await farm.waitActive(farm.ids, 60000);
  while (!pubs.every((p) => p.server)) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 1500)); // past the client's 5 s "lost lately" for the previous victim is not needed: the next victim differs
}

clearInterval(feed);
const ms = results.map((r) => r.ms).sort((a, b) => a - b);
const median = ms.length % 2 ? ms[(ms.length - 1) / 2] : (ms[ms.length / 2 - 1] + ms[ms.length / 2]) / 2;
const by = (label) => results.filter((r) => r.continuity === label).map((r) => r.ms).sort((a, b) => a - b);
const summary = {
  client: inBrowser ? 'JS client in Chromium' : 'JS client in Node', runs: results.length, median, min: ms[0], max: ms[ms.length - 1],
  fresh: by('fresh'), gap: by('gap'), resumed: by('resumed'), firstMessages: results.map((r) => `${r.type}/${r.continuity}`),
};
console.log(JSON.stringify(summary));
await browser?.close();
await Promise.all(pubs.map((p) => p.close()));
await farm.stop();
process.exit(0);
