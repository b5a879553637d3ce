import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FarmClient, PublishError, selectors } from '../../dist/index.js';
import { FakeFarm, until } from './fake-farm.mjs';

const fewest = selectors.activeOnly(selectors.fewestUsers());

function client(farm, first, extra = {}) {
  const c = new FarmClient({ servers: first, WebSocket: farm.WebSocket, selector: fewest, random: selectors.seededRandom(3), heartbeatTimeoutMs: 400, moveSpreadMs: 10, backoffInitialMs: 5, backoffMaxMs: 20, connectTimeoutMs: 300, ...extra });
  const steps = [];
  c.on('step', (s) => steps.push(`${s.kind}: ${s.text}`));
  return { c, steps };
}

test('connect_TwoSteps_FirstServerTableChosenMakeBeforeBreak', async () => {
  const farm = new FakeFarm();
  const s1 = farm.add('s1', { users: 50 });
  farm.add('s2', { users: 5 });
  const { c, steps } = client(farm, 'ws://s1/rttp');
  await c.connect();
  assert.equal(c.server, 's2');
  const kinds = steps.map((s) => s.split(':')[0]);
  assert.deepEqual(kinds, ['resolved', 'firstServer', 'tableReceived', 'chosen', 'moved']);
  assert.match(steps[3], /chosen: s2: group default, 5\/100 users, table v3 \(fewest users of 2\); active/);
  // make-before-break: the first server's session ended only after the second was welcomed
  assert.deepEqual(farm.log, ['connect ws://s1/rttp', 'connect ws://s2/rttp']);
  await until(() => s1.sockets.size === 0);
  assert.ok(s1.received.some((l) => l.startsWith('BYE')));
  await c.close();
});

test('secure_FirstAddressWss_MovesToTheChosenServersWssAddress', async () => {
  const farm = new FakeFarm();
  farm.add('s1', { users: 50 });
  farm.add('s2', { users: 5 });
  const { c } = client(farm, 'wss://s1/rttp');
  await c.connect();
  assert.equal(c.server, 's2');
  assert.deepEqual(farm.log, ['connect wss://s1/rttp', 'connect wss://s2/rttp']);
  await c.close();
});

test('connect_FirstAddressDown_TriesTheNext', async () => {
  const farm = new FakeFarm();
  farm.add('s1').kill();
  farm.add('s2');
  const { c } = client(farm, ['ws://s1/rttp', 'ws://s2/rttp'], { selector: selectors.activeOnly(selectors.random()) });
  await c.connect();
  assert.ok(['s1', 's2'].includes(c.server) && c.server === 's2');
  await c.close();
});

test('chosen_Refuses_Full_ObeyedAndAnotherChosen', async () => {
  const farm = new FakeFarm();
  farm.add('s1', { users: 50 });
  farm.add('s2', { users: 1 }).refuse = 'FULL';
  farm.add('s3', { users: 10 });
  const { c, steps } = client(farm, 'ws://s1/rttp');
  await c.connect();
  assert.equal(c.server, 's3');
  assert.ok(steps.some((s) => s.startsWith('refused:') && s.includes('FULL')));
  assert.ok(!steps.some((s) => s.startsWith('retried')), 'a refusal is not retried');
  await c.close();
});

test('lost_RetriesSameServerOnce_ThenRediscovers', async () => {
  const farm = new FakeFarm();
  farm.add('s1', { users: 50 });
  const s2 = farm.add('s2', { users: 5 });
  const { c, steps } = client(farm, 'ws://s1/rttp');
  await c.connect();
  steps.length = 0;
  s2.kill();
  await until(() => c.server === 's1');
  const kinds = steps.map((s) => s.split(':')[0]);
  assert.deepEqual(kinds.slice(0, 2), ['lost', 'retried']);
  assert.ok(kinds.indexOf('rediscovered') > kinds.indexOf('failed'));
  // the lost server is passed over while suspected, even though the table still says it is alive
  assert.ok(steps.some((s) => s.startsWith('chosen: s1')));
  await c.close();
});

test('lost_RetrySucceeds_StaysWithoutRediscovery', async () => {
  const farm = new FakeFarm();
  const s1 = farm.add('s1');
  const { c, steps } = client(farm, 'ws://s1/rttp');
  await c.connect();
  steps.length = 0;
  for (const ws of [...s1.sockets]) ws.close(); // the connection drops, the server is still there
  await until(() => steps.some((s) => s.startsWith('retried')) && c.server === 's1');
  assert.ok(!steps.some((s) => s.startsWith('rediscovered')));
  await c.close();
});

