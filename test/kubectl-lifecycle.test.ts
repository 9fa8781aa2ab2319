// kubectl compatibility, part 3: lifecycles over time. Watch (`get -w`), `kubectl wait` (condition, jsonpath,
// delete), finalizers, ownerReferences garbage collection (background, foreground, orphan) and namespace
// deletion. Drives the real kubectl against a real `metalplane up` (one server for the file).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { kubectl, kubectlOk, startTestServer, waitFor, type TestServer } from './helpers/server.js';
import { applyObject, background, createObject, exists, kubectlFails, kubectlJson, kubectlSkipReason, waitGone, type Background } from './helpers/kubectl.js';

const skip = kubectlSkipReason();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const plan = (name: string) => ({
  apiVersion: 'metalplane.dev/v1alpha1',
  kind: 'Plan',
  metadata: { name },
  spec: { specs: { memory: { total: '8GB' } }, pricing: { hour: 0.1 } },
});

describe('kubectl: watch, wait, finalizers, garbage collection, namespace deletion', { skip }, () => {
  let s: TestServer;
  const running: Background[] = [];
  const bg = (args: string[]): Background => {
    const b = background(s, args);
    running.push(b);
    return b;
  };
  before(async () => {
    s = await startTestServer();
    for (const ns of ['watch', 'wait', 'fin', 'gc']) kubectlOk(s, ['create', 'namespace', ns]);
  });
  after(async () => {
    await Promise.all(running.map((b) => b.stop()));
    await s?.stop();
    s?.cleanup();
  });

  test('kubectl get -w prints the initial list, then rows for adds, changes and deletes', async () => {
    kubectlOk(s, ['create', 'configmap', 'before', '-n', 'watch', '--from-literal=a=1']);
    const w = bg(['get', 'configmaps', '-n', 'watch', '-w']);
    await w.waitForOutput(/^before\s+1\s+\d+s$/m);
    assert.match(w.output(), /^NAME\s+DATA\s+AGE$/m);

    kubectlOk(s, ['create', 'configmap', 'during', '-n', 'watch', '--from-literal=a=1']);
    await w.waitForOutput(/^during\s+1\s+\d+s$/m);
    kubectlOk(s, ['patch', 'cm', 'during', '-n', 'watch', '--type', 'merge', '-p', '{"data":{"b":"2","c":"3"}}']);
    await w.waitForOutput(/^during\s+3\s+\d+s$/m);
    assert.ok(w.running(), 'kubectl get -w keeps watching');
    await w.stop();

    // With --output-watch-events the event types show, and -o name / jsonpath work on the stream.
    const ev = bg(['get', 'configmaps', '-n', 'watch', '-w', '--output-watch-events', '--watch-only', '-v=6']);
    await ev.watchOpen();
    kubectlOk(s, ['label', 'cm', 'before', '-n', 'watch', 'x=y']);
    await ev.waitForOutput(/^MODIFIED\s+before\s+1\s/m);
    kubectlOk(s, ['delete', 'cm', 'during', '-n', 'watch']);
    await ev.waitForOutput(/^DELETED\s+during\s+3\s/m);
    assert.doesNotMatch(ev.output(), /ADDED/, '--watch-only prints no initial list');
    await ev.stop();

    // Watching a metalplane kind, one object by name.
    kubectlOk(s, ['apply', '-f', '-'], JSON.stringify(plan('w1.test.x86')));
    const pw = bg(['get', 'plan', 'w1.test.x86', '-w', '-o', 'jsonpath={.spec.pricing.hour}{"\\n"}']);
    await pw.waitForOutput(/^0\.1$/m);
    kubectlOk(s, ['patch', 'plan', 'w1.test.x86', '--type', 'merge', '-p', '{"spec":{"pricing":{"hour":0.2}}}']);
    await pw.waitForOutput(/^0\.2$/m);
    await pw.stop();
  });

  test('kubectl wait --for=condition on a condition set through the status subresource', async () => {
    kubectlOk(s, ['apply', '-f', '-'], JSON.stringify(plan('wait.test.x86')));
    const w = bg(['wait', 'plan/wait.test.x86', '--for=condition=Ready', '--timeout=30s']);
    await sleep(1500);
    assert.ok(w.running(), `kubectl wait must block until the condition holds: ${w.output()}`);

    // A plain patch cannot touch status on a kind with a status subresource…
    kubectlOk(s, ['patch', 'plan', 'wait.test.x86', '--type', 'merge', '-p', '{"status":{"conditions":[{"type":"Ready","status":"True","reason":"Test","message":"via main resource"}]}}']);
    assert.equal(kubectlJson(s, ['get', 'plan', 'wait.test.x86']).status?.conditions, undefined);
    await sleep(300);
    assert.ok(w.running(), 'status written through the main resource is ignored');

    // …the status subresource can.
    const condition = { type: 'Ready', status: 'True', reason: 'Checked', message: 'checked by the test', lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') };
    const patched = kubectlOk(s, ['patch', 'plan', 'wait.test.x86', '--subresource=status', '--type', 'merge', '-p', JSON.stringify({ status: { conditions: [condition] } })]);
    assert.equal(patched.trim(), 'plan.metalplane.dev/wait.test.x86 patched');
    const r = await w.done;
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'plan.metalplane.dev/wait.test.x86 condition met');
    const p = kubectlJson(s, ['get', 'plan', 'wait.test.x86']);
    assert.equal(p.status.conditions[0].reason, 'Checked');
    assert.equal(p.metadata.generation, 1, 'a status write does not bump generation');

    // Already true: returns at once. A condition that never comes: times out with exit 1.
    assert.match(kubectlOk(s, ['wait', 'plan/wait.test.x86', '--for=condition=Ready', '--timeout=10s']), /condition met/);
    const t = kubectl(s, ['wait', 'plan/wait.test.x86', '--for=condition=Ready=False', '--timeout=2s']);
    assert.equal(t.status, 1);
    assert.match(t.stderr, /timed out waiting for the condition/);
  });

  test('kubectl wait --for=jsonpath', async () => {
    kubectlOk(s, ['create', 'configmap', 'jp', '-n', 'wait', '--from-literal=phase=pending']);
    const w = bg(['wait', 'cm/jp', '-n', 'wait', '--for=jsonpath={.data.phase}=done', '--timeout=30s']);
    await sleep(1000);
    assert.ok(w.running(), w.output());
    kubectlOk(s, ['patch', 'cm', 'jp', '-n', 'wait', '--type', 'merge', '-p', '{"data":{"phase":"done"}}']);
    const r = await w.done;
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'configmap/jp condition met');

    // On a status field of a metalplane kind.
    kubectlOk(s, ['apply', '-f', '-'], JSON.stringify(plan('jp.test.x86')));
    const pw = bg(['wait', 'plan/jp.test.x86', '--for=jsonpath={.status.capacity[0].available}=3', '--timeout=30s']);
    await sleep(800);
    assert.ok(pw.running(), pw.output());
    kubectlOk(s, ['patch', 'plan', 'jp.test.x86', '--subresource=status', '--type', 'merge', '-p', '{"status":{"capacity":[{"metro":"da","available":3}]}}']);
    const pr = await pw.done;
    assert.equal(pr.status, 0, pr.stderr);
    assert.match(pr.stdout, /plan\.metalplane\.dev\/jp\.test\.x86 condition met/);
  });

  test('finalizers: delete --wait=false leaves a deletionTimestamp; kubectl wait --for=delete ends when the finalizer goes', async () => {
    createObject(s, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'held', namespace: 'fin', finalizers: ['example.com/hold'] }, data: { a: '1' } });
    assert.equal(kubectlOk(s, ['delete', 'cm', 'held', '-n', 'fin', '--wait=false']).trim(), 'configmap "held" deleted');
    const held = kubectlJson(s, ['get', 'cm', 'held', '-n', 'fin']);
    assert.match(held.metadata.deletionTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.deepEqual(held.metadata.finalizers, ['example.com/hold']);

    // No new finalizers once deletion started; other updates still work.
    const added = kubectlFails(s, ['patch', 'cm', 'held', '-n', 'fin', '--type', 'merge', '-p', '{"metadata":{"finalizers":["example.com/hold","example.com/more"]}}']);
    assert.match(added.stderr, /no new finalizers can be added if the object is being deleted/);
    kubectlOk(s, ['label', 'cm', 'held', '-n', 'fin', 'still=editable']);

    const w = bg(['wait', 'cm/held', '-n', 'fin', '--for=delete', '--timeout=30s']);
    await sleep(1500);
    assert.ok(w.running(), `kubectl wait --for=delete must block while the finalizer holds the object: ${w.output()}`);
    assert.equal(exists(s, ['cm', 'held', '-n', 'fin']), true);

    kubectlOk(s, ['patch', 'cm', 'held', '-n', 'fin', '--type', 'json', '-p', '[{"op":"remove","path":"/metadata/finalizers"}]']);
    const r = await w.done;
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'configmap/held condition met');
    assert.equal(exists(s, ['cm', 'held', '-n', 'fin']), false);

    // A metalplane kind behaves the same; plain `kubectl delete` (wait=true) blocks until the finalizer is gone.
    applyObject(s, { ...plan('fin.test.x86'), metadata: { name: 'fin.test.x86', finalizers: ['example.com/hold'] } });
    const del = bg(['delete', 'plan', 'fin.test.x86', '--timeout=30s']);
    await waitFor('deletionTimestamp on the plan', () => kubectlJson(s, ['get', 'plan', 'fin.test.x86']).metadata.deletionTimestamp);
    await sleep(500);
    assert.ok(del.running(), `kubectl delete waits for the finalizer: ${del.output()}`);
    kubectlOk(s, ['patch', 'plan', 'fin.test.x86', '--type', 'merge', '-p', '{"metadata":{"finalizers":null}}']);
    const dr = await del.done;
    assert.equal(dr.status, 0, dr.stderr);
    assert.match(dr.stdout, /plan\.metalplane\.dev "fin\.test\.x86" deleted/);
    assert.equal(exists(s, ['plan', 'fin.test.x86']), false);
  });

  /** A ConfigMap in `gc` owned by the ConfigMap `owner`; `ref` adds to the ownerReference, `meta` to metadata. */
  const owned = (name: string, owner: { name: string; uid: string }, ref: Record<string, unknown> = {}, meta: Record<string, unknown> = {}) => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace: 'gc', ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: owner.name, uid: owner.uid, ...ref }], ...meta },
    data: { owner: owner.name },
  });
  const ownerOf = (name: string) => {
    kubectlOk(s, ['create', 'configmap', name, '-n', 'gc', '--from-literal=role=owner']);
    return { name, uid: kubectlOk(s, ['get', 'cm', name, '-n', 'gc', '-o', 'jsonpath={.metadata.uid}']) };
  };

  test('ownerReferences GC, background: deleting the owner deletes the dependent', async () => {
    const a = ownerOf('bg-owner');
    createObject(s, owned('bg-dep', a));
    createObject(s, owned('bg-dep2', a));
    // A dependent whose owner uid does not match the live owner is garbage from the start.
    createObject(s, owned('bg-wrong-uid', { name: 'bg-owner', uid: '00000000-0000-0000-0000-000000000000' }));
    await waitGone(s, ['cm', 'bg-wrong-uid', '-n', 'gc']);
    assert.equal(exists(s, ['cm', 'bg-dep', '-n', 'gc']), true, 'a dependent of a live owner stays');

    assert.equal(kubectlOk(s, ['delete', 'cm', 'bg-owner', '-n', 'gc']).trim(), 'configmap "bg-owner" deleted');
    await waitGone(s, ['cm', 'bg-dep', '-n', 'gc']);
    await waitGone(s, ['cm', 'bg-dep2', '-n', 'gc']);
  });

  test('ownerReferences GC, foreground: the owner waits (foregroundDeletion) until its blocking dependents are gone', async () => {
    const a = ownerOf('fg-owner');
    createObject(s, owned('fg-dep', a, { blockOwnerDeletion: true }, { finalizers: ['example.com/hold'] }));
    assert.equal(kubectlOk(s, ['delete', 'cm', 'fg-owner', '-n', 'gc', '--cascade=foreground', '--wait=false']).trim(), 'configmap "fg-owner" deleted');
    const owner = kubectlJson(s, ['get', 'cm', 'fg-owner', '-n', 'gc']);
    assert.ok(owner.metadata.deletionTimestamp, 'the owner is marked for deletion');
    assert.ok(owner.metadata.finalizers.includes('foregroundDeletion'), JSON.stringify(owner.metadata));
    // The GC deletes the dependent, which its own finalizer holds; so the owner keeps waiting.
    await waitFor('the dependent marked for deletion', () => kubectlJson(s, ['get', 'cm', 'fg-dep', '-n', 'gc']).metadata.deletionTimestamp);
    await sleep(1000);
    assert.equal(exists(s, ['cm', 'fg-owner', '-n', 'gc']), true, 'the owner waits for its dependent');

    kubectlOk(s, ['patch', 'cm', 'fg-dep', '-n', 'gc', '--type', 'merge', '-p', '{"metadata":{"finalizers":null}}']);
    await waitGone(s, ['cm', 'fg-dep', '-n', 'gc']);
    await waitGone(s, ['cm', 'fg-owner', '-n', 'gc']);

    // Foreground with kubectl's default --wait=true returns only when owner and dependents are gone.
    const b = ownerOf('fg-owner2');
    createObject(s, owned('fg-dep2', b, { blockOwnerDeletion: true }));
    kubectlOk(s, ['delete', 'cm', 'fg-owner2', '-n', 'gc', '--cascade=foreground', '--timeout=30s']);
    assert.equal(exists(s, ['cm', 'fg-owner2', '-n', 'gc']), false);
    assert.equal(exists(s, ['cm', 'fg-dep2', '-n', 'gc']), false);
  });

  test('ownerReferences GC, orphan: the dependent stays, its ownerReference removed', async () => {
    const a = ownerOf('or-owner');
    const other = ownerOf('or-other');
    createObject(s, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: 'or-dep',
        namespace: 'gc',
        ownerReferences: [
          { apiVersion: 'v1', kind: 'ConfigMap', name: a.name, uid: a.uid },
          { apiVersion: 'v1', kind: 'ConfigMap', name: other.name, uid: other.uid },
        ],
      },
      data: {},
    });
    assert.equal(kubectlOk(s, ['delete', 'cm', 'or-owner', '-n', 'gc', '--cascade=orphan']).trim(), 'configmap "or-owner" deleted');
    assert.equal(exists(s, ['cm', 'or-owner', '-n', 'gc']), false, 'kubectl delete waited for the owner to go');
    const dep = kubectlJson(s, ['get', 'cm', 'or-dep', '-n', 'gc']);
    assert.deepEqual(dep.metadata.ownerReferences.map((r: { name: string }) => r.name), ['or-other']);

    // Orphaning the last owner removes ownerReferences altogether.
    kubectlOk(s, ['delete', 'cm', 'or-other', '-n', 'gc', '--cascade=orphan']);
    const dep2 = kubectlJson(s, ['get', 'cm', 'or-dep', '-n', 'gc']);
    assert.equal(dep2.metadata.ownerReferences, undefined);
    await sleep(500);
    assert.equal(exists(s, ['cm', 'or-dep', '-n', 'gc']), true, 'an orphan is not collected');
  });

  test('GC across kinds: a ConfigMap owned by a Plan goes with the Plan', async () => {
    applyObject(s, plan('gc.test.x86'));
    const uid = kubectlOk(s, ['get', 'plan', 'gc.test.x86', '-o', 'jsonpath={.metadata.uid}']);
    createObject(s, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'plan-notes', namespace: 'gc', ownerReferences: [{ apiVersion: 'metalplane.dev/v1alpha1', kind: 'Plan', name: 'gc.test.x86', uid }] },
      data: { note: 'x' },
    });
    kubectlOk(s, ['delete', 'plan', 'gc.test.x86']);
    await waitGone(s, ['cm', 'plan-notes', '-n', 'gc']);
  });

  test('namespace deletion: content removed, then the namespace; creating in a terminating namespace is Forbidden', async () => {
    kubectlOk(s, ['create', 'namespace', 'doomed']);
    kubectlOk(s, ['create', 'configmap', 'one', '-n', 'doomed', '--from-literal=a=1']);
    kubectlOk(s, ['create', 'secret', 'generic', 'two', '-n', 'doomed', '--from-literal=a=1']);
    createObject(s, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'sticky', namespace: 'doomed', finalizers: ['example.com/hold'] }, data: {} });

    assert.equal(kubectlOk(s, ['delete', 'namespace', 'doomed', '--wait=false']).trim(), 'namespace "doomed" deleted');
    const ns = kubectlJson(s, ['get', 'ns', 'doomed']);
    assert.equal(ns.status.phase, 'Terminating');
    assert.ok(ns.metadata.deletionTimestamp);
    assert.match(kubectlOk(s, ['get', 'ns', 'doomed']), /^doomed\s+Terminating\s/m);

    const refused = kubectlFails(s, ['create', 'configmap', 'late', '-n', 'doomed', '--from-literal=a=1']);
    assert.match(refused.stderr, /Error from server \(Forbidden\): configmaps "late" is forbidden: unable to create new content in namespace doomed because it is being terminated|forbidden: unable to create new content in namespace doomed because it is being terminated/);

    await waitGone(s, ['cm', 'one', '-n', 'doomed']);
    await waitGone(s, ['secret', 'two', '-n', 'doomed']);
    // The finalizer on `sticky` keeps the namespace Terminating, and the namespace says why.
    await waitFor('sticky marked for deletion', () => kubectlJson(s, ['get', 'cm', 'sticky', '-n', 'doomed']).metadata.deletionTimestamp);
    const waiting = await waitFor('namespace conditions', () => {
      const conds = kubectlJson(s, ['get', 'ns', 'doomed']).status.conditions as { type: string; status: string; message: string }[] | undefined;
      return conds?.find((c) => c.type === 'NamespaceFinalizersRemaining' && c.status === 'True');
    });
    assert.match(waiting.message, /example\.com\/hold/);
    assert.equal(exists(s, ['ns', 'doomed']), true);

    kubectlOk(s, ['patch', 'cm', 'sticky', '-n', 'doomed', '--type', 'merge', '-p', '{"metadata":{"finalizers":null}}']);
    await waitGone(s, ['ns', 'doomed']);

    // kubectl delete ns (waiting by default) returns once the namespace and its content are gone.
    kubectlOk(s, ['create', 'namespace', 'doomed2']);
    kubectlOk(s, ['create', 'configmap', 'x', '-n', 'doomed2']);
    assert.equal(kubectlOk(s, ['delete', 'ns', 'doomed2', '--timeout=30s']).trim(), 'namespace "doomed2" deleted');
    assert.equal(exists(s, ['ns', 'doomed2']), false);
    const gone = kubectl(s, ['get', 'cm', 'x', '-n', 'doomed2']);
    assert.equal(gone.status, 1);
    assert.match(gone.stderr, /NotFound/);
  });
});
