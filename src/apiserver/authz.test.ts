// The tenant rules of the kube API, as a table: who (a project key, a user key, read-only) asks for what.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide, verbOf, type AccessRequest, type TenantScope } from './authz.js';
import type { StoredObject } from '../kinds/types.js';
import { allKinds } from '../kinds/index.js';

const kind = (plural: string) => {
  const k = allKinds.find((d) => d.plural === plural);
  if (!k) throw new Error(`no kind ${plural}`);
  return k;
};
const ns = (name: string, org?: string): StoredObject =>
  ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, uid: name, resourceVersion: '1', creationTimestamp: '', labels: org ? { 'metalplane.dev/organization': org } : {} } }) as unknown as StoredObject;

const projectKey: TenantScope = { project: 'tenant-a', readOnly: false };
const readOnlyKey: TenantScope = { project: 'tenant-a', readOnly: true };
const userKey: TenantScope = { organizations: ['acme'], readOnly: false };

const cases: Array<{ name: string; scope: TenantScope; req: AccessRequest; ns?: StoredObject; allowed: boolean }> = [
  { name: 'project key lists devices of its project', scope: projectKey, req: { verb: 'list', kind: kind('devices'), namespace: 'tenant-a' }, allowed: true },
  { name: 'project key watches workflows of its project', scope: projectKey, req: { verb: 'watch', kind: kind('workflows'), namespace: 'tenant-a' }, allowed: true },
  { name: 'project key creates a device in its project', scope: projectKey, req: { verb: 'create', kind: kind('devices'), namespace: 'tenant-a' }, allowed: true },
  { name: 'project key patches a device (an action)', scope: projectKey, req: { verb: 'patch', kind: kind('devices'), namespace: 'tenant-a', name: 'web-1' }, allowed: true },
  { name: 'project key lists devices of another project', scope: projectKey, req: { verb: 'list', kind: kind('devices'), namespace: 'tenant-b' }, ns: ns('tenant-b'), allowed: false },
  { name: 'project key reads a device of default', scope: projectKey, req: { verb: 'get', kind: kind('devices'), namespace: 'default', name: 'web-1' }, ns: ns('default'), allowed: false },
  { name: 'project key lists devices of all namespaces', scope: projectKey, req: { verb: 'list', kind: kind('devices') }, allowed: false },
  { name: 'project key writes a workflow (it drives a BMC)', scope: projectKey, req: { verb: 'create', kind: kind('workflows'), namespace: 'tenant-a' }, allowed: false },
  { name: 'project key creates an event', scope: projectKey, req: { verb: 'create', kind: kind('events'), namespace: 'tenant-a' }, allowed: false },
  { name: 'project key reads plans (catalog)', scope: projectKey, req: { verb: 'list', kind: kind('plans') }, allowed: true },
  { name: 'project key writes a plan', scope: projectKey, req: { verb: 'create', kind: kind('plans') }, allowed: false },
  { name: 'project key lists hardware', scope: projectKey, req: { verb: 'list', kind: kind('hardware') }, allowed: false },
  { name: 'project key lists IP addresses', scope: projectKey, req: { verb: 'list', kind: kind('ipaddresses') }, allowed: false },
  { name: 'project key lists API keys', scope: projectKey, req: { verb: 'list', kind: kind('apikeys') }, allowed: false },
  { name: 'project key reads usage records', scope: projectKey, req: { verb: 'list', kind: kind('usagerecords') }, allowed: false },
  { name: 'project key gets its namespace', scope: projectKey, req: { verb: 'get', kind: kind('namespaces'), name: 'tenant-a' }, ns: ns('tenant-a'), allowed: true },
  { name: 'project key gets another namespace', scope: projectKey, req: { verb: 'get', kind: kind('namespaces'), name: 'tenant-b' }, ns: ns('tenant-b'), allowed: false },
  { name: 'project key lists namespaces', scope: projectKey, req: { verb: 'list', kind: kind('namespaces') }, allowed: false },
  { name: 'project key deletes its namespace', scope: projectKey, req: { verb: 'delete', kind: kind('namespaces'), name: 'tenant-a' }, ns: ns('tenant-a'), allowed: false },
  { name: 'read-only key lists devices', scope: readOnlyKey, req: { verb: 'list', kind: kind('devices'), namespace: 'tenant-a' }, allowed: true },
  { name: 'read-only key creates a device', scope: readOnlyKey, req: { verb: 'create', kind: kind('devices'), namespace: 'tenant-a' }, allowed: false },
  { name: 'user key reads a project of its organization', scope: userKey, req: { verb: 'list', kind: kind('devices'), namespace: 'acme-web' }, ns: ns('acme-web', 'acme'), allowed: true },
  { name: 'user key reads a project of another organization', scope: userKey, req: { verb: 'list', kind: kind('devices'), namespace: 'other' }, ns: ns('other', 'other-org'), allowed: false },
  { name: 'user key reads a namespace that does not exist', scope: userKey, req: { verb: 'list', kind: kind('devices'), namespace: 'ghost' }, allowed: false },
  { name: 'user key of the default organization reads a system namespace', scope: { organizations: ['default'], readOnly: false }, req: { verb: 'list', kind: kind('secrets'), namespace: 'metalplane-system' }, ns: ns('metalplane-system'), allowed: false },
  { name: 'user key of the default organization reads default (a project)', scope: { organizations: ['default'], readOnly: false }, req: { verb: 'list', kind: kind('devices'), namespace: 'default' }, ns: ns('default'), allowed: true },
  { name: 'project key of default reads kube-system', scope: { project: 'default', readOnly: false }, req: { verb: 'list', kind: kind('secrets'), namespace: 'kube-system' }, ns: ns('kube-system'), allowed: false },
];

for (const c of cases) {
  test(`authz: ${c.name}`, () => {
    const d = decide(c.scope, c.req, c.ns);
    assert.equal(d.allowed, c.allowed, d.allowed ? 'allowed' : d.reason);
  });
}

test('authz: verbs of requests', () => {
  assert.equal(verbOf('GET', false, true), 'watch');
  assert.equal(verbOf('GET', false, false), 'list');
  assert.equal(verbOf('GET', true, false), 'get');
  assert.equal(verbOf('POST', false, false), 'create');
  assert.equal(verbOf('PATCH', true, false), 'patch');
  assert.equal(verbOf('DELETE', false, false), 'deletecollection');
  assert.equal(verbOf('DELETE', true, false), 'delete');
});