test('allDown_BacksOffWithJitter_UntilOneComesBack', async () => {
  const farm = new FakeFarm();
  const s1 = farm.add('s1');
  s1.up = false;
  const { c, steps } = client(farm, 'ws://s1/rttp');
  const connected = c.connect();
  await until(() => steps.filter((s) => s.startsWith('rediscovered')).length >= 3);
  assert.ok(steps.some((s) => /round \d+, waited \d+ ms/.test(s)));
  s1.up = true;
  await connected;
  assert.equal(c.server, 's1');
  await c.close();
});

test('move_Obeyed_ToAnotherServer_MakeBeforeBreak', async () => {
  const farm = new FakeFarm();
  const s1 = farm.add('s1', { users: 1 });
  farm.add('s2', { users: 5 });
  const { c, steps } = client(farm, 'ws://s1/rttp');
  await c.connect();
  assert.equal(c.server, 's1');
  const asked = Date.now();
  s1.push('MOVE DRAINING @after=150');
  await until(() => c.server === 's2');
  assert.ok(Date.now() - asked >= 150, 'waited @after first');
  assert.ok(steps.some((s) => s === 'lost: server s1 asks clients to move: MOVE DRAINING after 150 ms'), steps.join('\n'));
  assert.ok(steps.some((s) => s.startsWith('moved: moved to s2')));
  await c.close();
});

test('heartbeat_SilentServer_TakenAsHung', async () => {
  const farm = new FakeFarm();
  farm.add('s1', { users: 1 });
  farm.add('s2', { users: 5 });
  const { c, steps } = client(farm, 'ws://s1/rttp');
  await c.connect();
  await until(() => steps.some((s) => s.includes('hung')), 2000);
  await c.close();
});

test('keepAlive_PlainPingAnsweredOnlyAfterAQuietSpell_TokenedPingAlways', async () => {
  const farm = new FakeFarm();
  const s1 = farm.add('s1', { users: 1 });
  s1.welcome = 'ping=100 idle=2000'; // a plain PING is answered after min(2000 / 4, 2000 - 2 × 100) = 500 ms without a line out
  const { c } = client(farm, 'ws://s1/rttp', { heartbeatTimeoutMs: 5000 });
  await c.connect();
  const pongs = () => s1.received.filter((l) => l === 'PONG').length;
  s1.push('PING');
  s1.push('PING t1');
  await until(() => s1.received.includes('PONG t1'));
  assert.equal(pongs(), 0, 'it had just sent HELLO: the plain PING needs no answer');
  let pings = 0;
  await until(() => {
    s1.push('PING');
    pings++;
    return pongs() === 1;
  }, 3000);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(pongs(), 1, `one PONG for ${pings} PINGs within the quiet spell`);
  assert.ok(pings > 5);
  await c.close();
});

test('keepAlive_LongSilenceAllowance_AskedOfTheServerInHello', async () => {
  const farm = new FakeFarm();
  const s1 = farm.add('s1', { users: 1 });
  const { c } = client(farm, 'ws://s1/rttp', { heartbeatTimeoutMs: 90000 });
  await c.connect();
  assert.ok(s1.received.some((l) => /^HELLO 1 .* ping=30000 stamps=1$/.test(l)), s1.received.join(' | '));
  await c.close();
  const s2 = new FakeFarm().add('s2', { users: 1 });
  const d = client(s2.farm, 'ws://s2/rttp'); // 400 ms: the server's own interval
  await d.c.connect();
  assert.ok(s2.received.some((l) => l.startsWith('HELLO 1 ') && !l.includes(' ping=')), s2.received.join(' | '));
  await d.c.close();
});

test('farmDeltas_ServerAndFarmDel_Followed', async () => {
  const farm = new FakeFarm();
  farm.add('s1');
  const { c } = client(farm, 'ws://s1/rttp');
  const tables = [];
  c.on('table', (t) => tables.push(t));
  await c.connect();
  farm.delta('SERVER 10 id=s9 group=x state=active liveness=alive users=3 capacity=9 tcp=a:1 ws=ws://s9/rttp http=h');
  await until(() => c.table.servers.some((m) => m.id === 's9'));
  assert.equal(c.table.version, 10);
  farm.delta('SERVER 9 id=s8 group=x state=active liveness=alive users=3 capacity=9 tcp=a:1 ws=ws://s8/rttp http=h'); // older: ignored
  farm.delta('FARMDEL 11 s9');
  await until(() => c.table.version === 11);
  assert.deepEqual(c.table.servers.map((m) => m.id), ['s1']);
  await c.close();
});

