// The price grid page under 10,000 updates/s over 200 subjects, in Chromium, for a minute: frames
// per second, long tasks, JS heap and DOM size, and what the page received, sampled every 5 s;
// then the same page hidden (a background tab) for 20 s, to show that client-side conflation keeps
// its memory flat when nothing renders. A real farm of three `streamfarm node` processes.
//   node --experimental-websocket bench/page.mjs [--rate 10000] [--seconds 60] [--hidden 20] [--servers 3]
import { chromium } from 'playwright-core';
import { FarmClient, selectors } from '../dist/index.js';
import { LocalFarm, startPricePublisher } from '../test/support/farm.mjs';

const arg = (name, d) => { const i = process.argv.indexOf(name); return i > 0 ? Number(process.argv[i + 1]) : d; };
const rate = arg('--rate', 10000), seconds = arg('--seconds', 60), hiddenSeconds = arg('--hidden', 20), servers = arg('--servers', 3);
const farm = await new LocalFarm(servers).start();
const pub = new FarmClient({ servers: farm.ws('s1'), name: 'bench-feed', selector: selectors.activeOnly(selectors.fewestUsers()) });
await pub.connect();
const feed = startPricePublisher(pub, { count: 200, rate });
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--enable-precise-memory-info'] });
const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
const page = await context.newPage();
await page.addInitScript(() => {
  const m = { frames: 0, longTasks: 0, longTaskMs: 0 };
  globalThis.__m = m;
  const tick = () => { m.frames++; requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
  new PerformanceObserver((l) => { for (const e of l.getEntries()) { m.longTasks++; m.longTaskMs += e.duration; } }).observe({ entryTypes: ['longtask'] });
});
const cdp = await context.newCDPSession(page);
await cdp.send('Performance.enable');
await page.goto(`${farm.http(servers > 1 ? 's2' : 's1')}/grid`);
await page.waitForFunction(() => globalThis.__grid?.subjects.length === 200 && globalThis.__grid.updates > 1000, null, { timeout: 60000 });

async function sample() {
  const m = Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((x) => [x.name, x.value]));
  const p = await page.evaluate(() => ({ ...globalThis.__m, updates: globalThis.__grid.updates, events: globalThis.__grid.events, batches: globalThis.__grid.frames, violations: globalThis.__grid.violations.length, hidden: document.hidden, lost: globalThis.__grid.client.stats.lost }));
  return { t: Date.now(), heapMB: m.JSHeapUsedSize / 1048576, nodes: m.Nodes, published: feed.published(), ...p };
}

const rows = [];
let prev = await sample();
const start = prev.t;
const phase = async (name, secs) => {
  for (let i = 0; i < secs / 5; i++) {
    await new Promise((r) => setTimeout(r, 5000));
    const s = await sample();
    const dt = (s.t - prev.t) / 1000;
    rows.push({ phase: name, at: Math.round((s.t - start) / 1000), fps: +((s.frames - prev.frames) / dt).toFixed(1), publishedPerS: Math.round((s.published - prev.published) / dt),
      deliveredPerS: Math.round((s.events - prev.events) / dt), updatesPerS: Math.round((s.updates - prev.updates) / dt),
      renderBatchesPerS: +((s.batches - prev.batches) / dt).toFixed(1), longTasks: s.longTasks - prev.longTasks, longTaskMs: Math.round(s.longTaskMs - prev.longTaskMs),
      heapMB: +s.heapMB.toFixed(1), domNodes: s.nodes, violations: s.violations, hidden: s.hidden, connectionsLost: s.lost });
    process.stderr.write(JSON.stringify(rows[rows.length - 1]) + '\n');
    prev = s;
  }
};
await phase('visible', seconds);
if (hiddenSeconds > 0) {
  // A background tab: another page in front; Chromium stops animation frames for the hidden one.
  const other = await context.newPage();
  await other.goto('about:blank');
  await other.bringToFront();
  await cdp.send('Emulation.setFocusEmulationEnabled', { enabled: false }).catch(() => {});
  await page.evaluate(() => document.dispatchEvent(new Event('visibilitychange')));
  await phase('hidden', hiddenSeconds);
  await page.bringToFront();
  await phase('visible again', 10);
}
const steps = await page.evaluate(() => globalThis.__grid.steps.map((x) => `${new Date(x.at).toISOString().slice(11, 23)} ${x.kind}: ${x.text}`));
console.log(JSON.stringify({ rate, seconds, servers, rows, steps }));
feed.stop();
await browser.close();
await pub.close();
await farm.stop();
process.exit(0);
