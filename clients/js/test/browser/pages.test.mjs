// The pages a node serves, in Debian's Chromium driven by playwright-core, against a real farm of
// three `streamfarm node` processes: the price grid connects by the two-step flow, shows live
// values, and survives kill -9 of its server with no silent gap; the dashboard shows the dead
// server. A screenshot of each page is kept in clients/js/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { FarmClient, selectors } from '../../dist/index.js';
import { LocalFarm, repo, startPricePublisher } from '../support/farm.mjs';

const artifacts = join(repo, 'clients/js/artifacts');
mkdirSync(artifacts, { recursive: true });
let farm, browser, pub, feed;

before(async () => {
  farm = await new LocalFarm(3).start();
  // The publisher stays in group east (s1, s3); the grid is sent to group west (s2), which dies.
  pub = new FarmClient({ servers: farm.ws('s1'), name: 'browser-test-feed', selector: selectors.preferGroup(selectors.activeOnly(selectors.random()), 'east') });
  await pub.connect();
  feed = startPricePublisher(pub, { count: 200, rate: 400 });
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-dev-shm-usage'] });
});

after(async () => {
  feed?.stop();
  await pub?.close();
  await browser?.close();
  await farm?.stop();
});

const until = async (cond, ms, what) => {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

test('grid and dashboard: two-step connect, live values, kill -9 of the grid\'s server', async () => {
  const grid = await browser.newPage({ viewport: { width: 1300, height: 900 } });
  const errors = [];
  grid.on('pageerror', (e) => errors.push(e.message));
  await grid.goto(`${farm.http('s1')}/grid?group=west`);
  const state = () => grid.evaluate(() => {
    const g = globalThis.__grid;
    return g && { server: g.client.server, updates: g.updates, images: g.images, subjects: g.subjects.length, violations: g.violations,
      labels: g.labels, servers: g.servers, lastUpdateAt: g.lastUpdateAt, steps: g.steps.map((s) => `${s.kind}: ${s.text}`), at: g.steps.map((s) => s.at) };
  });
  await until(async () => (await state())?.subjects === 200 && (await state()).updates > 200, 30000, 'the grid to tick');
  const before = await state();

  // The two-step connect: the page's own server first, then the one chosen from the table.
  assert.deepEqual(before.steps.slice(0, 5).map((s) => s.split(':')[0]), ['resolved', 'firstServer', 'tableReceived', 'chosen', 'moved']);
  assert.match(before.steps[1], /^firstServer: first server s1 /);
  assert.match(before.steps[3], /^chosen: s2: group west, .*; group west; active$/);
  assert.equal(before.server, 's2');
  // Live values in the DOM.
  const bid = await grid.locator('.tile[data-subject="/PX/P007"] .bid').textContent();
  assert.match(bid, /^\d+\.\d{4}$/);

  // The dashboard, from another server, sees the farm.
  const dash = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
  dash.on('pageerror', (e) => errors.push(e.message));
  await dash.goto(`${farm.http('s3')}/`);
  await dash.locator('tr[data-server="s2"].alive').waitFor({ timeout: 15000 });
  await dash.locator('#counters td[data-server="s2"][data-counter="max_line"]').filter({ hasText: '16,384' }).waitFor({ timeout: 15000 });

  // kill -9 the grid's server: it moves on, keeps ticking, and no update follows a gap silently.
  const killedAt = Date.now();
  farm.kill9('s2');
  await until(async () => {
    const s = await state();
    return s.server && s.server !== 's2' && Object.entries(s.servers).some(([id, n]) => id !== 's2' && n > 0) && s.lastUpdateAt > killedAt;
  }, 20000, 'updates from another server');
  const firstUpdateMs = (await state()).lastUpdateAt - killedAt;
  await until(async () => (await state()).updates > before.updates + 1000, 20000, 'the grid to keep ticking');
  const afterKill = await state();
  assert.notEqual(afterKill.server, 's2');
  assert.deepEqual(afterKill.violations, [], 'an update that does not follow its predecessor is a silent gap');
  // Every subject came back with an image, labelled resumed, gap or fresh (nothing unlabelled).
  assert.ok(afterKill.images >= 400, `images ${afterKill.images}`);
  assert.equal(afterKill.labels.resumed + afterKill.labels.gap + afterKill.labels.fresh >= 200, true, JSON.stringify(afterKill.labels));
  assert.ok(afterKill.steps.some((s) => s.startsWith('lost: server s2')));
  assert.ok(afterKill.steps.some((s) => s.startsWith('retried: ')));
  console.log(afterKill.steps.map((t, i) => `# ${afterKill.at[i] - killedAt} ms ${t}`).filter((_, i) => afterKill.at[i] >= killedAt).join('\n'));
  console.log(`# grid: kill -9 -> first update from ${afterKill.server} in ${firstUpdateMs} ms; labels ${JSON.stringify(afterKill.labels)}`);

  // The dashboard shows the dead server.
  await dash.locator('tr[data-server="s2"].dead').waitFor({ timeout: 30000 });
  await dash.waitForTimeout(1500); // a few more chart points
  await dash.screenshot({ path: join(artifacts, 'dashboard.png'), fullPage: true });
  await grid.screenshot({ path: join(artifacts, 'grid.png') });
  assert.deepEqual(errors, []);
});
