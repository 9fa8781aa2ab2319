// Starts the real `metalplane sim` as a child process (the simulated datacenter on its own loopback port) for
// end-to-end tests, and finds free loopback ports for it: the servers are told the sim's URL (--sim-url)
// before the sim can start, since it enrolls into them.
import { createServer } from 'node:net';
import { spawnUntilReady, type TestChild } from './server.js';

export interface TestSim extends TestChild {
  /** http://127.0.0.1:PORT as its ready line prints it. */
  url: string;
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

/** `metalplane sim ARGS…` (add --log-level warn yourself if wanted); resolves once it printed its ready line. */
export async function startTestSim(args: string[], timeoutMs = 30_000): Promise<TestSim> {
  const child = await spawnUntilReady(['sim', ...args], { ready: /BMCs and APIs:\s+(http:\/\/\S+)/, timeoutMs });
  return { ...child, url: child.match[1]! };
}