test('continuity_AfterMove_ResumedGapFresh_AsTheDotNetClient', async () => {
  const farm = new FakeFarm();
  const s1 = farm.add('s1', { users: 1 });
  const s2 = farm.add('s2', { users: 5 });
  for (const s of [s1, s2]) {
    s.records.set('/R', { epoch: 7, seq: 10, fields: { v: '10' } });
    s.records.set('/G', { epoch: 7, seq: 10, fields: { v: '10' } });
    s.records.set('/F', { epoch: 7, seq: 10, fields: { v: '10' } });
  }
  const { c } = client(farm, 'ws://s1/rttp');
  await c.connect();
  const events = [];
  c.subscribe(['/R', '/G', '/F'], (e) => events.push(e));
  await until(() => events.length === 3);
  assert.deepEqual(events.map((e) => e.continuity), ['continuous', 'continuous', 'continuous']);
  s1.push('UPDATE /R 7 11 v=11');
  await until(() => c.record('/R').seq === '11');
  s2.records.set('/R', { epoch: 7, seq: 11, fields: { v: '11' } });
  s2.records.set('/G', { epoch: 7, seq: 14, fields: { v: '14' } });
  s2.records.set('/F', { epoch: 8, seq: 1, fields: { v: 'new' } });
  events.length = 0;
  s1.kill();
  await until(() => events.length === 3);
  const label = Object.fromEntries(events.map((e) => [e.subject, e.continuity]));
  assert.deepEqual(label, { '/R': 'resumed', '/G': 'gap', '/F': 'fresh' });
  assert.equal(c.record('/F').fields.v, 'new');
  assert.equal(c.record('/G').server, 's2');
  await c.close();
});

test('stamps_AnOlderImageAfterAMove_KeepsTheNewerValues_MarkedBehind_UntilALaterWrite', async () => {
  const farm = new FakeFarm();
  const s1 = farm.add('s1', { users: 1 });
  const s2 = farm.add('s2', { users: 5 });
  s1.records.set('/P', { epoch: 7, seq: 1, meta: '@clr=0 @fts=100,100', fields: { bid: '1.10', ask: '1.20' } });
  const { c } = client(farm, 'ws://s1/rttp');
  await c.connect();
  assert.ok(s1.received.some((l) => l.startsWith('HELLO 1 ') && l.endsWith(' stamps=1')), s1.received.join(' | '));
  const events = [];
  c.subscribe('/P', (e) => events.push(e));
  await until(() => events.length === 1);
  s1.push('UPDATE /P 7 2 @ts=110 bid=1.12 last=1.12');
  await until(() => c.record('/P').seq === '2');

  // Every server that had the writes stamped 110 dies: the next owner's history goes on from 100.
  s2.records.set('/P', { epoch: 9, seq: 1, meta: '@clr=0 @fts=100,100', fields: { bid: '1.10', ask: '1.20' } });
  s1.kill();
  await until(() => events.length === 3);
  assert.equal(events[2].type, 'image');
  assert.equal(events[2].fields.bid, '1.12', 'the image shown keeps the newer value');
  assert.deepEqual(c.record('/P').fields, { bid: '1.12', ask: '1.20', last: '1.12' });
  assert.deepEqual([...c.record('/P').behind].sort(), ['bid', 'last']);
  assert.equal(c.stats.keptNewer, 1);

  // A later write takes its field; the one the farm still lacks stays behind.
  s2.push('UPDATE /P 9 2 @ts=120 bid=1.13');
  await until(() => c.record('/P').seq === '2');
  assert.deepEqual(events[3].fields, { bid: '1.13' });
  assert.equal(c.record('/P').fields.bid, '1.13');
  assert.deepEqual(c.record('/P').behind, ['last']);
  await c.close();
});

test('stamps_Off_TakesTheFarmsLinesAsTheyCome', async () => {
  const farm = new FakeFarm();
  const s1 = farm.add('s1');
  s1.records.set('/P', { epoch: 7, seq: 1, fields: { bid: '1.10' } });
  const { c } = client(farm, 'ws://s1/rttp', { stamps: false });
  await c.connect();
  assert.ok(s1.received.some((l) => l.startsWith('HELLO 1 ') && !l.includes('stamps')), s1.received.join(' | '));
  const events = [];
  c.subscribe('/P', (e) => events.push(e));
  await until(() => events.length === 1);
  s1.push('UPDATE /P 7 2 bid=1.09');
  await until(() => c.record('/P').seq === '2');
  assert.equal(c.record('/P').fields.bid, '1.09');
  assert.equal(c.record('/P').behind, undefined);
  await c.close();
});

test('updates_MergedAccepted_UnexplainedJumpIsAGap', async () => {
  const farm = new FakeFarm();
  const s1 = farm.add('s1');
  s1.records.set('/A', { epoch: 1, seq: 1, fields: { a: '1', b: '1' } });
  const { c } = client(farm, 'ws://s1/rttp');
  await c.connect();
  const events = [];
  c.subscribe('/A', (e) => events.push(e));
  await until(() => events.length === 1);
  s1.push('UPDATE /A 1 4 @merged=3 a=4');
  s1.push('UPDATE /A 1 6 a=6');
  await until(() => events.length === 3);
  assert.deepEqual(events.map((e) => e.continuity), ['continuous', 'continuous', 'gap']);
  assert.deepEqual(c.record('/A').fields, { a: '6', b: '1' });
  assert.equal(c.stats.gaps, 1);
  await c.close();
});

