// The exact attacks of issue 14's findings 2, 3 and 6 (and a JSON patch cousin of finding 3), against the real
// server: each is refused with a 4xx Status saying which limit it hit, the server keeps answering, and its
// memory stays bounded however often the attack is repeated.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { api, startTestServer, type TestServer } from './helpers/server.js';

let server: TestServer;

const CM = '/api/v1/namespaces/default/configmaps';
const WF = '/apis/metalplane.dev/v1alpha1/namespaces/default/workflows';

/** The server's resident set, from /proc (the test machines are Linux). */
function rssMB(): number {
  const status = readFileSync(`/proc/${server.proc.pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
  assert.ok(m, 'VmRSS in /proc/PID/status');
  return Number(m[1]) / 1024;
}

let baselineMB = 0;
/** The highest RSS seen after the nesting attacks of finding 2 (which used to leave ~7 MB behind each). */
let nestingMaxMB = 0;

before(async () => {
  server = await startTestServer();
  const cm = await api(server, 'POST', CM, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'target' }, data: { a: '1' } });
  assert.equal(cm.status, 201, cm.text);
  // Warm up the paths the attacks take (JIT, caches) so that the baseline is not the cold process.
  for (let i = 0; i < 20; i++) {
    await send('POST', CM, 'application/yaml', `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: warm-${i}}\ndata: {a: "1"}\n`);
    await send('GET', `${CM}/target`, undefined, undefined, { accept: 'application/yaml' });
  }
  baselineMB = rssMB();
  nestingMaxMB = baselineMB;
});

after(async () => {
  await server?.stop();
  server?.cleanup();
});

interface Answer {
  status: number;
  text: string;
  body: { kind?: string; code?: number; reason?: string; message?: string } | undefined;
  ms: number;
}

async function send(method: string, path: string, contentType?: string, body?: string, headers: Record<string, string> = {}): Promise<Answer> {
  const started = performance.now();
  const res = await fetch(server.plainUrl + path, {
    method,
    headers: { authorization: `Bearer ${server.token}`, ...(contentType ? { 'content-type': contentType } : {}), ...headers },
    body: body === undefined ? undefined : Buffer.from(body),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await res.text();
  let parsed: Answer['body'];
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, text, body: parsed, ms: performance.now() - started };
}

async function assertAlive(what: string): Promise<void> {
  assert.equal(server.proc.exitCode, null, `the server died after ${what}:\n${server.stderr().slice(-2000)}`);
  const ready = await fetch(server.plainUrl + '/readyz', { signal: AbortSignal.timeout(15_000) });
  assert.equal(ready.status, 200, `/readyz after ${what}`);
}

const deepFlow = (n: number): string => '['.repeat(n) + ']'.repeat(n);

function anchoredMap(keys: number): string {
  return Array.from({ length: keys }, (_, i) => `  k${i}: v`).join('\n');
}

interface Attack {
  name: string;
  method: string;
  path: string;
  contentType: string;
  body: () => string;
  /** How often it is sent: the original 200 KB apply patch killed the process on the fourth. */
  times: number;
  code: number;
  message: RegExp;
}

const attacks: Attack[] = [
  {
    name: 'finding 2: a 40 KB application/yaml body nesting [ 20 000 deep',
    method: 'POST',
    path: CM,
    contentType: 'application/yaml',
    body: () => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\nextra: ${deepFlow(20_000)}\n`,
    times: 10,
    code: 400,
    message: /nested more than \d+ levels deep/,
  },
  {
    name: 'finding 2: a 200 KB apply-patch+yaml nesting [ 100 000 deep',
    method: 'PATCH',
    path: `${CM}/target?fieldManager=attacker`,
    contentType: 'application/apply-patch+yaml',
    body: () => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: target}\ndata: ${deepFlow(100_000)}\n`,
    times: 6,
    code: 400,
    message: /nested more than \d+ levels deep/,
  },
  {
    name: 'finding 2: block nesting (compact "- - - …" 20 000 deep)',
    method: 'POST',
    path: CM,
    contentType: 'application/yaml',
    body: () => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep-block}\nextra:\n${'- '.repeat(20_000)}x\n`,
    times: 4,
    code: 400,
    message: /nested more than \d+ levels deep/,
  },
  {
    name: 'finding 2: erroneous compact maps ("a: a: a: …" on indented lines) that the composer still nests',
    method: 'POST',
    path: CM,
    contentType: 'application/yaml',
    body: () => Array.from({ length: 400 }, (_, i) => ' '.repeat(2 * i) + 'a: '.repeat(50)).join('\n') + '\n',
    times: 4,
    code: 400,
    message: /nested more than \d+ levels deep|invalid YAML/,
  },
  {
    name: 'finding 3: 99 aliases of a 20 000-key anchored map (190 KB, 25 MB expanded)',
    method: 'POST',
    path: CM,
    contentType: 'application/yaml',
    body: () => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: aliased}\nbase: &a\n${anchoredMap(20_000)}\ndata:\n${Array.from({ length: 99 }, (_, i) => `  c${i}: *a`).join('\n')}\n`,
    times: 4,
    code: 400,
    message: /aliases.*more than \d+ characters/,
  },
  {
    name: 'finding 3: a 2 MB body expanding to 200 MB',
    method: 'PATCH',
    path: `${CM}/target?fieldManager=attacker`,
    contentType: 'application/apply-patch+yaml',
    body: () => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: target}\nbase: &a\n${anchoredMap(200_000)}\nextra:\n${Array.from({ length: 99 }, (_, i) => `  c${i}: *a`).join('\n')}\n`,
    times: 2,
    code: 400,
    // 200 000 keys are refused before composing, as too many YAML nodes (the composer's memory, not the aliases).
    message: /more than \d+ YAML nodes/,
  },
  {
    name: 'an alias inside the node it names',
    method: 'POST',
    path: CM,
    contentType: 'application/yaml',
    body: () => 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cycle}\nextra: &a [*a]\n',
    times: 2,
    code: 400,
    message: /inside the node it names/,
  },
  {
    name: 'a JSON patch whose copies double the object 40 times',
    method: 'PATCH',
    path: `${CM}/target`,
    contentType: 'application/json-patch+json',
    body: () =>
      JSON.stringify([
        { op: 'add', path: '/data/x', value: 'y'.repeat(1000) },
        { op: 'add', path: '/metadata/annotations', value: { a: 'b' } },
        ...Array.from({ length: 40 }, (_, i) => ({ op: 'copy', from: '/metadata', path: `/metadata/annotations/c${i}` })),
      ]),
    times: 2,
    code: 413,
    message: /copies add up to more than \d+ bytes/,
  },
  {
    name: 'a 20 000-key map with YAML (the duplicate-key check was quadratic)',
    method: 'POST',
    path: CM,
    contentType: 'application/yaml',
    body: () => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: wide}\ndata:\n${anchoredMap(20_000)}\n  k0: again\n`,
    times: 2,
    code: 400,
    message: /Map keys must be unique; "k0" is repeated/,
  },
];

const timings: string[] = [];

for (const a of attacks) {
  test(`${a.name} → ${a.code}, ${a.times}×, the server alive`, async () => {
    const body = a.body();
    for (let i = 0; i < a.times; i++) {
      const r = await send(a.method, a.path, a.contentType, body);
      const summary = `${r.status} ${r.text.slice(0, 400)}`;
      assert.ok(r.status < 500, `a 5xx: ${summary}`);
      assert.equal(r.status, a.code, summary);
      assert.equal(r.body?.kind, 'Status', summary);
      assert.match(r.body?.message ?? '', a.message, summary);
      if (i === 0) timings.push(`${a.name}: ${(body.length / 1024).toFixed(0)} KiB rejected in ${r.ms.toFixed(0)} ms`);
    }
    await assertAlive(a.name);
    const rss = rssMB();
    if (a.name.startsWith('finding 2')) nestingMaxMB = Math.max(nestingMaxMB, rss);
    console.log(`# RSS after ${a.name}: ${rss.toFixed(0)} MB`);
  });
}

