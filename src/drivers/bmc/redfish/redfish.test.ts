// The Redfish driver against the Redfish emulator of the simulated datacenter, over real HTTP on loopback.
// The only stand-in is the machine behind the BMC: a few fields of power and boot state.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FakeClock } from '../../../lib/clock.js';
import { ensureCertificates } from '../../../server/tls/certs.js';
import {
  RedfishEmulator,
  type BmcFault,
  type BootEnabled,
  type BootTarget,
  type EmulatedSystem,
  type EmulatedSystemInfo,
  type ResetType,
} from '../../../sim/redfish-emulator.js';
import { bmcDrivers } from '../index.js';
import { BmcError, type BmcClient, type BmcErrorKind, type BootDevice, type PowerAction, type SystemInfo } from '../types.js';
import { RedfishDriver, type RedfishDriverOptions } from './client.js';

class Machine implements EmulatedSystem {
  power: 'On' | 'Off' = 'Off';
  bootTarget: BootTarget = 'None';
  bootEnabled: BootEnabled = 'Disabled';
  readonly resets: ResetType[] = [];
  fault: BmcFault | undefined;
  failReset: string | undefined;

  constructor(
    readonly id: string,
    readonly username = 'admin',
    readonly password = 'secret',
    readonly macs: string[] = ['0c:c4:7a:00:00:01'],
  ) {}

  info(): EmulatedSystemInfo {
    return {
      powerState: this.power,
      bootTarget: this.bootTarget,
      bootEnabled: this.bootEnabled,
      manufacturer: 'Supermicro',
      model: 'SYS-5019C-MR',
      serialNumber: `SN-${this.id}`,
      uuid: '4c4c4544-0000-1000-8000-000000000001',
      memoryGiB: 32,
      processorCount: 1,
      macs: this.macs,
    };
  }
  reset(type: ResetType): void {
    if (this.failReset !== undefined) throw new Error(this.failReset);
    this.resets.push(type);
    if (type === 'ForceOff' || type === 'GracefulShutdown') this.power = 'Off';
    else if (type !== 'Nmi') this.power = 'On';
  }
  setBoot(target: BootTarget, enabled: BootEnabled): void {
    this.bootTarget = target;
    this.bootEnabled = enabled;
  }
  bmcFault(): BmcFault | undefined {
    return this.fault;
  }
}

const clock = new FakeClock();
const systems = new Map<string, Machine>();
const emulator = new RedfishEmulator({ systems, clock });
let url: string;
let seq = 0;

before(async () => {
  ({ url } = await emulator.listen(0, '127.0.0.1'));
});
after(() => emulator.close());

/** A machine of its own for each test, so tests share the server and nothing else. */
function machine(opts: { username?: string; password?: string; macs?: string[] } = {}): Machine {
  const m = new Machine(`m-${String(++seq).padStart(3, '0')}`, opts.username, opts.password, opts.macs);
  systems.set(m.id, m);
  return m;
}

function connect(m: Machine, driver = new RedfishDriver(), password = m.password): BmcClient {
  return driver.connect({ driver: 'redfish', address: url, systemId: `/redfish/v1/Systems/${m.id}` }, { username: m.username, password });
}

/** Both ways the driver can send: its own node:http transport and a given fetch (undici). */
const transports: { name: string; opts: RedfishDriverOptions }[] = [
  { name: 'node:http', opts: {} },
  { name: 'fetch', opts: { fetch: globalThis.fetch } },
];