test('status_StaleThenOk_KeptOnTheRecord', async () => {
  const farm = new FakeFarm();
  const s1 = farm.add('s1');
  s1.records.set('/A', { epoch: 1, seq: 1, fields: { a: '1' } });
  const { c } = client(farm, 'ws://s1/rttp');
  await c.connect();
  const sub = c.subscribe('/A');
  const it = sub[Symbol.asyncIterator]();
  assert.equal((await it.next()).value.type, 'image');
  s1.push('STATUS /A STALE');
  assert.equal((await it.next()).value.status, 'STALE');
  assert.equal(c.record('/A').status, 'STALE');
  s1.push('STATUS /A OK');
  await it.next();
  assert.equal(c.record('/A').status, 'OK');
  sub.close();
  await until(() => s1.received.includes('UNSUB /A'));
  await c.close();
});

test('publish_Ack_ResolvesOnAck_RejectsOnNack', async () => {
  const farm = new FakeFarm();
  const s1 = farm.add('s1');
  s1.nack.add('/NO');
  const { c } = client(farm, 'ws://s1/rttp');
  await c.connect();
  await c.publish('/YES', { bid: '1 2' }, { ack: true });
  assert.ok(s1.received.some((l) => /^PUB \/YES @ack=\w+ bid=1\\s2$/.test(l)));
  await assert.rejects(c.publish('/NO', { bid: '1' }, { ack: true }), (e) => e instanceof PublishError && e.code === 'DENIED');
  await c.publish('/IMG', { x: '1' }, { replace: true });
  assert.ok(s1.received.includes('PUBIMAGE /IMG x=1'));
  assert.throws(() => c.publish('bad subject', { a: '1' }), /invalid subject/);
  await c.close();
});

test('publish_UnansweredWhenLost_LatestValueRepublishedOnNextServer', async () => {
  const farm = new FakeFarm();
  const s1 = farm.add('s1', { users: 1 });
  const s2 = farm.add('s2', { users: 5 });
  const { c, steps } = client(farm, 'ws://s1/rttp');
  await c.connect();
  s1.silentAcks = true;
  const p1 = c.publish('/P', { a: '1', b: '1' }, { ack: true });
  const p2 = c.publish('/P', { a: '2' }, { ack: true });
  await until(() => s1.received.filter((l) => l.startsWith('PUB')).length === 2);
  s1.kill();
  await Promise.all([p1, p2]);
  const republished = s2.received.filter((l) => l.startsWith('PUB /P'));
  assert.equal(republished.length, 1);
  assert.match(republished[0], /@ack=\w+ a=2 b=1$/);
  assert.ok(steps.some((s) => s.startsWith('republished: /P: 2 publication(s)')));
  await c.close();
});

test('publishWhileDisconnected_Held_SentOnConnect', async () => {
  const farm = new FakeFarm();
  const s1 = farm.add('s1');
  const { c } = client(farm, 'ws://s1/rttp');
  const p = c.publish('/H', { a: '1' });
  await c.connect();
  await p;
  assert.ok(s1.received.includes('PUB /H a=1'));
  await c.close();
});

test('token_FunctionCalledAtEachConnect_SentInHello', async () => {
  const farm = new FakeFarm();
  const s1 = farm.add('s1');
  let n = 0;
  const { c } = client(farm, 'ws://s1/rttp', { token: async () => `t${++n}`, name: 'page', group: 'g1' });
  await c.connect();
  assert.ok(s1.received.includes('HELLO 1 client=page group=g1 token=t1 stamps=1'));
  await c.close();
});

test('authFailed_IsARefusal_NotRetriedAsUnreachable', async () => {
  const farm = new FakeFarm();
  farm.add('s1').refuse = 'AUTH_FAILED';
  const { c, steps } = client(farm, 'ws://s1/rttp');
  c.connect();
  await until(() => steps.some((s) => s.startsWith('refused:') && s.includes('AUTH_FAILED')));
  await c.close();
});

test('subscribeLate_GetsTheRecordAtOnce_AndOneSubPerSubject', async () => {
  const farm = new FakeFarm();
  const s1 = farm.add('s1');
  s1.records.set('/A', { epoch: 1, seq: 3, fields: { a: '3' } });
  const { c } = client(farm, 'ws://s1/rttp');
  await c.connect();
  const first = [];
  c.subscribe('/A', (e) => first.push(e));
  await until(() => first.length === 1);
  const second = [];
  c.subscribe('/A', (e) => second.push(e));
  assert.equal(second.length, 1);
  assert.equal(second[0].fields.a, '3');
  assert.equal(s1.received.filter((l) => l === 'SUB /A').length, 1);
  await c.close();
});
