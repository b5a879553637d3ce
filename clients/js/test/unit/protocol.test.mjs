import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeValue, unescapeValue, parseLine, isSubject, isFieldName, tokenExpiry, mergeStamped } from '../../dist/index.js';

test('escapeValue_FiveBytesAndControls_EscapedAsTheSpecSays', () => {
  const table = [
    ['plain', 'plain'], ['a b', 'a\\sb'], ['back\\slash', 'back\\\\slash'], ['l\nf', 'l\\nf'], ['c\rr', 'c\\rr'],
    ['t\tab', 't\\tab'], ['\x01', '\\x01'], ['\x7f', '\\x7f'], ['a=b/é', 'a=b/é'], ['', ''],
  ];
  for (const [value, wire] of table) {
    assert.equal(escapeValue(value), wire, value);
    assert.equal(unescapeValue(wire), value, wire);
  }
});

test('unescapeValue_InvalidEscapes_Throw', () => {
  for (const bad of ['\\', 'a\\q', '\\x4', '\\x80', '\\xzz']) assert.throws(() => unescapeValue(bad), /bad escape/, bad);
  assert.equal(unescapeValue('\\X'.replace('X', 'x0A')), '\n');
});

test('parseLine_EveryServerVerb_Parsed', () => {
  assert.deepEqual(parseLine('WELCOME 1 server=s1 session=17 maxline=16384 ping=1000 idle=10000'),
    { verb: 'WELCOME', version: 1, server: 's1', session: '17', maxline: 16384, ping: 1000, idle: 10000 });
  const u = parseLine('UPDATE /FX/GBPUSD 1732861234000 42 @merged=3 bid=1.2702 venue=LSE\\sIOB');
  assert.equal(u.verb, 'UPDATE');
  assert.equal(u.epoch, 1732861234000n);
  assert.equal(u.seq, 42n);
  assert.equal(u.merged, 3);
  assert.deepEqual(u.fields, { bid: '1.2702', venue: 'LSE IOB' });
  const i = parseLine('IMAGE /A 18446744073709551615 1');
  assert.equal(i.epoch, 18446744073709551615n);
  assert.deepEqual(i.fields, {});
  assert.deepEqual(parseLine('STATUS /A STALE @reason=owner\\sgone'), { verb: 'STATUS', subject: '/A', status: 'STALE', reason: 'owner gone' });
  assert.deepEqual(parseLine('FARM 7 3'), { verb: 'FARM', version: 7, count: 3 });
  const s = parseLine('SERVER 7 id=s2 group=west state=active liveness=alive users=12 capacity=100 tcp=127.0.0.3:7400 ws=ws://127.0.0.3:7480/rttp http=http://127.0.0.3:7480');
  assert.equal(s.server.id, 's2');
  assert.equal(s.server.users, 12);
  assert.equal(s.server.ws, 'ws://127.0.0.3:7480/rttp');
  assert.deepEqual(parseLine('FARMDEL 8 s3'), { verb: 'FARMDEL', version: 8, id: 's3' });
  assert.deepEqual(parseLine('MOVE DRAINING @server=s2 @after=250'), { verb: 'MOVE', reason: 'DRAINING', server: 's2', after: 250 });
  assert.deepEqual(parseLine('ACK p1'), { verb: 'ACK', id: 'p1' });
  assert.deepEqual(parseLine('NACK p2 UNAVAILABLE @after=100 owner unreachable'), { verb: 'NACK', id: 'p2', code: 'UNAVAILABLE', after: 100, text: 'owner unreachable' });
  assert.deepEqual(parseLine('ERR UNAVAILABLE @subject=/A @after=50 no owner'), { verb: 'ERR', code: 'UNAVAILABLE', meta: { subject: '/A', after: '50' }, text: 'no owner' });
  assert.deepEqual(parseLine('BYE SHUTDOWN server stopping'), { verb: 'BYE', reason: 'SHUTDOWN', text: 'server stopping' });
  assert.deepEqual(parseLine('PING 7'), { verb: 'PING', token: '7' });
  assert.equal(parseLine('NEWVERB x').verb, 'OTHER');
});

