import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Subscription, conflate } from '../../dist/index.js';

const ev = (type, seq, fields, extra = {}) => ({ type, subject: '/A', epoch: '1', seq: String(seq), fields, status: 'OK', continuity: 'continuous', merged: 1, server: 's1', record: {}, ...extra });

test('conflate_Updates_LatestFieldsLatestSeqCountsMerged', () => {
  const c = conflate(ev('update', 2, { bid: '1', ask: '2' }), ev('update', 3, { bid: '5' }));
  assert.deepEqual(c.fields, { bid: '5', ask: '2' });
  assert.equal(c.seq, '3');
  assert.equal(c.merged, 2);
  assert.equal(c.type, 'update');
});

test('conflate_ImageThenUpdate_StaysAnImageWithItsLabel', () => {
  const c = conflate(ev('image', 5, { bid: '1', ask: '2' }, { continuity: 'gap' }), ev('update', 6, { bid: '3' }));
  assert.equal(c.type, 'image');
  assert.equal(c.continuity, 'gap');
  assert.deepEqual(c.fields, { bid: '3', ask: '2' });
});

test('iterator_ReaderBehind_HoldsOneEventPerSubject', async () => {
  const sub = new Subscription(['/A', '/B'], undefined, 'each', () => {}, () => {});
  for (let i = 1; i <= 1000; i++) {
    sub.deliver(ev('update', i, { n: String(i) }));
    sub.deliver(ev('update', i, { n: String(i) }, { subject: '/B' }));
  }
  assert.equal(sub.pending, 2);
  assert.equal(sub.conflated, 1998);
  const it = sub[Symbol.asyncIterator]();
  const a = (await it.next()).value;
  assert.equal(a.seq, '1000');
  assert.equal(a.merged, 1000);
  assert.equal(a.fields.n, '1000');
  await it.return();
  assert.ok(sub.closed);
  assert.equal((await it.next()).done, true);
});

test('frameDelivery_Batches_OnePerSubject', async () => {
  const batches = [];
  const sub = new Subscription(['/A'], (b) => batches.push(b), 'frame', () => {}, () => {});
  for (let i = 1; i <= 50; i++) sub.deliver(ev('update', i, { n: String(i) }));
  await new Promise((r) => setTimeout(r, 40));
  assert.equal(batches.length, 1);
  assert.equal(batches[0].length, 1);
  assert.equal(batches[0][0].merged, 50);
});

test('callback_Throws_ReportedNotPropagated', () => {
  const errors = [];
  const sub = new Subscription(['/A'], () => { throw new Error('boom'); }, 'each', () => {}, (e) => errors.push(e));
  sub.deliver(ev('update', 1, {}));
  assert.equal(errors.length, 1);
});
