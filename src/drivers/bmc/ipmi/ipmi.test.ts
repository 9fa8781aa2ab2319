// The IPMI driver against OpenIPMI's ipmi_sim on loopback (chassis control in lab/chassis-control.sh), checked
// with ipmitool as a second client; and the RMCP+ codec's refusals of bad packets, without a BMC.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startIpmiSim, freeUdpPort, type IpmiSim } from '../../../../lab/ipmi-sim.js';
import { toolSkipReason } from '../../../../test/helpers/server.js';
import { bmcDrivers } from '../index.js';
import { BmcError, type BmcClient } from '../types.js';
import { IpmiDriver, parseIpmiAddress } from './client.js';
import { ProtocolError, decodePacket, decodeResponse, encodePacket, encodeRequest, type SessionKeys } from './rmcp.js';

const USER = 'metalplane';

/** Polls until `read` gives `want` (bounded: 40 × 250 ms), returning the last value read. */
async function eventually<T>(read: () => Promise<T>, want: T): Promise<T> {
  let got = await read();
  for (let i = 0; i < 40 && got !== want; i++) {
    await new Promise((r) => setTimeout(r, 250));
    got = await read();
  }
  return got;
}
const PASSWORD = 'lab-secret-1';

test('parseIpmiAddress: ipmi://host[:port] only', () => {
  const rows: Array<{ name: string; address: string; want: { host: string; port: number } | RegExp }> = [
    { name: 'default port', address: 'ipmi://10.0.0.5', want: { host: '10.0.0.5', port: 623 } },
    { name: 'explicit port', address: 'ipmi://127.0.0.1:6230', want: { host: '127.0.0.1', port: 6230 } },
    { name: 'ipv6', address: 'ipmi://[::1]:623', want: { host: '::1', port: 623 } },
    { name: 'host name', address: 'ipmi://bmc-r07-12.lab', want: { host: 'bmc-r07-12.lab', port: 623 } },
    { name: 'bare address', address: '10.0.0.5', want: /not a URL; expected ipmi:\/\/<host>/ },
    { name: 'redfish url', address: 'https://10.0.0.5', want: /scheme https; an IPMI BMC is addressed as ipmi:/ },
    { name: 'credentials', address: 'ipmi://root:calvin@10.0.0.5', want: /belong in the credentials Secret/ },
    { name: 'path', address: 'ipmi://10.0.0.5/redfish', want: /path or query/ },
  ];
  for (const r of rows) {
    const got = parseIpmiAddress(r.address);
    if (r.want instanceof RegExp) assert.match(String(got), r.want, r.name);
    else assert.deepEqual(got, r.want, r.name);
  }
});

