// The Metal API's identity and tenancy through HTTP, every response checked against the spec: the admin token
// as the default user's key, user and project API keys (stored hashed, shown once), read-only keys, projects as
// namespaces (kubectl sees the same ones), organizations, and isolation between projects.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { kubectlOk, startTestServer, type TestServer } from './helpers/server.js';
import { kubectlJson, kubectlSkipReason } from './helpers/kubectl.js';
import { metal } from './helpers/metal.js';

describe('Metal API: identity, keys, projects, organizations', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(async () => {
    await s?.stop();
    s?.cleanup();
  });

  test('no token or a wrong one is a 401 {errors}; X-Consumer-Token is ignored', async () => {
    for (const token of [null, 'nope', 'mpk_' + 'x'.repeat(43)]) {
      const r = await metal(s, 'GET', '/projects', undefined, { token });
      assert.equal(r.status, 401, String(token));
    }
    const ok = await metal(s, 'GET', '/user', undefined, { headers: { 'x-consumer-token': 'anything' } });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.email, 'admin@metalplane.local');
  });

  test('a project created here is a namespace kubectl shows, with its display name kept', { skip: kubectlSkipReason() }, async () => {
    const r = await metal(s, 'POST', '/projects', { name: 'Ünïcode & spaces — prod' });
    assert.equal(r.status, 201);
    assert.equal(r.body.name, 'Ünïcode & spaces — prod');
    const nsList = kubectlJson(s, ['get', 'namespaces', '-o', 'json']);
    const ns = nsList.items.find((n: { metadata: { uid: string } }) => n.metadata.uid === r.body.id);
    assert.ok(ns, 'the project id is the namespace uid');
    assert.match(ns.metadata.name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    assert.equal(ns.metadata.annotations['metalplane.dev/display-name'], 'Ünïcode & spaces — prod');
    // And the other way round: a namespace made with kubectl is a project.
    kubectlOk(s, ['create', 'namespace', 'from-kubectl']);
    const byName = await metal(s, 'GET', '/projects?name=from-kubectl');
    assert.equal(byName.body.projects.length, 1);
    assert.equal(byName.body.meta.total, 1);
  });

  test('project CRUD, paging meta, and a doubled slash', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await metal(s, 'POST', '//projects', { name: `paged-${i}` })).body.id);
    const p1 = await metal(s, 'GET', '/projects?per_page=2&page=1');
    assert.equal(p1.body.projects.length, 2);
    assert.equal(p1.body.meta.current_page, 1);
    assert.ok(p1.body.meta.next?.href.includes('page=2'));
    const last = p1.body.meta.last_page;
    const pl = await metal(s, 'GET', `/projects?per_page=2&page=${last}`);
    assert.equal(pl.body.meta.next, undefined, 'no next on the last page');
    const put = await metal(s, 'PUT', `/projects/${ids[0]}`, { name: 'renamed', tags: ['a'] });
    assert.equal(put.status, 200);
    assert.equal(put.body.name, 'renamed');
    assert.deepEqual(put.body.tags, ['a']);
    assert.equal((await metal(s, 'DELETE', `/projects/${ids[1]}`)).status, 204);
    assert.equal((await metal(s, 'GET', `/projects/${ids[1]}`)).status, 404);
  });

  test('invalid project input is a 422 naming the field; a body that is not JSON is a 4xx', async () => {
    const cases: [string, unknown, number][] = [
      ['missing name', {}, 422],
      ['empty name', { name: '' }, 422],
      ['name too long', { name: 'x'.repeat(81) }, 422],
      ['emoji', { name: 'rocket 🚀' }, 422],
      ['wrong type', { name: 5 }, 422],
      ['bad enum', { name: 'x', type: 'huge' }, 422],
      ['not an object', '[1,2]', 422],
      ['not JSON', '{"name":', 400],
    ];
    for (const [what, body, code] of cases) {
      const r = await metal(s, 'POST', '/projects', body, { headers: typeof body === 'string' ? { 'content-type': 'application/json' } : {} });
      assert.equal(r.status, code, what);
    }
    const bad = await metal(s, 'POST', '/projects', { name: 5 });
    assert.match(bad.body.errors.join(' '), /name/);
  });

  test('user keys and project keys: shown once, stored hashed, scoped, read-only', async () => {
    const a = (await metal(s, 'POST', '/projects', { name: 'tenant-a' })).body.id;
    const b = (await metal(s, 'POST', '/projects', { name: 'tenant-b' })).body.id;
    const ka = await metal(s, 'POST', `/projects/${a}/api-keys`, { description: 'ci of a' });
    assert.equal(ka.status, 201);
    assert.match(ka.body.token, /^mpk_/);
    const kaRo = (await metal(s, 'POST', `/projects/${a}/api-keys`, { description: 'ro', read_only: true })).body.token;
    const list = await metal(s, 'GET', `/projects/${a}/api-keys`);
    assert.equal(list.body.api_keys.length, 2);
    assert.ok(list.body.api_keys.every((k: { token?: string }) => k.token === undefined), 'tokens are never listed');

    // A project key reaches its project only: the other is not found, and lists show one project.
    const mine = await metal(s, 'GET', '/projects', undefined, { token: ka.body.token });
    assert.deepEqual(mine.body.projects.map((p: { id: string }) => p.id), [a]);
    assert.equal((await metal(s, 'GET', `/projects/${b}`, undefined, { token: ka.body.token })).status, 404);
    assert.equal((await metal(s, 'PUT', `/projects/${b}`, { name: 'x' }, { token: ka.body.token })).status, 404);
    assert.equal((await metal(s, 'GET', `/projects/${b}/api-keys`, undefined, { token: ka.body.token })).status, 404);
    assert.equal((await metal(s, 'POST', '/projects', { name: 'sneaky' }, { token: ka.body.token })).status, 403);
    assert.equal((await metal(s, 'GET', '/organizations', undefined, { token: ka.body.token })).status, 403);

    // Read-only keys never write.
    assert.equal((await metal(s, 'GET', `/projects/${a}`, undefined, { token: kaRo })).status, 200);
    assert.equal((await metal(s, 'PUT', `/projects/${a}`, { name: 'x' }, { token: kaRo })).status, 403);

    // User keys: create, use, delete by id (then 401).
    const uk = await metal(s, 'POST', '/user/api-keys', { description: 'laptop' });
    assert.equal(uk.status, 201);
    assert.equal((await metal(s, 'GET', '/user', undefined, { token: uk.body.token })).status, 200);
    const keys = await metal(s, 'GET', '/user/api-keys');
    assert.ok(keys.body.api_keys.some((k: { id: string }) => k.id === uk.body.id));
    assert.equal((await metal(s, 'DELETE', `/user/api-keys/${uk.body.id}`)).status, 204);
    assert.equal((await metal(s, 'GET', '/user', undefined, { token: uk.body.token })).status, 401);
  });

  test('the token is stored only as its hash', { skip: kubectlSkipReason() }, async () => {
    const uk = await metal(s, 'POST', '/user/api-keys', { description: 'hash check' });
    const all = JSON.stringify(kubectlJson(s, ['get', 'apikeys', '-o', 'json']));
    assert.ok(!all.includes(uk.body.token), 'the token is nowhere in the stored objects');
  });

  test('organizations: the default one, its projects, 404 for unknown ids', async () => {
    const orgs = await metal(s, 'GET', '/organizations');
    assert.equal(orgs.status, 200);
    const org = orgs.body.organizations.find((o: { name: string }) => o.name === 'Default Organization');
    assert.ok(org);
    assert.equal((await metal(s, 'GET', `/organizations/${org.id}`)).body.id, org.id);
    const projects = await metal(s, 'GET', `/organizations/${org.id}/projects`);
    assert.ok(projects.body.meta.total >= 1);
    const created = await metal(s, 'POST', `/organizations/${org.id}/projects`, { name: 'via org' });
    assert.equal(created.status, 201);
    assert.equal((await metal(s, 'GET', '/organizations/00000000-0000-0000-0000-000000000000')).status, 404);
    assert.equal((await metal(s, 'GET', '/projects/not-a-uuid')).status, 404);
  });

  test('an operation of the spec that is not implemented is a 501 {errors}, an unknown path a 404', async () => {
    const r = await metal(s, 'GET', '/projects/00000000-0000-0000-0000-000000000000/licenses');
    assert.equal(r.status, 501);
    assert.equal((await metal(s, 'GET', '/no-such-thing')).status, 404);
  });
});
