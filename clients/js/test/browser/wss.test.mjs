// A page served over HTTPS in Debian's Chromium: the price grid connects over secure WebSocket
// (wss) to a node with a certificate from a test CA, by the two-step flow, and shows live values.
// Chromium trusts the test certificate by its key (--ignore-certificate-errors-spki-list), the way
// a machine would trust the test CA; nothing else is relaxed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { FarmClient } from '../../dist/index.js';
import { LocalFarm, dll, startPricePublisher } from '../support/farm.mjs';

let farm, browser, pub, feed, ip;

before(async () => {
  farm = new LocalFarm(1);
  ip = farm.ip('s1');
  const dir = mkdtempSync(join(tmpdir(), 'sf-wss-'));
  execFileSync('dotnet', [dll, 'cert', '--dir', dir, '--name', 's1', '--host', ip], { stdio: 'ignore' });
  farm.args = ['--tls-cert', join(dir, 's1.pem'), '--tls-key', join(dir, 's1-key.pem')];
  await farm.start();
  const spki = execFileSync('bash', ['-c', `openssl x509 -in ${join(dir, 's1.pem')} -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`]).toString().trim();
  pub = new FarmClient({ servers: farm.ws('s1'), name: 'wss-test-feed' });
  await pub.connect();
  feed = startPricePublisher(pub, { count: 50, rate: 200 });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-dev-shm-usage', `--ignore-certificate-errors-spki-list=${spki}`],
  });
});

after(async () => {
  feed?.stop();
  await pub?.close();
  await browser?.close();
  await farm?.stop();
});

test('https page: the grid connects over wss and ticks', async () => {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`https://${ip}:7481/grid`);
  const state = () => page.evaluate(() => {
    const g = globalThis.__grid;
    return g && { updates: g.updates, server: g.client.server, steps: g.steps.map((s) => `${s.kind}: ${s.text}`) };
  });
  const end = Date.now() + 30000;
  while (!((await state())?.updates > 100)) {
    if (Date.now() > end) throw new Error(`the grid did not tick over wss: ${JSON.stringify(await state())}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  const s = await state();
  assert.equal(s.server, 's1');
  assert.ok(s.steps.some((x) => x.startsWith('firstServer:') && x.includes(`wss://${ip}:7481/rttp`)), s.steps.join('\n'));
  assert.ok(!s.steps.some((x) => x.includes(`ws://${ip}:7480`)), 'never over plain ws:\n' + s.steps.join('\n'));
  assert.deepEqual(errors, []);
  await page.close();
});
