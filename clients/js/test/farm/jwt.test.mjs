// The client with signed tokens against a real node with auth.jwt: a token function that hands out
// short-lived JWTs (6 s) keeps the session alive by renewing in the session (AUTH token=...), and
// publications after the first token's expiry still go through.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FarmClient } from '../../dist/index.js';
import { LocalFarm } from '../support/farm.mjs';

const secret = randomBytes(32);
const b64url = (b) => Buffer.from(b).toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const dir = mkdtempSync(join(tmpdir(), 'sf-js-jwt-'));
writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [{ kty: 'oct', kid: 'k1', alg: 'HS256', k: b64url(secret) }] }));
writeFileSync(join(dir, 'config.json'), JSON.stringify({ auth: { jwt: { jwksFile: join(dir, 'jwks.json'), audience: 'js-test', clockSkew: '00:00:00' } } }));

function jwt(lifetimeSeconds) {
  const now = Math.floor(Date.now() / 1000);
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: 'k1' }));
  const body = b64url(JSON.stringify({ sub: 'js-user', aud: 'js-test', nbf: now - 60, exp: now + lifetimeSeconds, subscribe: ['/JWT/>'], publish: ['/JWT/>'] }));
  return `${head}.${body}.${b64url(createHmac('sha256', secret).update(`${head}.${body}`).digest())}`;
}

let farm;
before(async () => {
  farm = await new LocalFarm(1, { args: ['--config', join(dir, 'config.json')] }).start();
});
after(async () => {
  await farm?.stop();
});

test('tokenFunction_ShortLivedJwts_RenewedInTheSession_OutlivesTheFirstToken', { timeout: 60000 }, async () => {
  let issued = 0;
  const c = new FarmClient({ servers: farm.ws('s1'), name: 'js-jwt', token: () => { issued++; return jwt(6); } });
  const steps = [];
  c.on('step', (s) => steps.push(`${s.kind}: ${s.text}`));
  await c.connect();
  try {
    await c.publish('/JWT/x', { n: '1' }, { ack: true });
    const sub = c.subscribe('/JWT/x');
    const it = sub[Symbol.asyncIterator]();
    assert.equal((await it.next()).value.fields.n, '1');
    await new Promise((r) => setTimeout(r, 13000)); // past the first token's exp (6 s) and the second's
    await c.publish('/JWT/x', { n: '2' }, { ack: true });
    assert.equal((await it.next()).value.fields.n, '2');
    assert.ok(issued >= 3, `the token function was asked ${issued} time(s)`);
    assert.ok(!steps.some((s) => s.includes('AUTH_EXPIRED')), steps.join('\n'));
    sub.close();
  } finally {
    await c.close();
  }
});