test('connect refuses what IPMI cannot carry, without I/O', () => {
  const d = bmcDrivers()['ipmi']!;
  assert.ok(d instanceof IpmiDriver);
  const rows = [
    { name: 'not an ipmi address', address: '10.0.0.5', creds: { username: 'a', password: 'b' }, want: /ipmi:\/\/<host>/ },
    { name: 'password over 20 bytes', address: 'ipmi://10.0.0.5', creds: { username: 'a', password: 'x'.repeat(21) }, want: /longer than IPMI 2.0's 20 bytes/ },
    { name: 'user over 16 bytes', address: 'ipmi://10.0.0.5', creds: { username: 'u'.repeat(17), password: 'b' }, want: /longer than IPMI's 16 bytes/ },
  ];
  for (const r of rows) {
    assert.throws(
      () => d.connect({ driver: 'ipmi', address: r.address }, r.creds),
      (e: unknown) => e instanceof BmcError && e.kind === 'rejected' && !e.transient && r.want.test(e.message),
      r.name,
    );
  }
});

test('RMCP+ codec: packets that are not what they claim are refused, not trusted', () => {
  const keys: SessionKeys = { k1: Buffer.alloc(20, 1), aesKey: Buffer.alloc(16, 2) };
  const good = encodePacket({ payloadType: 0, sessionId: 7, sequence: 3, payload: encodeRequest({ netFn: 0, cmd: 1 }, 5) }, keys);
  const decoded = decodePacket(good, keys);
  assert.deepEqual([decoded.sessionId, decoded.sequence, decoded.payloadType], [7, 3, 0]);
  const tampered = Buffer.from(good);
  tampered[20] = tampered[20]! ^ 0xff;
  const rows: Array<{ name: string; buf: Buffer; keys?: SessionKeys; want: RegExp }> = [
    { name: 'empty', buf: Buffer.alloc(0), want: /not an RMCP/ },
    { name: 'not rmcp', buf: Buffer.from('GET / HTTP/1.1\r\n\r\n'), want: /not an RMCP/ },
    { name: 'oversized', buf: Buffer.alloc(4096, 6), want: /larger than any IPMI message/ },
    { name: 'ipmi 1.5 answer', buf: Buffer.from([6, 0, 0xff, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), want: /not RMCP\+/ },
    { name: 'length past the end', buf: Buffer.from([6, 0, 0xff, 7, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0]), want: /runs past the end/ },
    { name: 'tampered payload', buf: tampered, keys, want: /integrity check/ },
    { name: 'plain answer in an encrypted session', buf: encodePacket({ payloadType: 0, sessionId: 7, sequence: 3, payload: Buffer.alloc(8) }), keys, want: /without integrity/ },
    { name: 'encrypted answer before keys', buf: good, want: /encrypted answer before the session has keys/ },
  ];
  for (const r of rows) assert.throws(() => decodePacket(r.buf, r.keys), (e: unknown) => e instanceof ProtocolError && r.want.test(e.message), r.name);
  assert.throws(() => decodeResponse(Buffer.from([0x81, 4, 0, 0x20, 0, 1, 0, 0])), /checksum/);
});

const skip = toolSkipReason(['sh', '-c', 'command -v ipmi_sim'], 'install openipmi (apt-get install openipmi) to test the IPMI driver against ipmi_sim');
const skipTool = skip ?? toolSkipReason(['ipmitool', '-V'], 'install ipmitool (apt-get install ipmitool)');

describe('IPMI driver against ipmi_sim', { skip: skipTool }, () => {
  let dir: string;
  let sim: IpmiSim;
  let bmc: BmcClient;
  const driver = new IpmiDriver({ timeoutMs: 6000, retryMs: 500 });

  const ipmitool = (...args: string[]): string => {
    const r = spawnSync('ipmitool', ['-I', 'lanplus', '-C', '3', '-H', sim.host, '-p', String(sim.port), '-U', USER, '-P', PASSWORD, ...args], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, `ipmitool ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mp-ipmi-'));
    sim = await startIpmiSim({ dir, username: USER, password: PASSWORD });
    bmc = driver.connect({ driver: 'ipmi', address: sim.address }, { username: USER, password: PASSWORD });
    // ipmi_sim takes a moment to bind its port; bounded (20 × at least 250 ms). Before it binds, the loopback
    // answers at once with ECONNREFUSED, so each try waits out its turn.
    for (let i = 0; ; i++) {
      const turn = new Promise((r) => setTimeout(r, 250));
      try {
        await new IpmiDriver({ timeoutMs: 500, retryMs: 250 }).connect({ driver: 'ipmi', address: sim.address }, { username: USER, password: PASSWORD }).powerState();
        break;
      } catch (e) {
        if (i >= 20) throw new Error(`ipmi_sim did not answer: ${(e as Error).message}\n${sim.output()}`);
        await turn;
      }
    }
  });

  after(async () => {
    await sim?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('power on, cycle, off: the driver and ipmitool see the same state', async () => {
    assert.equal(await bmc.powerState(), 'off');
    assert.match(ipmitool('power', 'status'), /Chassis Power is off/);
    await bmc.setPower('on');
    assert.equal(await bmc.powerState(), 'on');
    assert.match(ipmitool('power', 'status'), /Chassis Power is on/);
    await bmc.setPower('on'); // already on: nothing to do, no second power-on event
    await bmc.setPower('cycle');
    // A BMC cycles as off, a pause (the chassis' power cycle interval, about a second here), then on.
    assert.equal(await eventually(() => bmc.powerState(), 'on'), 'on');
    await bmc.setPower('reset');
    await bmc.setPower('off');
    assert.equal(await bmc.powerState(), 'off');
    assert.match(ipmitool('power', 'status'), /Chassis Power is off/);
    const events = (await readFile(join(sim.stateDir, 'events'), 'utf8')).trim().split('\n').map((l) => l.split(' ')[1]);
    // on; cycle = off, on; reset = off, on, reset; off.
    assert.deepEqual(events, ['on', 'off', 'on', 'off', 'on', 'reset', 'off']);
    // A change made with ipmitool is what the driver reads next.
    ipmitool('power', 'on');
    assert.equal((await bmc.system()).powerState, 'on');
    await bmc.setPower('off');
  });

  test('boot device: PXE once, then disk; ipmitool reads what the driver set, and the chassis got it', async () => {
    await bmc.setBootDevice('pxe', { once: true });
    assert.match(ipmitool('chassis', 'bootparam', 'get', '5'), /Boot Device Selector : Force PXE/);
    assert.equal(await readFile(join(sim.stateDir, 'boot'), 'utf8'), 'pxe\n');
    assert.equal((await bmc.system()).bootOverride.device, 'pxe');
    await bmc.setBootDevice('disk');
    assert.match(ipmitool('chassis', 'bootparam', 'get', '5'), /Force Boot from default Hard-Drive/);
    assert.equal(await readFile(join(sim.stateDir, 'boot'), 'utf8'), 'default\n');
    assert.equal((await bmc.system()).bootOverride.device, 'disk');
    ipmitool('chassis', 'bootdev', 'pxe');
    assert.equal((await bmc.system()).bootOverride.device, 'pxe');
  });

  test('a wrong password or an unknown user is a permanent, clear error', async () => {
    const rows = [
      { name: 'wrong password', creds: { username: USER, password: 'not-the-password' }, want: /refused user "metalplane": wrong password/ },
      { name: 'unknown user', creds: { username: 'nobody', password: PASSWORD }, want: /refused user "nobody"/ },
    ];
    for (const r of rows) {
      await assert.rejects(
        driver.connect({ driver: 'ipmi', address: sim.address }, r.creds).powerState(),
        (e: unknown) => e instanceof BmcError && e.kind === 'unauthorized' && !e.transient && r.want.test(e.message),
        r.name,
      );
    }
    // The BMC still serves the right credentials afterwards.
    assert.equal(await bmc.powerState(), 'off');
  });

  test('an unreachable BMC is a transient error naming the address', async () => {
    const port = await freeUdpPort();
    await assert.rejects(
      new IpmiDriver({ timeoutMs: 1500, retryMs: 300 }).connect({ driver: 'ipmi', address: `ipmi://127.0.0.1:${port}` }, { username: USER, password: PASSWORD }).setPower('on'),
      (e: unknown) => e instanceof BmcError && e.kind === 'unreachable' && e.transient && e.message.includes(`127.0.0.1:${port}`),
    );
  });
});
