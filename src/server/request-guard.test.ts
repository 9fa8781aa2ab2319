// The request guard asks for each API request's user once: from `known` when the credential is verified already,
// else from `authenticate`, never `known` twice (a Metal API key's token is hashed on every ask).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import type { User } from '../apiserver/auth.js';
import { ApiError } from '../lib/errors.js';
import { installRequestGuard } from './request-guard.js';

async function guarded(knownUser: User | undefined): Promise<{ inject: (method: 'GET' | 'POST', token: string) => Promise<{ status: number; body: string }>; calls: { known: number; authenticate: number } }> {
  const calls = { known: 0, authenticate: 0 };
  const app = Fastify();
  installRequestGuard(app, {
    authenticate: async (req) => {
      calls.authenticate++;
      if (req.headers.authorization !== 'Bearer good') throw ApiError.unauthorized('Unauthorized: token is not valid');
      return { name: 'alice', groups: [] };
    },
    known: () => {
      calls.known++;
      return knownUser;
    },
    isApiPath: (path) => path.startsWith('/api/'),
    credentials: [],
    maxBodyBytesPerPeer: 1 << 20,
    bodyLimit: 1 << 16,
    isExemptPeer: () => false,
    onRefused: () => {},
  });
  app.get('/api/thing', async (req) => ({ user: req.user?.name }));
  app.post('/api/thing', async (req) => ({ user: req.user?.name }));
  await app.ready();
  return {
    calls,
    inject: async (method, token) => {
      const res = await app.inject({ method, url: '/api/thing', headers: { authorization: `Bearer ${token}`, ...(method === 'POST' ? { 'content-type': 'application/json' } : {}) }, ...(method === 'POST' ? { payload: '{}' } : {}) });
      return { status: res.statusCode, body: res.body };
    },
  };
}

for (const method of ['GET', 'POST'] as const) {
  test(`${method}: a credential not known yet is asked of known once, then authenticated once`, async () => {
    const g = await guarded(undefined);
    const ok = await g.inject(method, 'good');
    assert.equal(ok.status, 200, ok.body);
    assert.deepEqual(JSON.parse(ok.body), { user: 'alice' });
    assert.deepEqual(g.calls, { known: 1, authenticate: 1 });
    const bad = await g.inject(method, 'bad');
    assert.equal(bad.status, 401, bad.body);
    assert.deepEqual(g.calls, { known: 2, authenticate: 2 });
  });

  test(`${method}: a known credential is not authenticated again`, async () => {
    const g = await guarded({ name: 'bob', groups: [] });
    const ok = await g.inject(method, 'anything');
    assert.equal(ok.status, 200, ok.body);
    assert.deepEqual(JSON.parse(ok.body), { user: 'bob' });
    assert.deepEqual(g.calls, { known: 1, authenticate: 0 });
  });
}
