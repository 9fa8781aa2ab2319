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
import { api, kubectlOk, REPO, startTestServer, toolSkipReason, type TestServer } from './helpers/server.js';
import { metal } from './helpers/metal.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = toolSkipReason([CHROMIUM, '--version'], 'the console tests need Debian\'s Chromium: apt-get install -y chromium');
const LAUNCH_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];
const WAIT = 60_000;

describe('web console', { skip, timeout: 300_000 }, () => {
  let s: TestServer;
  let browser: Browser;
  let ctx: BrowserContext;
  let page: Page;
  const shots = mkdtempSync(join(tmpdir(), 'metalplane-console-shots-'));
  const errors: string[] = [];

  const watchErrors = (p: Page, who: string) => {
    p.on('console', (m) => {
      if (m.type() === 'error') errors.push(`${who}: ${m.text()}`);
    });
    p.on('pageerror', (e) => errors.push(`${who}: ${e.message}`));
  };
  const shot = async (p: Page, name: string) => {
    await p.screenshot({ path: join(shots, `${name}.png`), fullPage: name !== 'graph' });
  };

  before(async () => {
    s = await startTestServer({ args: ['--sim', '--sim-machines', '8', '--sim-speed', 'max'], timeoutMs: 60_000 });
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
    await page.waitForFunction("document.querySelectorAll('[data-machine]').length === 8 && document.querySelectorAll('[data-machine][data-state=discovering]').length === 0", undefined, { timeout: WAIT });
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
    const machines = (await api(s, 'GET', '/sim/v1/machines')).body.machines as Array<{ id: string }>;
    const target = machines[machines.length - 1]!.id;
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

  test('the graph renders devices, hardware, workflows and IPs with health badges', async () => {
    await page.goto(`${s.plainUrl}/ui/graph`);
    await page.locator('[data-testid=graph-node][data-kind=Device]').first().waitFor({ timeout: WAIT });
    const kinds = await page.locator('[data-testid=graph-node]').evaluateAll((ns) => ns.map((n) => `${n.getAttribute('data-kind')}:${n.getAttribute('data-health')}`));
    for (const want of ['Device:ready', 'Hardware:ready', 'Workflow:ready', 'IPAddress:ready']) assert.ok(kinds.includes(want), `${want} in ${kinds.join(', ')}`);
    await shot(page, 'graph');
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
