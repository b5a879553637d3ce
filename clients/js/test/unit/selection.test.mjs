import { test } from 'node:test';
import assert from 'node:assert/strict';
import { selectors } from '../../dist/index.js';

const m = (id, users, extra = {}) => ({ id, group: 'east', state: 'active', liveness: 'alive', users, capacity: 100, tcp: '', ws: `ws://${id}`, http: '', ...extra });
const fixed = (...values) => { let i = 0; return () => values[i++ % values.length]; };

test('fewestUsers_PicksLeastLoaded_ExplainsWhy', () => {
  const c = selectors.fewestUsers()([m('s1', 50), m('s2', 10), m('s3', 30)], 37, Math.random);
  assert.equal(c.server.id, 's2');
  assert.equal(c.reason, 's2: group east, 10/100 users, table v37 (fewest users of 3)');
});

test('fewestUsers_RelativeToCapacity', () => {
  const c = selectors.fewestUsers()([m('s1', 50, { capacity: 1000 }), m('s2', 10)], 1, Math.random);
  assert.equal(c.server.id, 's1');
});

test('powerOfTwoChoices_TakesTheLessLoadedOfTwoSamples', () => {
  const servers = [m('s1', 90), m('s2', 10), m('s3', 50)];
  // samples index 0 then 2: s1 (90) vs s3 (50) -> s3
  assert.equal(selectors.powerOfTwoChoices()(servers, 1, fixed(0.0, 0.9)).server.id, 's3');
  // samples s2 then s1 -> s2
  assert.equal(selectors.powerOfTwoChoices()(servers, 1, fixed(0.4, 0.1)).server.id, 's2');
});

test('random_UsesTheGivenChance', () => {
  const servers = [m('s1', 0), m('s2', 0), m('s3', 0)];
  assert.equal(selectors.random()(servers, 1, fixed(0.5)).server.id, 's2');
  assert.equal(selectors.random()(servers, 1, fixed(0.99)).server.id, 's3');
});

test('activeOnly_FiltersStateAndLiveness_NoneLeftGivesNull', () => {
  const sel = selectors.activeOnly(selectors.fewestUsers());
  const servers = [m('s1', 0, { state: 'draining' }), m('s2', 0, { liveness: 'dead' }), m('s3', 5), m('s4', 1, { state: 'joining' })];
  const c = sel(servers, 2, Math.random);
  assert.equal(c.server.id, 's3');
  assert.equal(c.reason, 's3: group east, 5/100 users, table v2 (fewest users of 1); active');
  assert.equal(sel([m('s1', 0, { liveness: 'suspect' })], 2, Math.random), null);
});

test('preferGroup_WithServers_StaysInGroup; without_SpillsOver', () => {
  const sel = selectors.defaultSelector('west');
  const servers = [m('s1', 0), m('s2', 80, { group: 'west' })];
  const c = sel(servers, 3, selectors.seededRandom(1));
  assert.equal(c.server.id, 's2');
  assert.match(c.reason, /; group west; active$/);
  const dead = [m('s1', 0), m('s2', 0, { group: 'west', liveness: 'dead' })];
  const s = sel(dead, 3, selectors.seededRandom(1));
  assert.equal(s.server.id, 's1');
  assert.match(s.reason, /; no group west server, spilled over; active$/);
});

test('weighted_ByFreeCapacity', () => {
  const servers = [m('s1', 99), m('s2', 0)]; // weights 1 and 100
  assert.equal(selectors.weighted()(servers, 1, fixed(0.005)).server.id, 's1');
  assert.equal(selectors.weighted()(servers, 1, fixed(0.5)).server.id, 's2');
});

test('parseSelector_Names_AsTheCommandLine', () => {
  for (const n of ['random', 'fewest', 'fewest-users', 'p2c', 'power-of-two', 'weighted']) assert.equal(typeof selectors.parseSelector(n), 'function');
  assert.throws(() => selectors.parseSelector('best'), /unknown selection policy/);
});

test('backoffDelay_FullJitter_CappedAndDoubling', () => {
  const table = [[0, 100], [1, 200], [2, 400], [5, 3200], [6, 5000], [40, 5000]];
  for (const [round, cap] of table) {
    assert.equal(selectors.backoffDelay(round, () => 0.999999, 100, 5000) <= cap, true);
    assert.ok(selectors.backoffDelay(round, () => 0.999999, 100, 5000) > cap * 0.99, `round ${round}`);
    assert.equal(selectors.backoffDelay(round, () => 0, 100, 5000), 0);
  }
});

test('seededRandom_SameSeed_SameSequence', () => {
  const a = selectors.seededRandom(42), b = selectors.seededRandom(42);
  for (let i = 0; i < 5; i++) assert.equal(a(), b());
});
