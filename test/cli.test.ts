// The command line as a user meets it: help everywhere, exit codes (0 ok, 1 failure, 2 usage), the ready line,
// /readyz, and a graceful SIGTERM.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runMetalplane, startTestServer } from './helpers/server.js';

describe('metalplane CLI', () => {
  const cases: Array<{ name: string; args: string[]; status: number; out?: RegExp; err?: RegExp }> = [
    { name: '--help', args: ['--help'], status: 0, out: /Usage: metalplane/ },
    { name: 'up --help', args: ['up', '--help'], status: 0, out: /--data-dir <dir>[\s\S]*--sim-machines[\s\S]*--tls-san/ },
    { name: 'version', args: ['version'], status: 0, out: /^metalplane \d+\.\d+\.\d+ \(Kubernetes API v1\.32/ },
    { name: 'version -o json', args: ['version', '-o', 'json'], status: 0, out: /"metalplane": "\d+\.\d+\.\d+"/ },
    { name: 'unknown command', args: ['bogus'], status: 2, err: /unknown command 'bogus'/ },
    { name: 'bad --listen', args: ['up', '--listen', 'nonsense'], status: 2, err: /"nonsense" is not HOST:PORT/ },
    { name: 'bad --sim-speed', args: ['up', '--sim-speed', '-3'], status: 2, err: /not a positive number or "max"/ },
    { name: 'bad --log-level', args: ['up', '--log-level', 'loud'], status: 2, err: /"loud" is not one of/ },
    { name: 'cert without key', args: ['up', '--tls-cert-file', '/nonexistent'], status: 2, err: /--tls-cert-file and --tls-key-file go together/ },
    { name: 'bad version output', args: ['version', '-o', 'xml'], status: 2, err: /unknown output format "xml"/ },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const r = await runMetalplane(c.args);
      assert.equal(r.status, c.status, `exit status\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
      if (c.out) assert.match(r.stdout, c.out);
      if (c.err) assert.match(r.stderr, c.err);
    });
  }

  it('prints the ready line, answers /readyz, refuses a busy port, and stops on SIGTERM with status 0', async () => {
    const s = await startTestServer();
    try {
      for (const what of [/kube API:\s+https:\/\/127\.0\.0\.1:\d+/, /kubeconfig:\s+\S+kubeconfig/, /admin token:\s+\S+admin-token/, /CA:\s+\S+ca\.crt/, /console:\s+http:\/\/127\.0\.0\.1:\d+\/ui\//]) {
        assert.match(s.stdout(), what);
      }
      const ready = await fetch(`${s.plainUrl}/readyz`);
      assert.equal(ready.status, 200);
      const busy = await runMetalplane(['up', '--data-dir', s.dataDir + '-busy', '--listen', `127.0.0.1:${s.port}`, '--no-sim', '--log-level', 'error']);
      assert.equal(busy.status, 1);
      assert.match(busy.stderr, /EADDRINUSE/);
      assert.equal(await s.stop(), 0);
    } finally {
      await s.kill();
      s.cleanup();
    }
  });
});
