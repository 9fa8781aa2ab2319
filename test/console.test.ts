// The web console in a real browser: Debian's Chromium driven by playwright-core against a real `metalplane up`
// with the simulated datacenter. Sign-in through the printed link, live lists, the create form, the device page
// (workflow timeline, events, a reboot), the rack view reacting to an injected fault, the graph, a tenant's key
// seeing only its project, and no errors in the browser console. Screenshots of each page are saved to a temp
// dir (printed); CONSOLE_SCREENSHOTS_DIR=docs/images copies the README's three there.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { api, kubectl, kubectlOk, REPO, startTestServer, toolSkipReason, waitFor, type TestServer } from './helpers/server.js';
import { metal } from './helpers/metal.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = toolSkipReason([CHROMIUM, '--version'], 'the console tests need Debian\'s Chromium: apt-get install -y chromium');
const LAUNCH_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];
const WAIT = 60_000;
/** Enough for the composition example (db-1, app-1), the tenant's device, a form device in ny and spare ones. */
const MACHINES = 12;

describe('web console', { skip, timeout: 900_000 }, () => {
  let s: TestServer;
  let browser: Browser;
  let ctx: BrowserContext;
  let page: Page;
  const shots = mkdtempSync(join(tmpdir(), 'metalplane-console-shots-'));
  const errors: string[] = [];

  const watchErrors = (p: Page, who: string) => {
    p.on('console', (m) => {
      // The location names the resource of a "Failed to load resource" (its text does not).
      if (m.type() === 'error') errors.push(`${who}: ${m.text()}${m.location().url ? ` (${m.location().url})` : ''}`);
    });
    p.on('pageerror', (e) => errors.push(`${who}: ${e.message}`));
  };
  const shot = async (p: Page, name: string) => {
    await p.screenshot({ path: join(shots, `${name}.png`), fullPage: name !== 'graph' });
  };

  before(async () => {
    s = await startTestServer({ args: ['--sim', '--sim-machines', String(MACHINES), '--sim-speed', 'max'], timeoutMs: 60_000 });
    // playwright gives every launch a fresh temporary profile (user-data dir) and removes it at close.
    browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
    ctx = await browser.newContext({ viewport: { width: 1400, height: 900 }, colorScheme: 'light' });
    page = await ctx.newPage();
    watchErrors(page, 'operator');
  });

  after(async () => {
    await browser?.close();
    await s?.stop();
    s?.cleanup();
    process.stdout.write(`# console screenshots: ${shots}\n`);
    const docs = process.env.CONSOLE_SCREENSHOTS_DIR;
    if (docs) {
      const dir = join(REPO, docs);
      mkdirSync(dir, { recursive: true });
      for (const n of ['datacenter', 'device-detail', 'graph']) copyFileSync(join(shots, `${n}.png`), join(dir, `console-${n}.png`));
    }
  });

  test('the printed link signs in; the token leaves the address bar; the session is an HttpOnly SameSite=Strict cookie', async () => {
    const link = /console:\s+(\S+)/.exec(s.stdout())?.[1];
    assert.ok(link && /#login=mpl_/.test(link), `the ready line carries a sign-in link: ${s.stdout()}`);
    await page.goto(link);
    await page.getByText('admin (operator)').waitFor({ timeout: WAIT });
    assert.ok(!page.url().includes('login'), `the token is gone from the address bar: ${page.url()}`);
    const cookies = await ctx.cookies();
    const session = cookies.find((c) => c.name === 'metalplane_session');
    assert.ok(session, 'a session cookie is set');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    // The link works once.
    const again = await fetch(`${s.plainUrl}/ui/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ login: link.split('#login=')[1] }) });
    assert.equal(again.status, 401);
    // The cookie authenticates the kube API like a bearer token.
    const viaCookie = await fetch(`${s.plainUrl}/apis/metalplane.dev/v1alpha1/plans`, { headers: { cookie: `metalplane_session=${session.value}` } });
    assert.equal(viaCookie.status, 200);
  });

  test('the datacenter view draws every machine in its rack', async () => {
    await page.goto(`${s.plainUrl}/ui/datacenter`);
    // Locators, not a waitForFunction string: the page's CSP forbids eval, which that sometimes needs.
    await page.locator('[data-machine]').nth(MACHINES - 1).waitFor({ timeout: WAIT });
    await page.locator('[data-machine][data-state=discovering]').first().waitFor({ state: 'detached', timeout: WAIT });
    assert.equal(await page.locator('[data-machine]').count(), MACHINES);
    assert.ok(await page.locator('table.capacity').isVisible());
    await shot(page, 'datacenter');
  });

  test('a device created with the form reaches active on screen without a reload', async () => {
    await page.goto(`${s.plainUrl}/ui/devices/new`);
    await page.getByLabel('Name').fill('web-ui');
    await page.locator('select[name=metro]').selectOption('da');
    await page.locator('select[name=plan]').selectOption('c3.small.x86');
    await shot(page, 'create-device');
    // A mark on the page's global object survives in-app navigation but not a reload.
    await page.evaluate('window.__noReload = true');
    await page.getByRole('button', { name: 'Create device' }).click();
    await page.locator('[data-testid=device-detail] h1 .state[data-state=provisioning], [data-testid=device-detail] h1 .state[data-state=queued]').or(page.locator('[data-testid=device-detail] h1 .state[data-state=active]')).first().waitFor({ timeout: WAIT });
    await page.locator('[data-testid=device-detail] h1 .state[data-state=active]').waitFor({ timeout: WAIT });
    assert.equal(await page.evaluate('window.__noReload === true'), true, 'no page load happened: the state arrived over the stream');
  });

  test('the device page shows the workflow timeline and events', async () => {
    const steps = page.locator('[data-purpose=provision] [data-step]');
    await page.locator('[data-purpose=provision] [data-step=phone-home][data-state=succeeded]').waitFor({ timeout: WAIT });
    assert.ok((await steps.count()) >= 5, 'the provisioning actions are drawn');
    assert.match((await page.locator('[data-purpose=provision]').innerText()).replace(/\s+/g, ' '), /stream-image succeeded [0-9.]+ (ms|s)/);
    await page.locator('[data-testid=device-events] tbody tr').first().waitFor({ timeout: WAIT });
    assert.ok((await page.getByTestId('ips').locator('li').count()) >= 1, 'IP addresses are shown');
    // The machine's console: its boot log from power-on to phone-home, refetched while the page is open.
    await page.getByTestId('machine-console').filter({ hasText: 'cloud-init: finished' }).waitFor({ timeout: WAIT });
    const bootLog = await page.getByTestId('machine-console').innerText();
    for (const want of [/--- power on: boot \d+ ---|--- reset/, /POST complete; boot device: network/, /iPXE: kernel /, /metalplane-agent: stream-image .*: succeeded/, /metalplane-agent: reboot .*: rebooting now/, /GRUB: booting ubuntu_24_04/, /cloud-init: phone_home: POST \S+: HTTP 200/]) {
      assert.match(bootLog, want);
    }
    assert.match(bootLog, /^\d\d:\d\d:\d\d\.\d{3} {2}/m, 'each line carries its time');
    await shot(page, 'device-detail');
  });

  test('a reboot asked for in the console shows in the timeline', async () => {
    await page.locator('button[data-action=reboot]').click();
    await page.getByTestId('confirm').click();
    await page.locator('[data-testid=timeline-action][data-type=reboot] .state-succeeded').waitFor({ timeout: WAIT });
    const dev = JSON.parse(kubectlOk(s, ['get', 'device', 'web-ui', '-n', 'default', '-o', 'json'])) as { metadata: { annotations: Record<string, string> } };
    assert.match(dev.metadata.annotations['metalplane.dev/action'] ?? '', /^reboot\//, 'asked for with the annotation, as kubectl would');
  });

  test('a device created through kubectl appears live in the table', async () => {
    await page.goto(`${s.plainUrl}/ui/devices`);
    await page.locator('[data-device="default/web-ui"]').waitFor({ timeout: WAIT });
    await page.evaluate('window.__noReload = true');
    kubectlOk(s, ['apply', '-f', '-'], `apiVersion: metalplane.dev/v1alpha1\nkind: Device\nmetadata: {name: kube-1, namespace: default}\nspec: {metro: da, plan: c3.small.x86, operatingSystem: ubuntu_24_04}\n`);
    await page.locator('[data-device="default/kube-1"]').waitFor({ timeout: WAIT });
    await page.locator('[data-device="default/kube-1"] [data-state=active]').waitFor({ timeout: WAIT });
    assert.equal(await page.evaluate('window.__noReload === true'), true, 'the table was never reloaded');
    assert.ok(Number(await page.evaluate('window.__metalplaneLive.streamsOpened')) >= 1);
    await shot(page, 'devices');
  });

  test('the rack view changes colour when a fault is injected', async () => {
    await page.goto(`${s.plainUrl}/ui/datacenter`);
    const machines = (await api(s, 'GET', '/sim/v1/machines')).body.machines as Array<{ id: string; metro: string }>;
    // A machine no later test needs (they place devices in da and ny).
    const target = (machines.find((m) => m.metro === 'am') ?? machines[machines.length - 1]!).id;
    const slot = page.locator(`[data-machine="${target}"]`);
    await slot.waitFor({ timeout: WAIT });
    const style = (): Promise<string> => slot.evaluate((e) => { const cs = e.ownerDocument.defaultView!.getComputedStyle(e); return `${cs.backgroundImage} ${cs.borderColor}`; });
    const before = await style();
    assert.equal((await api(s, 'POST', `/sim/v1/machines/${target}/faults`, { type: 'disk-failure' })).status, 201);
    await page.locator(`[data-machine="${target}"][data-fault="disk-failure"]`).waitFor({ timeout: WAIT });
    const afterStyle = await style();
    assert.notEqual(afterStyle, before, 'the slot is drawn differently');
    await slot.click();
    await page.getByTestId('machine-panel').getByText('disk-failure').waitFor();
    await shot(page, 'datacenter-fault');
    await api(s, 'DELETE', `/sim/v1/machines/${target}/faults`);
  });

  test('the graph draws the composition example: db-1 → CloudConfig app → app-1, waiting until db-1 is Ready', async (t) => {
    // db-1 must still be on its way when the graph is looked at, whatever the machine's load: the free da
    // c3.small machines are held by placeholder devices first, so db-1 waits in the queue (NoCapacity) until
    // they are deleted and their machines wiped.
    type Obj = { metadata: { name: string }; spec: { metro: string; plan: string }; status?: { state?: string; hardware?: string } };
    const list = (what: string, ns?: string): Obj[] => (JSON.parse(kubectlOk(s, ['get', what, ...(ns ? ['-n', ns] : []), '-o', 'json'])) as { items: Obj[] }).items;
    // Machines still being wiped by earlier tests come free later: they are held too, until none is left.
    const claimable = () => list('hardware').filter((h) => h.spec.metro === 'da' && h.spec.plan === 'c3.small.x86' && ['available', 'deprovisioning'].includes(h.status?.state ?? ''));
    assert.ok(claimable().length >= 2, `two free da c3.small.x86 machines for db-1 and app-1: ${claimable().map((h) => h.metadata.name).join(', ')}`);
    const holds: string[] = [];
    const hold = (n: number) => {
      const names: string[] = [];
      for (let i = 0; i < n; i++) names.push(`hold-${holds.push(`hold-${holds.length + 1}`)}`);
      kubectlOk(s, ['apply', '-f', '-'], names.map((name) => `apiVersion: metalplane.dev/v1alpha1\nkind: Device\nmetadata: {name: ${name}, namespace: default}\nspec: {metro: da, plan: c3.small.x86, operatingSystem: ubuntu_24_04}\n`).join('---\n'));
    };
    hold(claimable().length);
    await waitFor('every claimable da c3.small machine held', async () => {
      // A hold not bound yet will take an available machine: only machines beyond those get a new hold.
      const unbound = list('devices', 'default').filter((d) => holds.includes(d.metadata.name) && !d.status?.hardware).length;
      const available = claimable().filter((h) => h.status?.state === 'available').length;
      if (available > unbound) hold(available - unbound);
      return claimable().length === 0 && unbound === 0 ? true : undefined;
    }, WAIT, 500);
    let released = false;
    const release = () => {
      released = true;
      kubectlOk(s, ['delete', 'device', ...holds, '-n', 'default', '--wait=false', '--ignore-not-found']);
    };
    // A failure below must not leave the machines held for the tests after this one.
    t.after(() => {
      if (!released) release();
    });
    await page.goto(`${s.plainUrl}/ui/devices`);
    for (const n of holds) await page.locator(`[data-device="default/${n}"] [data-state=active]`).waitFor({ timeout: WAIT });

    await page.goto(`${s.plainUrl}/ui/graph`);
    await page.locator('[data-testid=graph-node][data-kind=Device]').first().waitFor({ timeout: WAIT });
    kubectlOk(s, ['apply', '-f', join(REPO, 'examples', 'cloud-config')]);
    const node = (kind: string, label: string) => page.locator(`[data-testid=graph-node][data-kind=${kind}]`).filter({ has: page.locator('.gnode-label', { hasText: new RegExp(`^${label}$`) }) });
    // An edge between nodes of one row is a flat line (a box of height 0, which Playwright calls hidden): it is
    // looked for in the DOM, with its path drawn.
    const edge = (from: string, to: string) => page.locator(`.react-flow__edge[data-id="${from}->${to}"] path.react-flow__edge-path[d]`);
    const attached = { state: 'attached', timeout: WAIT } as const;
    await node('CloudConfig', 'app').and(page.locator('[data-health=progressing]')).waitFor({ timeout: WAIT });
    await edge('dev:default/db-1', 'cc:default/app').waitFor(attached);
    await edge('cc:default/app', 'dev:default/app-1').waitFor(attached);
    // Waited for, not read once: a device just applied has no status (Unknown) until the device controller has
    // looked at it and the stream has brought that; both then wait, queued, until the held machines are released.
    await node('Device', 'db-1').and(page.locator('[data-health=progressing]')).waitFor({ timeout: WAIT });
    await node('Device', 'app-1').and(page.locator('[data-health=progressing]')).waitFor({ timeout: WAIT });
    // Waited for, not read once: the badge follows the CloudConfig's status as the stream brings it.
    await node('CloudConfig', 'app').filter({ hasText: 'WaitingForInputs' }).waitFor({ timeout: WAIT });
    const ready = JSON.parse(kubectlOk(s, ['get', 'cloudconfig', 'app', '-n', 'default', '-o', 'json'])) as { status: { conditions: Array<{ type: string; status: string; reason: string }> } };
    assert.deepEqual(
      ready.status.conditions.filter((c) => c.type === 'Ready').map((c) => [c.status, c.reason]),
      [['False', 'WaitingForInputs']],
      'the badge says what the CloudConfig says',
    );
    await shot(page, 'graph-waiting');

    release();
    // The held machines are wiped before db-1 gets one (a second or two at --sim-speed max, even on a loaded
    // machine). Wait for the objects themselves first (kubectl), then the page must show what they are.
    const waited = kubectl(s, ['wait', 'device/db-1', 'device/app-1', 'cloudconfig/app', '-n', 'default', '--for=condition=Ready', '--timeout=120s'], undefined, 140_000);
    assert.equal(waited.status, 0, `db-1, app-1 and the CloudConfig app become Ready: ${waited.stdout}${waited.stderr}`);
    await node('CloudConfig', 'app').and(page.locator('[data-health=ready]')).waitFor({ timeout: WAIT });
    await node('Device', 'db-1').and(page.locator('[data-health=ready]')).waitFor({ timeout: WAIT });
    await node('Device', 'app-1').and(page.locator('[data-health=ready]')).waitFor({ timeout: WAIT });
    assert.equal(await edge('dev:default/db-1', 'cc:default/app').count(), 1);
    assert.equal(await edge('cc:default/app', 'dev:default/app-1').count(), 1);
    // Drawn afresh (the view fits the whole graph when it opens) for the README's picture.
    await page.reload();
    await node('CloudConfig', 'app').and(page.locator('[data-health=ready]')).waitFor({ timeout: WAIT });
    await edge('cc:default/app', 'dev:default/app-1').waitFor(attached);
    // No node is left hidden: React Flow hides a node until it has a size, and one it had to measure could stay
    // hidden for good on a busy machine (the view declares every node's size, console/src/views/graph.tsx).
    const hidden = await page.locator('.react-flow__node').evaluateAll((ns) => ns.filter((n) => n.ownerDocument.defaultView!.getComputedStyle(n).visibility !== 'visible').map((n) => n.getAttribute('data-id')));
    assert.deepEqual(hidden, [], 'every graph node is visible');
    await shot(page, 'graph');

    // The CloudConfig's node opens its page: Ready, and the document carries db-1's address.
    const db = JSON.parse(kubectlOk(s, ['get', 'device', 'db-1', '-n', 'default', '-o', 'json'])) as { status: { ipAddresses: Array<{ address: string }> } };
    const dbIp = db.status.ipAddresses[0]!.address;
    await node('CloudConfig', 'app').click();
    await page.getByTestId('cloudconfig-detail').locator('h1 [data-health=ready]').waitFor({ timeout: WAIT });
    await page.locator('[data-testid=cloudconfig-detail] pre.code', { hasText: `DB_IP=${dbIp}` }).waitFor({ timeout: WAIT });
    await shot(page, 'cloudconfig');
    // app-1's page shows the rendered user data its machine received.
    await page.goto(`${s.plainUrl}/ui/devices/default/app-1`);
    await page.getByText('From CloudConfig').waitFor({ timeout: WAIT });
    await page.locator('[data-testid=device-detail] pre.code', { hasText: `DB_IP=${dbIp}` }).waitFor({ timeout: WAIT });
  });

  test('a device created with the form from a CloudConfig uses it', async () => {
    await page.goto(`${s.plainUrl}/ui/devices/new`);
    await page.getByLabel('Name').fill('web-cc');
    await page.locator('select[name=metro]').selectOption('ny');
    await page.locator('select[name=plan]').selectOption('c3.small.x86');
    await page.locator('select[name=cloudConfig] option[value=app]').waitFor({ state: 'attached', timeout: WAIT });
    await page.locator('select[name=cloudConfig]').selectOption('app');
    assert.equal(await page.locator('textarea[name=userData]').count(), 0, 'no user data text with a CloudConfig');
    await page.getByRole('button', { name: 'Create device' }).click();
    await page.locator('[data-testid=device-detail] h1 .state[data-state=active]').waitFor({ timeout: WAIT });
    const dev = JSON.parse(kubectlOk(s, ['get', 'device', 'web-cc', '-n', 'default', '-o', 'json'])) as { spec: { cloudConfigRef?: { name: string }; userData?: string } };
    assert.deepEqual(dev.spec.cloudConfigRef, { name: 'app' });
    assert.equal(dev.spec.userData, undefined);
    await page.locator('[data-testid=device-detail] pre.code', { hasText: 'DB_IP=' }).waitFor({ timeout: WAIT });
  });

  test('a queued device says why it waits and where its plan is available', async () => {
    // No m3.small.x86 in ny; the sim has one in da11.
    kubectlOk(s, ['apply', '-f', '-'], `apiVersion: metalplane.dev/v1alpha1\nkind: Device\nmetadata: {name: queued-1, namespace: default}\nspec: {metro: ny, plan: m3.small.x86, operatingSystem: ubuntu_24_04}\n`);
    await page.goto(`${s.plainUrl}/ui/datacenter`);
    const row = page.locator('[data-queued="default/queued-1"]');
    await row.filter({ hasText: 'NoCapacity' }).waitFor({ timeout: WAIT });
    assert.match(await row.innerText(), /no available m3\.small\.x86 machine in metro ny|no m3\.small\.x86 machines exist in metro ny/);
    assert.match(await row.getByTestId('available-elsewhere').innerText(), /Available m3\.small\.x86: da11 \(da\) 1\./);
    await shot(page, 'datacenter-queued');
    await row.getByRole('link').click();
    const notice = page.getByTestId('queued-reason');
    await notice.filter({ hasText: 'NoCapacity' }).waitFor({ timeout: WAIT });
    assert.match(await notice.innerText(), /da11 \(da\) 1/);
    kubectlOk(s, ['delete', 'device', 'queued-1', '-n', 'default', '--wait=false']);
  });

  test('the graph renders devices, hardware, workflows and IPs with health badges', async () => {
    await page.goto(`${s.plainUrl}/ui/graph`);
    await page.locator('[data-testid=graph-node][data-kind=Device]').first().waitFor({ timeout: WAIT });
    const kinds = await page.locator('[data-testid=graph-node]').evaluateAll((ns) => ns.map((n) => `${n.getAttribute('data-kind')}:${n.getAttribute('data-health')}`));
    for (const want of ['Device:ready', 'Hardware:ready', 'Workflow:ready', 'IPAddress:ready']) assert.ok(kinds.includes(want), `${want} in ${kinds.join(', ')}`);
    await shot(page, 'graph-all');
    for (const p of ['events', 'usage', 'chaos']) {
      await page.goto(`${s.plainUrl}/ui/${p}`);
      await page.locator('main h1').waitFor();
      await page.waitForLoadState('networkidle').catch(() => undefined);
      await shot(page, p);
    }
    await page.goto(`${s.plainUrl}/ui/devices/default/web-ui`);
    await page.getByRole('button', { name: 'Toggle light and dark theme' }).click();
    await page.locator('[data-testid=device-detail]').waitFor();
    await shot(page, 'device-detail-dark');
  });

  test('a tenant key sees its project only', async () => {
    const project = await metal(s, 'POST', '/projects', { name: 'tenant-a' });
    assert.equal(project.status, 201);
    const key = await metal(s, 'POST', `/projects/${project.body.id}/api-keys`, { description: 'console test' });
    assert.equal(key.status, 201);
    const tenant = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const tp = await tenant.newPage();
    watchErrors(tp, 'tenant');
    await tp.goto(`${s.plainUrl}/ui/`);
    await tp.getByLabel('Token').fill(key.body.token as string);
    await tp.getByRole('button', { name: 'Sign in' }).click();
    await tp.getByRole('heading', { name: 'Devices' }).waitFor({ timeout: WAIT });
    const options = await tp.getByTestId('project-picker').locator('option').allInnerTexts();
    assert.deepEqual(options, ['tenant-a']);
    await tp.getByText('No devices yet').waitFor({ timeout: WAIT });
    assert.equal(await tp.locator('[data-device^="default/"]').count(), 0, 'no device of another project');
    assert.equal(await tp.getByRole('link', { name: 'Datacenter' }).count(), 0, 'the operator pages are not offered');
    // Through the same cookie the APIs refuse other projects and the operator's surfaces (asked from here, not
    // the page, so the browser console stays clean).
    const cookie = (await tenant.cookies()).find((c) => c.name === 'metalplane_session')!.value;
    const status = async (path: string) => (await fetch(s.plainUrl + path, { headers: { cookie: `metalplane_session=${cookie}` } })).status;
    assert.equal(await status('/apis/metalplane.dev/v1alpha1/namespaces/default/devices'), 403);
    assert.equal(await status('/apis/metalplane.dev/v1alpha1/devices'), 403);
    assert.equal(await status('/apis/metalplane.dev/v1alpha1/hardware'), 403);
    assert.equal(await status('/sim/v1/machines'), 403);
    assert.equal(await status('/apis/metalplane.dev/v1alpha1/namespaces/tenant-a/devices'), 200);
    assert.equal(await status('/metal/v1/projects'), 200);
    const projects = (await (await fetch(`${s.plainUrl}/metal/v1/projects`, { headers: { cookie: `metalplane_session=${cookie}` } })).json()) as { projects: Array<{ name: string }> };
    assert.deepEqual(projects.projects.map((p) => p.name), ['tenant-a']);
    await shot(tp, 'tenant-devices');
    // A tenant's device page offers no console output (an operator surface): it says so instead.
    const created = await metal(s, 'POST', `/projects/${project.body.id}/devices`, { metro: 'da', plan: 'c3.small.x86', operating_system: 'ubuntu_24_04', hostname: 'tenant-1' }, { token: key.body.token as string });
    assert.equal(created.status, 201, created.text);
    const row = tp.locator('[data-device^="tenant-a/"]');
    await row.first().waitFor({ timeout: WAIT });
    await row.first().getByRole('link').first().click();
    await tp.getByTestId('console-operator-only').waitFor({ timeout: WAIT });
    assert.equal(await tp.getByTestId('machine-console').count(), 0);
    // Signing out ends the session: the cookie no longer authenticates.
    await tp.getByRole('button', { name: 'Sign out' }).click();
    await tp.getByLabel('Token').waitFor();
    const after = await fetch(`${s.plainUrl}/apis/metalplane.dev/v1alpha1/namespaces/tenant-a/devices`, { headers: { cookie: `metalplane_session=${cookie}` } });
    assert.equal(after.status, 401);
    await tenant.close();
  });

  test('no errors in the browser console', () => {
    assert.deepEqual(errors, []);
  });
});
