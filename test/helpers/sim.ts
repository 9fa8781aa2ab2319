// Starts the real `metalplane sim` as a child process (the simulated datacenter on its own loopback port) for
// end-to-end tests, and finds free loopback ports for it: the servers are told the sim's URL (--sim-url)
// before the sim can start, since it enrolls into them.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { BIN } from './server.js';

export interface TestSim {
  proc: ChildProcess;
  /** http://127.0.0.1:PORT as its ready line prints it. */
  url: string;
  stdout: () => string;
  stderr: () => string;
  /** SIGTERM and wait for exit. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
}

/** A loopback port nobody listens on right now (the OS picks it; closed again at once). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of children) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});

/** `metalplane sim ARGS…` (add --log-level warn yourself if wanted); resolves once it printed its ready line. */
export async function startTestSim(args: string[], timeoutMs = 30_000): Promise<TestSim> {
  const proc = spawn(process.execPath, [BIN, 'sim', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = /BMCs and APIs:\s+(http:\/\/\S+)/.exec(out);
    if (m) {
      return {
        proc,
        url: m[1]!,
        stdout: () => out,
        stderr: () => err,
        async stop() {
          if (proc.exitCode !== null) return proc.exitCode;
          proc.kill('SIGTERM');
          return exited;
        },
        async kill() {
          if (proc.exitCode === null) {
            proc.kill('SIGKILL');
            await exited;
          }
        },
      };
    }
    if (proc.exitCode !== null) throw new Error(`metalplane sim exited with ${proc.exitCode}\nstdout:\n${out}\nstderr:\n${err}`);
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`metalplane sim did not print its ready line in time\nstdout:\n${out}\nstderr:\n${err}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}
