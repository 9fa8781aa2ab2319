// The operator tokens' authenticator: what it knows without waiting is only what it verified, and a revoke
// forgets it at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import { bearerToken, TokenAuthenticator } from './auth.js';
import { knownBearer } from './tenant-auth.js';

test('a token is known without waiting only once verified, never when invalid, and not after a revoke', async () => {
  const store = openSqliteStore(':memory:');
  const auth = new TokenAuthenticator(store);
  const token = await auth.issue('ops', ['system:masters']);
  assert.equal(auth.known(token), undefined, 'issued but not yet verified by this process');
  assert.deepEqual(await auth.authenticate(token), { name: 'ops', groups: ['system:masters'] });
  assert.deepEqual(auth.known(token), { name: 'ops', groups: ['system:masters'] });
  assert.deepEqual(knownBearer(auth, `Bearer ${token}`), { name: 'ops', groups: ['system:masters'] });

  const forged = 'mpt_' + 'x'.repeat(43);
  assert.equal(await auth.authenticate(forged), undefined);
  assert.equal(auth.known(forged), undefined, 'known to be invalid is not known to be valid');

  await auth.revoke(token);
  assert.equal(auth.known(token), undefined);
  assert.equal(await auth.authenticate(token), undefined);
  await store.close();
});

test('bearerToken: the token of a bearer header, and nothing for anything else', () => {
  const cases: Array<[string, string | undefined]> = [
    ['Bearer abc', 'abc'],
    ['bearer abc', 'abc'],
    ['Bearer   abc  ', 'abc'],
    ['Bearer abc def', undefined],
    ['Basic YWJjOmRlZg==', undefined],
    ['Bearer', undefined],
    ['', undefined],
  ];
  for (const [header, want] of cases) assert.equal(bearerToken(header), want, header);
});
