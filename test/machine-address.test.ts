// `metalplane up --machine-address`: where machines reach the server when that is not its listen address — a
// load balancer in front of replicas, a DNS name. The simulated machines follow what they are told over real
// HTTP, so their consoles show which address the iPXE script, the agent and cloud-init were given.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from 'commander';
import { parseMachineAddress } from '../src/cli/main.js';
import { api, startTestServer, waitFor, type TestServer } from './helpers/server.js';

test('parseMachineAddress: HOST or HOST:PORT, IPv6 in brackets with a port; anything else is refused saying what would do', () => {
  const ok: Array<[string, ReturnType<typeof parseMachineAddress>]> = [
    ['lb.example.net', { host: 'lb.example.net' }],
    ['10.0.0.10:7080', { host: '10.0.0.10', port: 7080 }],
    ['[fd00::10]:443', { host: 'fd00::10', port: 443 }],
    ['fd00::10', { host: 'fd00::10' }],
    [' localhost ', { host: 'localhost' }],
  ];
  for (const [input, want] of ok) assert.deepEqual(parseMachineAddress(input), want, input);
  for (const bad of ['', 'http://lb.example.net', 'lb:0', 'lb:70000', 'a b', 'lb:', '[fd00::10']) {
    assert.throws(() => parseMachineAddress(bad), (e: Error) => e instanceof InvalidArgumentError && /HOST or HOST:PORT|out of range/.test(e.message), JSON.stringify(bad));
  }
});

describe('up --machine-address localhost', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ args: ['--sim', '--sim-machines', '1', '--sim-speed', 'max', '--machine-address', 'localhost'] });
  });
  after(async () => {
    await s?.stop();
    s?.cleanup();
  });

  test('the machine netboots and its agent talks TLS to that name (in the certificate), not to the listen address', async () => {
    const machines = (await api(s, 'GET', '/sim/v1/machines')).body.machines as Array<{ id: string }>;
    const id = machines[0]!.id;
    const text = await waitFor('the agent started', async () => {
      const r = await api(s, 'GET', `/sim/v1/machines/${id}/console`);
      const t = (r.body.lines as Array<{ text: string }>).map((l) => l.text).join('\n');
      return /metalplane-agent: started/.test(t) ? t : undefined;
    }, 30_000, 100);
    assert.match(text, new RegExp(`iPXE: kernel http://localhost:${s.port}/boot/v1/assets/vmlinuz`));
    assert.match(text, new RegExp(`metalplane-agent: started, talking to https://localhost:${s.port}`));
    // And it got on with the work over that address: discovery finished.
    await waitFor('the machine available', async () => {
      const hw = (await api(s, 'GET', '/apis/metalplane.dev/v1alpha1/hardware')).body.items as Array<{ status?: { state?: string } }>;
      return hw.length === 1 && hw[0]!.status?.state === 'available' ? true : undefined;
    }, 30_000, 100);
  });
});