async function failure(p: Promise<unknown>): Promise<BmcError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof BmcError, `expected a BmcError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the call to fail');
}

for (const { name, opts } of transports) {
  test(`${name}: system() reads the ComputerSystem and its EthernetInterfaces`, async () => {
    const m = machine({ macs: ['0c:c4:7a:00:00:01', 'AA-BB-CC-00-00-02'] });
    m.power = 'On';
    m.setBoot('Pxe', 'Once');
    const before = emulator.requests;
    const info = await connect(m, new RedfishDriver(opts)).system();
    const expected: SystemInfo = {
      powerState: 'on',
      bootOverride: { device: 'pxe', once: true },
      manufacturer: 'Supermicro',
      model: 'SYS-5019C-MR',
      serialNumber: `SN-${m.id}`,
      uuid: '4c4c4544-0000-1000-8000-000000000001',
      memoryGiB: 32,
      processorCount: 1,
      macAddresses: ['0c:c4:7a:00:00:01', 'aa:bb:cc:00:00:02'],
    };
    assert.deepEqual(info, expected);
    // the system, the interface collection, one GET per interface
    assert.equal(emulator.requests - before, 4);
  });
}

test('the system is found from systemId in each form, or as the only member of the collection', async () => {
  const m = machine({ username: 'solo', password: 'only-mine' });
  const rows: { name: string; address: string; systemId?: string }[] = [
    { name: 'full path', address: url, systemId: `/redfish/v1/Systems/${m.id}` },
    { name: 'bare id', address: url, systemId: m.id },
    { name: 'path in the address (metal3 style)', address: `${url}/redfish/v1/Systems/${m.id}/` },
    { name: 'no systemId: the only system these credentials open', address: url },
  ];
  for (const row of rows) {
    const client = new RedfishDriver().connect(
      { driver: 'redfish', address: row.address, ...(row.systemId ? { systemId: row.systemId } : {}) },
      { username: 'solo', password: 'only-mine' },
    );
    assert.equal((await client.system()).serialNumber, `SN-${m.id}`, row.name);
  }
});

test('without systemId, a BMC with several systems is rejected with their paths', async () => {
  const a = machine({ username: 'shared', password: 'pw' });
  const b = machine({ username: 'shared', password: 'pw' });
  const client = new RedfishDriver().connect({ driver: 'redfish', address: url }, { username: 'shared', password: 'pw' });
  const err = await failure(client.powerState());
  assert.equal(err.kind, 'rejected');
  assert.equal(err.transient, false);
  assert.match(err.message, new RegExp(`has 2 systems \\(/redfish/v1/Systems/${a.id}, /redfish/v1/Systems/${b.id}\\); set systemId`));
});

test('setPower sends the ResetType for each action, and skips what is already so', async () => {
  const rows: { action: PowerAction; from: 'On' | 'Off'; sent: ResetType[]; after: 'on' | 'off' }[] = [
    { action: 'on', from: 'Off', sent: ['On'], after: 'on' },
    { action: 'on', from: 'On', sent: [], after: 'on' },
    { action: 'off', from: 'On', sent: ['ForceOff'], after: 'off' },
    { action: 'off', from: 'Off', sent: [], after: 'off' },
    { action: 'soft-off', from: 'On', sent: ['GracefulShutdown'], after: 'off' },
    { action: 'soft-off', from: 'Off', sent: [], after: 'off' },
    { action: 'reset', from: 'On', sent: ['ForceRestart'], after: 'on' },
    { action: 'cycle', from: 'On', sent: ['PowerCycle'], after: 'on' },
    { action: 'cycle', from: 'Off', sent: ['PowerCycle'], after: 'on' },
  ];
  for (const row of rows) {
    const m = machine();
    m.power = row.from;
    const client = connect(m);
    await client.setPower(row.action);
    const name = `${row.action} from ${row.from}`;
    assert.deepEqual(m.resets, row.sent, name);
    assert.equal(await client.powerState(), row.after, name);
  }
});

test('power on, off and reset in sequence', async () => {
  const m = machine();
  const client = connect(m);
  const seen: string[] = [await client.powerState()];
  for (const action of ['on', 'reset', 'off'] as const) {
    await client.setPower(action);
    seen.push(await client.powerState());
  }
  assert.deepEqual(seen, ['off', 'on', 'on', 'off']);
  assert.deepEqual(m.resets, ['On', 'ForceRestart', 'ForceOff']);
});

test('setBootDevice sets the override target, once or continuous, and system() reads it back', async () => {
  const rows: { device: BootDevice; once?: boolean; target: BootTarget; enabled: BootEnabled }[] = [
    { device: 'pxe', once: true, target: 'Pxe', enabled: 'Once' },
    { device: 'pxe', once: false, target: 'Pxe', enabled: 'Continuous' },
    { device: 'disk', target: 'Hdd', enabled: 'Continuous' },
    { device: 'bios', once: true, target: 'BiosSetup', enabled: 'Once' },
    { device: 'cdrom', once: true, target: 'Cd', enabled: 'Once' },
  ];
  for (const row of rows) {
    const m = machine();
    const client = connect(m);
    assert.deepEqual((await client.system()).bootOverride, { device: 'none', once: false });
    await client.setBootDevice(row.device, row.once === undefined ? undefined : { once: row.once });
    const name = `${row.device} once=${String(row.once)}`;
    assert.deepEqual([m.bootTarget, m.bootEnabled], [row.target, row.enabled], name);
    assert.deepEqual((await client.system()).bootOverride, { device: row.device, once: row.once === true }, name);
  }
});

for (const { name, opts } of transports) {
  test(`${name}: failures become BmcErrors of the right kind`, async () => {
    const closed = new RedfishEmulator({ systems: new Map() });
    const { url: closedUrl } = await closed.listen(0);
    await closed.close();

    const rows: {
      name: string;
      call: (driver: RedfishDriver) => Promise<unknown>;
      kind: BmcErrorKind;
      transient: boolean;
      status?: number;
      message: RegExp;
    }[] = [
      {
        name: 'wrong password',
        call: (d) => connect(machine(), d, 'wrong').powerState(),
        kind: 'unauthorized',
        transient: false,
        status: 401,
        message: /^redfish http:\/\/127\.0\.0\.1:\d+\/redfish\/v1\/Systems\/m-\d+: GET system: HTTP 401 \(check the BMC username and password\): The username or password is not valid for this system\.$/,
      },
      {
        name: 'unknown system',
        call: (d) => d.connect({ driver: 'redfish', address: url, systemId: 'no-such' }, { username: 'admin', password: 'secret' }).system(),
        kind: 'not-found',
        transient: false,
        status: 404,
        message: /\/redfish\/v1\/Systems\/no-such: GET system: HTTP 404: The resource at the URI \/redfish\/v1\/Systems\/no-such was not found\.$/,
      },
      {
        name: 'BMC drops the connection',
        call: (d) => {
          const m = machine();
          m.fault = { kind: 'unreachable' };
          return connect(m, d).setPower('on');
        },
        kind: 'unreachable',
        transient: true,
        message: /: GET system for ComputerSystem\.Reset \(On\): (connection reset|connection closed by the BMC)/,
      },
      {
        name: 'BMC slower than the timeout',
        call: (d) => {
          const m = machine();
          m.fault = { kind: 'slow', ms: 60_000 };
          return connect(m, d).powerState();
        },
        kind: 'timeout',
        transient: true,
        message: /: GET system: no answer within 150 ms$/,
      },
      {
        name: 'nothing listening',
        call: (d) => d.connect({ driver: 'redfish', address: closedUrl, systemId: 'm-001' }, { username: 'a', password: 'b' }).setPower('off'),
        kind: 'unreachable',
        transient: true,
        message: new RegExp(`^redfish ${closedUrl}/redfish/v1/Systems/m-001: GET system for ComputerSystem\\.Reset \\(ForceOff\\): connection refused$`),
      },
      {
        name: 'the machine refuses the reset',
        call: (d) => {
          const m = machine();
          m.failReset = 'the chassis is open';
          return connect(m, d).setPower('on');
        },
        kind: 'rejected',
        transient: false,
        status: 400,
        message: /\/redfish\/v1\/Systems\/m-\d+: POST ComputerSystem\.Reset \(On\): HTTP 400: the chassis is open$/,
      },
    ];
    for (const row of rows) {
      const err = await failure(row.call(new RedfishDriver({ ...opts, timeoutMs: 150 })));
      assert.equal(err.kind, row.kind, `${row.name}: ${err.message}`);
      assert.equal(err.transient, row.transient, row.name);
      assert.equal(err.status, row.status, row.name);
      assert.match(err.message, row.message, row.name);
    }
  });
}

test('a slow BMC still carries out a request the driver gave up on, once its delay has passed', async () => {
  const m = machine();
  m.fault = { kind: 'slow', ms: 10_000 };
  const err = await failure(connect(m, new RedfishDriver({ timeoutMs: 100 })).setBootDevice('pxe', { once: true }));
  assert.equal(err.kind, 'timeout');
  assert.match(err.message, /PATCH Boot \(Pxe, Once\): no answer within 100 ms$/);
  assert.equal(m.bootTarget, 'None');
  clock.advance(10_000);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual([m.bootTarget, m.bootEnabled], ['Pxe', 'Once']);
});

test('the emulator answers raw Redfish requests as a BMC does', async () => {
  const m = machine();
  const auth = { authorization: 'Basic ' + Buffer.from(`${m.username}:${m.password}`).toString('base64') };
  const rows: {
    name: string;
    method: string;
    path: string;
    headers?: Record<string, string>;
    body?: string;
    status: number;
    check?: (body: unknown, headers: Headers) => void;
  }[] = [
    {
      name: 'versions, no auth',
      method: 'GET',
      path: '/redfish',
      status: 200,
      check: (b) => assert.deepEqual(b, { v1: '/redfish/v1/' }),
    },
    {
      name: 'service root, no auth, without trailing slash',
      method: 'GET',
      path: '/redfish/v1',
      status: 200,
      check: (b) => assert.deepEqual(field(b, 'Systems'), { '@odata.id': '/redfish/v1/Systems' }),
    },
    {
      name: 'system needs credentials',
      method: 'GET',
      path: `/redfish/v1/Systems/${m.id}`,
      status: 401,
      check: (b, h) => {
        assert.equal(h.get('www-authenticate'), 'Basic realm="redfish"');
        assert.equal(field(field(b, 'error'), 'code'), 'Base.1.8.GeneralError');
      },
    },
    {
      name: 'system resource',
      method: 'GET',
      path: `/redfish/v1/Systems/${m.id}/`,
      headers: auth,
      status: 200,
      check: (b) => {
        assert.equal(field(b, '@odata.id'), `/redfish/v1/Systems/${m.id}`);
        assert.match(String(field(b, '@odata.type')), /^#ComputerSystem\.v1_\d+_\d+\.ComputerSystem$/);
        assert.equal(field(field(field(b, 'Actions'), '#ComputerSystem.Reset'), 'target'), `/redfish/v1/Systems/${m.id}/Actions/ComputerSystem.Reset`);
      },
    },
    {
      name: 'collection lists the systems these credentials open',
      method: 'GET',
      path: '/redfish/v1/Systems',
      headers: { authorization: 'Basic ' + Buffer.from('admin:secret').toString('base64') },
      status: 200,
      check: (b) => {
        const members = field(b, 'Members') as { '@odata.id': string }[];
        assert.ok(members.some((x) => x['@odata.id'] === `/redfish/v1/Systems/${m.id}`));
        assert.equal(field(b, 'Members@odata.count'), members.length);
      },
    },
    {
      name: 'invalid ResetType',
      method: 'POST',
      path: `/redfish/v1/Systems/${m.id}/Actions/ComputerSystem.Reset`,
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ ResetType: 'Explode' }),
      status: 400,
      check: (b) => {
        const error = field(b, 'error');
        assert.equal(field(error, 'code'), 'Base.1.8.GeneralError');
        const info = field(error, '@Message.ExtendedInfo') as { MessageId: string; Message: string }[];
        assert.equal(info[0]?.MessageId, 'Base.1.8.ActionParameterValueNotInList');
        assert.match(info[0]?.Message ?? '', /"Explode" for the parameter ResetType/);
      },
    },
    {
      name: 'Reset without ResetType',
      method: 'POST',
      path: `/redfish/v1/Systems/${m.id}/Actions/ComputerSystem.Reset`,
      headers: auth,
      body: '{}',
      status: 400,
      check: (b) => assert.match(String(field(field(b, 'error'), 'message')), /requires the parameter ResetType/),
    },
    {
      name: 'PATCH with a body that is not JSON',
      method: 'PATCH',
      path: `/redfish/v1/Systems/${m.id}`,
      headers: auth,
      body: '{"Boot":',
      status: 400,
      check: (b) => assert.match(String(field(field(b, 'error'), 'message')), /malformed JSON/),
    },
    {
      name: 'PATCH of an unknown boot target',
      method: 'PATCH',
      path: `/redfish/v1/Systems/${m.id}`,
      headers: auth,
      body: JSON.stringify({ Boot: { BootSourceOverrideTarget: 'Floppy' } }),
      status: 400,
      check: (b) => assert.match(String(field(field(b, 'error'), 'message')), /"Floppy" for the property Boot\/BootSourceOverrideTarget/),
    },
    {
      name: 'PATCH of a read-only property',
      method: 'PATCH',
      path: `/redfish/v1/Systems/${m.id}`,
      headers: auth,
      body: JSON.stringify({ PowerState: 'On' }),
      status: 400,
      check: (b) => assert.match(String(field(field(b, 'error'), 'message')), /PowerState is a read only property/),
    },
    {
      name: 'partial PATCH (target only) keeps the rest',
      method: 'PATCH',
      path: `/redfish/v1/Systems/${m.id}`,
      headers: auth,
      body: JSON.stringify({ Boot: { BootSourceOverrideTarget: 'Cd', BootSourceOverrideMode: 'UEFI' } }),
      status: 200,
      check: (b) => assert.deepEqual(
        [field(field(b, 'Boot'), 'BootSourceOverrideTarget'), field(field(b, 'Boot'), 'BootSourceOverrideEnabled')],
        ['Cd', 'Disabled'],
      ),
    },
    {
      name: 'POST to a system',
      method: 'POST',
      path: `/redfish/v1/Systems/${m.id}`,
      headers: auth,
      body: '{}',
      status: 405,
      check: (_, h) => assert.equal(h.get('allow'), 'GET, HEAD, PATCH'),
    },
    {
      name: 'EthernetInterface member',
      method: 'GET',
      path: `/redfish/v1/Systems/${m.id}/EthernetInterfaces/1`,
      headers: auth,
      status: 200,
      check: (b) => assert.equal(field(b, 'MACAddress'), '0c:c4:7a:00:00:01'),
    },
    { name: 'EthernetInterface past the last', method: 'GET', path: `/redfish/v1/Systems/${m.id}/EthernetInterfaces/2`, headers: auth, status: 404 },
    { name: 'unknown path', method: 'GET', path: '/redfish/v1/Managers', status: 404 },
  ];
  for (const row of rows) {
    const res = await fetch(`${url}${row.path}`, { method: row.method, headers: row.headers ?? {}, body: row.body ?? null });
    const text = await res.text();
    assert.equal(res.status, row.status, `${row.name}: ${text}`);
    if (row.status !== 204) assert.equal(res.headers.get('odata-version'), '4.0', row.name);
    row.check?.(JSON.parse(text) as unknown, res.headers);
  }
});

test('a successful Reset answers 204 No Content', async () => {
  const m = machine();
  const res = await fetch(`${url}/redfish/v1/Systems/${m.id}/Actions/ComputerSystem.Reset`, {
    method: 'POST',
    headers: { authorization: 'Basic ' + Buffer.from('admin:secret').toString('base64'), 'content-type': 'application/json' },
    body: JSON.stringify({ ResetType: 'On' }),
  });
  assert.equal(res.status, 204);
  assert.equal(await res.text(), '');
  assert.equal(m.power, 'On');
});

test('https: a BMC certificate we cannot verify is refused, unless insecureSkipVerify', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'metalplane-redfish-'));
  const m = new Machine('tls-1');
  m.power = 'On';
  let tlsEmulator: RedfishEmulator | undefined;
  try {
    const certs = await ensureCertificates({ dataDir: dir, sans: [] });
    tlsEmulator = new RedfishEmulator({ systems: new Map([[m.id, m]]), tls: { cert: certs.cert, key: certs.key } });
    const { url: httpsUrl } = await tlsEmulator.listen(0);
    assert.match(httpsUrl, /^https:\/\//);
    const endpoint = { driver: 'redfish', address: httpsUrl, systemId: m.id } as const;
    const credentials = { username: m.username, password: m.password };

    const err = await failure(new RedfishDriver().connect(endpoint, credentials).powerState());
    assert.equal(err.kind, 'protocol');
    assert.equal(err.transient, false);
    assert.match(err.message, /GET system: TLS certificate not trusted \([A-Z_]+\); set insecureSkipVerify/);

    const client = new RedfishDriver().connect({ ...endpoint, insecureSkipVerify: true }, credentials);
    assert.equal(await client.powerState(), 'on');
    await client.setPower('off');
    assert.deepEqual(m.resets, ['ForceOff']);
  } finally {
    await tlsEmulator?.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('bmcDrivers: redfish and ipmi; an ipmi endpoint needs an ipmi:// address', () => {
  const drivers = bmcDrivers();
  assert.ok(drivers['redfish'] instanceof RedfishDriver);
  assert.throws(
    () => drivers['ipmi']!.connect({ driver: 'ipmi', address: '10.0.0.5' }, { username: 'a', password: 'b' }),
    (err: unknown) => err instanceof BmcError && err.kind === 'rejected' && !err.transient && /expected ipmi:\/\/<host>\[:<port>\]/.test(err.message),
  );
});

test('connect rejects an address that is not an http(s) URL', () => {
  for (const address of ['10.0.0.5', 'ftp://10.0.0.5']) {
    assert.throws(
      () => new RedfishDriver().connect({ driver: 'redfish', address }, { username: 'a', password: 'b' }),
      (err: unknown) => err instanceof BmcError && err.kind === 'rejected',
      address,
    );
  }
});

function field(v: unknown, key: string): unknown {
  assert.ok(typeof v === 'object' && v !== null, `expected an object holding ${key}`);
  return (v as Record<string, unknown>)[key];
}