test('finding 6: repeated JSON patches cannot grow a Workflow\'s params past the free-form bounds; YAML GET and LIST keep working', async () => {
  const wf = {
    apiVersion: 'metalplane.dev/v1alpha1',
    kind: 'Workflow',
    metadata: { name: 'grow' },
    spec: { hardware: 'no-such-machine', purpose: 'discover', actions: [{ name: 'a', executor: 'bmc', type: 'power-on-pxe', timeoutSeconds: 60, params: {} }] },
  };
  const created = await api(server, 'POST', WF, wf);
  assert.equal(created.status, 201, created.text);
  // Each patch nests 20 more levels below the deepest one: the first fits the bound, the second would not.
  const nest = (n: number): unknown => {
    let v: unknown = 'leaf';
    for (let i = 0; i < n; i++) v = { x: v };
    return v;
  };
  let path = '/spec/actions/0/params/x';
  const answers: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await send('PATCH', `${WF}/grow`, 'application/json-patch+json', JSON.stringify([{ op: 'add', path, value: nest(20) }]));
    answers.push(r.status);
    assert.ok(r.status < 500, `a 5xx: ${r.status} ${r.text.slice(0, 400)}`);
    if (r.status !== 200) {
      assert.equal(r.status, 422, r.text.slice(0, 400));
      assert.equal(r.body?.reason, 'Invalid');
      assert.match(r.body?.message ?? '', /spec\.actions\[0\]\.params: Invalid value: a free-form field is nested more than 32 levels deep/);
    } else path += '/x'.repeat(20);
  }
  assert.deepEqual(answers, [200, 422, 422, 422, 422]);
  // What is stored renders as YAML, item and list.
  for (const p of [`${WF}/grow`, WF]) {
    const r = await send('GET', p, undefined, undefined, { accept: 'application/yaml' });
    assert.equal(r.status, 200, r.text.slice(0, 400));
    assert.match(r.text, /name: grow/);
  }
  await assertAlive('the Workflow patches');
});

