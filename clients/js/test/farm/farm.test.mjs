// The client against a real local farm of three `streamfarm node` processes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { FarmClient, selectors } from '../../dist/index.js';
import { LocalFarm, startPricePublisher } from '../support/farm.mjs';

let farm;
before(async () => {
  farm = await new LocalFarm(3).start();
});
after(async () => {
  await farm?.stop();
});

const until = async (cond, ms = 15000, what = 'condition') => {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

function newClient(extra = {}) {
  const c = new FarmClient({ servers: farm.ws('s1'), name: 'js-farm-test', random: selectors.seededRandom(11), ...extra });
  const steps = [];
  c.on('step', (s) => steps.push(`${s.kind}: ${s.text}`));
  return { c, steps };
}

test('twoStepConnect_RealFarm_ChoosesByPolicyAndStreams', async () => {
  // Preferring group west (s2 only) makes the choice certain: the first server s1 is east.
  const { c, steps } = newClient({ group: 'west' });
  await c.connect();
  assert.equal(c.server, 's2');
  assert.deepEqual(steps.slice(0, 5).map((s) => s.split(':')[0]), ['resolved', 'firstServer', 'tableReceived', 'chosen', 'moved']);
  assert.match(steps[3], /^chosen: s2: group west, \d+\/\d+ users, table v\d+ \(power of two choices of 1\); group west; active$/);
  assert.equal(c.table.servers.length, 3);

  const pub = new FarmClient({ servers: farm.ws('s3'), name: 'js-pub', selector: selectors.activeOnly(selectors.random()) });
  await pub.connect();
  await pub.publish('/JS/one', { bid: '1.5', note: 'a b=c' }, { ack: true });
  const sub = c.subscribe('/JS/one');
  const it = sub[Symbol.asyncIterator]();
  const first = (await it.next()).value;
  assert.equal(first.type, 'image');
  assert.deepEqual(first.fields, { bid: '1.5', note: 'a b=c' });
  await pub.publish('/JS/one', { bid: '1.6' }, { ack: true });
  const next = (await it.next()).value;
  assert.equal(next.type, 'update');
  assert.equal(BigInt(next.seq), BigInt(first.seq) + 1n);
  assert.deepEqual(c.record('/JS/one').fields, { bid: '1.6', note: 'a b=c' });
  sub.close();
  await pub.close();
  await c.close();
});

test('kill9_ServingServer_MovesOnWithoutSilentGap', async () => {
  const pub = new FarmClient({ servers: farm.ws('s1'), name: 'js-pub', group: 'east', selector: selectors.preferGroup(selectors.activeOnly(selectors.fewestUsers()), 'east') });
  await pub.connect();
  const feed = startPricePublisher(pub, { count: 20, rate: 200, prefix: '/JS/K' });
  // The subscriber is on s2 (west); the publisher on s1 or s3 (east): killing s2 leaves the feed.
  const { c, steps } = newClient({ group: 'west' });
  await c.connect();
  assert.equal(c.server, 's2');
  const violations = [];
  const last = new Map();
  let afterKill = 0;
  let killedAt = 0;
  c.subscribe(feed.names, (e) => {
    if (e.type === 'status') return;
    const prev = last.get(e.subject);
    if (e.type === 'update' && prev && (prev.epoch !== e.epoch || BigInt(e.seq) !== BigInt(prev.seq) + BigInt(e.merged))) violations.push(`${e.subject} ${prev.epoch}/${prev.seq} -> ${e.epoch}/${e.seq}`);
    last.set(e.subject, { epoch: e.epoch, seq: e.seq });
    if (killedAt && e.server !== 's2') afterKill++;
  });
  await until(() => last.size === 20, 15000, 'every subject');
  killedAt = Date.now();
  farm.kill9('s2');
  await until(() => afterKill > 50, 20000, 'updates from another server');
  assert.notEqual(c.server, 's2');
  assert.deepEqual(violations, [], 'every update follows its predecessor or comes after an image');
  assert.ok(steps.some((s) => s.startsWith('lost: server s2')), steps.join('\n'));
  assert.ok(steps.some((s) => s.startsWith('retried')));
  feed.stop();
  await pub.close();
  await c.close();
  farm.launch('s2');
  await farm.waitActive(farm.ids, 60000);
});
