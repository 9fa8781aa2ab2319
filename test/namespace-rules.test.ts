// Namespace lifecycle rules an operator hits with kubectl: a main-resource write cannot cut a namespace's
// clean-up short (only /finalize changes spec.finalizers), and cannot change its status (status belongs to the
// status subresource). Regression tests for bugs 1 and 2 of the kind-strategies issue.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { kubectlOk, startTestServer, waitFor, type TestServer } from './helpers/server.js';
import { applyObject, exists, kubectlJson, kubectlSkipReason, waitGone } from './helpers/kubectl.js';

const skip = kubectlSkipReason();

describe('kubectl: namespace finalizers and status are not writable through the main resource', { skip }, () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(async () => {
    await s?.stop();
    s?.cleanup();
  });

  test('patching spec.finalizers of a Terminating namespace does not delete it while its content is held', async () => {
    kubectlOk(s, ['create', 'namespace', 'victim']);
    applyObject(s, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'held', namespace: 'victim', finalizers: ['example.com/hold'] }, data: { a: '1' } });
    kubectlOk(s, ['delete', 'namespace', 'victim', '--wait=false']);
    await waitFor('the namespace controller to report the held content', () => {
      const ns = kubectlJson(s, ['get', 'namespace', 'victim', '-o', 'json']);
      const c = (ns.status?.conditions ?? []).find((x: { type: string }) => x.type === 'NamespaceFinalizersRemaining');
      return c?.status === 'True' ? true : undefined;
    });

    kubectlOk(s, ['patch', 'ns', 'victim', '--type=merge', '-p', '{"spec":{"finalizers":[]}}']);
    const ns = kubectlJson(s, ['get', 'namespace', 'victim', '-o', 'json']);
    assert.deepEqual(ns.spec.finalizers, ['kubernetes'], 'spec.finalizers is unchanged by a main-resource patch');
    assert.equal(ns.status.phase, 'Terminating');
    assert.ok(exists(s, ['configmap', 'held', '-n', 'victim']), 'the held ConfigMap is still there, in a namespace that still exists');

    // Releasing the content lets the namespace finish, through the namespace controller's /finalize.
    kubectlOk(s, ['patch', 'configmap', 'held', '-n', 'victim', '--type=merge', '-p', '{"metadata":{"finalizers":null}}']);
    await waitGone(s, ['namespace', 'victim']);
    assert.equal(exists(s, ['configmap', 'held', '-n', 'victim']), false);
  });

  test('patching status.phase of a live namespace leaves it Active', async () => {
    kubectlOk(s, ['create', 'namespace', 'live']);
    kubectlOk(s, ['patch', 'ns', 'live', '--type=merge', '-p', '{"status":{"phase":"Terminating"}}']);
    const ns = kubectlJson(s, ['get', 'namespace', 'live', '-o', 'json']);
    assert.equal(ns.status.phase, 'Active');
    assert.equal(ns.metadata.deletionTimestamp, undefined);
    // New content can still be created in it.
    kubectlOk(s, ['create', 'configmap', 'still-works', '-n', 'live', '--from-literal=a=1']);
    // And the status subresource is where status is written.
    kubectlOk(s, ['patch', 'ns', 'live', '--subresource=status', '--type=merge', '-p', '{"status":{"conditions":[{"type":"Example","status":"True","reason":"Test","message":"written through /status","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}']);
    const after = kubectlJson(s, ['get', 'namespace', 'live', '-o', 'json']);
    assert.equal(after.status.conditions?.[0]?.type, 'Example');
  });
});