test('a stored object stays within the object bounds whatever the patch type (merge, strategic, apply)', async () => {
  // 99 levels through the body limit's 500 are fine for a body but not for a stored object (100 levels).
  const deep = `{"metadata":{"annotations":null},"extra":${'{"x":'.repeat(150)}1${'}'.repeat(150)}}`;
  for (const type of ['application/merge-patch+json', 'application/strategic-merge-patch+json']) {
    const r = await send('PATCH', `${CM}/target`, type, deep);
    assert.ok(r.status < 500, `${type}: a 5xx: ${r.status} ${r.text.slice(0, 300)}`);
    // Checked before unknown fields are pruned: what is too deep is never walked, even to be dropped.
    assert.equal(r.status, 422, `${type}: ${r.text.slice(0, 300)}`);
    assert.match(r.body?.message ?? '', /nested more than 100 levels deep/);
  }
  const wfDeep = JSON.stringify({ spec: { actions: [{ name: 'a', executor: 'bmc', type: 'power-on-pxe', timeoutSeconds: 60, params: JSON.parse(`${'{"x":'.repeat(150)}1${'}'.repeat(150)}`) }] } });
  const r = await send('PATCH', `${WF}/grow`, 'application/merge-patch+json', wfDeep);
  assert.equal(r.status, 422, r.text.slice(0, 400));
  assert.match(r.body?.message ?? '', /nested more than 100 levels deep/);
  const got = await api(server, 'GET', `${CM}/target`);
  assert.deepEqual(got.body.data, { a: '1' }, 'failed patches must not change the object');
});

test('after every attack: the server is alive, its memory bounded, and normal YAML works', async () => {
  await assertAlive('all the attacks');
  // What is retained, not what a busy machine has not collected yet: the lowest RSS over a few idle seconds.
  let afterMB = rssMB();
  for (let i = 0; i < 20 && afterMB - baselineMB >= 100; i++) {
    await new Promise((r) => setTimeout(r, 250));
    afterMB = Math.min(afterMB, rssMB());
  }
  const grownMB = afterMB - baselineMB;
  for (const t of timings) console.log(`# ${t}`);
  console.log(`# server RSS: ${baselineMB.toFixed(0)} MB before the attacks, ${afterMB.toFixed(0)} MB after (+${grownMB.toFixed(0)} MB)`);
  // Before the fix the nesting bodies of finding 2 left ~7 MB behind each (24 of them: ~170 MB) and the 200 KB one
  // killed the process: after them RSS must stay near where it was. The later attacks legitimately allocate up to
  // their budgets (a 2 MB body's expansion is counted before it is refused), which V8 need not hand back at once
  // on a busy machine: for the whole run the bound is only that the process stayed far from running out.
  assert.ok(nestingMaxMB - baselineMB < 60, `server RSS grew by ${(nestingMaxMB - baselineMB).toFixed(0)} MB over the nesting attacks (bound: 60 MB)`);
  assert.ok(grownMB < 300, `server RSS grew by ${grownMB.toFixed(0)} MB during the attacks (bound: 300 MB)`);
  const created = await send('POST', CM, 'application/yaml', 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: after-attacks}\ndata: {ok: "yes"}\n');
  assert.equal(created.status, 201, created.text);
  const got = await send('GET', `${CM}/after-attacks`, undefined, undefined, { accept: 'application/yaml' });
  assert.equal(got.status, 200);
  assert.match(got.text, /ok: "?yes"?/);
});