test('isSubject_Syntax_AsTheSpecSays', () => {
  for (const ok of ['/FX/GBPUSD', '/a', '/~sys/server/s1', '/x.y:z+w-v_u']) assert.ok(isSubject(ok), ok);
  for (const bad of ['', '/', 'FX', '/FX/', '/a//b', '/a b', '/' + 'x'.repeat(256)]) assert.ok(!isSubject(bad), bad);
  assert.ok(isFieldName('bid.x-1'));
  assert.ok(!isFieldName('1bid'));
});

test('parseLine_AuthOk_GivesTheNewExpiry_AndAuthExpiredIsFatal', () => {
  assert.deepEqual(parseLine('AUTH OK exp=1800000000'), { verb: 'AUTH', ok: true, exp: 1800000000 });
});

test('tokenExpiry_ReadsAJwtsExp_AndGivesZeroForOtherTokens', () => {
  const b64url = (o) => Buffer.from(JSON.stringify(o)).toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const jwt = `${b64url({ alg: 'HS256' })}.${b64url({ sub: 'alice', exp: 1900000123, name: 'Zoë ~~~' })}.sig`;
  assert.equal(tokenExpiry(jwt), 1900000123);
  assert.equal(tokenExpiry('plain-token'), 0);
  assert.equal(tokenExpiry('a.!!!.c'), 0);
  assert.equal(tokenExpiry(undefined), 0);
});

test('parseLine_StampedLines_GiveEveryFieldsStamp', () => {
  const image = parseLine('IMAGE /P 7 3 @clr=90 @fts=100,105 bid=1.10 ask=1.20');
  assert.deepEqual(image.stamps, { clr: 90n, fields: { bid: 100n, ask: 105n } });
  assert.deepEqual(image.fields, { bid: '1.10', ask: '1.20' });
  assert.deepEqual(parseLine('UPDATE /P 7 4 @ts=110 bid=1.11 last=1.11').stamps, { clr: 0n, fields: { bid: 110n, last: 110n } });
  assert.deepEqual(parseLine('UPDATE /P 7 6 @fts=120,118 @merged=2 bid=1.12 ask=1.19').stamps.fields, { bid: 120n, ask: 118n });
  assert.equal(parseLine('UPDATE /P 7 7 bid=1.13').stamps, undefined);
});

test('mergeStamped_NeverTakesAnOlderWrite_KeepsWhatAnImageLacks_UnlessAnImagePublicationRemovedIt', () => {
  const s = (clr, fields) => ({ clr, fields });
  let m = mergeStamped(undefined, true, { bid: '1.10', ask: '1.20' }, s(0n, { bid: 100n, ask: 100n }));
  m = mergeStamped(m.copy, false, { bid: '1.12', last: '1.12' }, s(0n, { bid: 110n, last: 110n }));
  assert.deepEqual(m.taken, { bid: '1.12', last: '1.12' });
  const late = mergeStamped(m.copy, false, { bid: '1.09' }, s(0n, { bid: 103n }));
  assert.deepEqual(late.taken, {});
  assert.deepEqual(late.kept, ['bid']);
  assert.equal(late.copy.fields.bid, '1.12');
  // An older image after a move: bid (older in it) and last (missing) are kept.
  const older = mergeStamped(m.copy, true, { bid: '1.10', ask: '1.20' }, s(0n, { bid: 100n, ask: 100n }));
  assert.deepEqual(older.kept.sort(), ['bid', 'last']);
  assert.deepEqual(older.copy.fields, { bid: '1.12', ask: '1.20', last: '1.12' });
  // A PUBIMAGE at 115 with ask only: bid (110) and last (110) were removed by it.
  const replaced = mergeStamped(m.copy, true, { ask: '1.30' }, s(115n, { ask: 115n }));
  assert.deepEqual(replaced.copy.fields, { ask: '1.30' });
  assert.deepEqual(replaced.kept, []);
  assert.deepEqual(mergeStamped(replaced.copy, false, { bid: '1.11' }, s(0n, { bid: 105n })).taken, {}, 'a late copy of a removed write');
});
