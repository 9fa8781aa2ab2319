// Test helper for the kill -9 durability test (run as a child process, never imported):
//   node dist/src/store/sqlite/crash-writer.js DB_PATH [IN_FLIGHT]
// Creates /crash/k<i> = crashValue(i) forever, IN_FLIGHT at a time, and prints each key on its own stdout
// line as soon as the create is acknowledged. The parent SIGKILLs it and checks every printed key survived.

import { openSqliteStore } from './sqlite-store.js';

export function crashValue(i: number): string {
  return JSON.stringify({ i, pad: 'x'.repeat(200 + (i % 50)) });
}

async function main(): Promise<void> {
  const [path, inFlightArg] = process.argv.slice(2);
  if (!path) throw new Error('usage: crash-writer DB_PATH [IN_FLIGHT]');
  const store = openSqliteStore(path);
  const inFlight = Number(inFlightArg ?? 32);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      const kv = await store.create(`/crash/k${i}`, crashValue(i));
      // stdout to a pipe is synchronous on Linux: the line is out before the next write is issued.
      process.stdout.write(`${kv.key}\n`);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
}

if (process.argv[1]?.endsWith('crash-writer.js')) {
  main().catch((err) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  });
}
