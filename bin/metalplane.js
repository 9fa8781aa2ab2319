#!/usr/bin/env node
// The metalplane command line; the code is compiled from src/cli by `npm ci` (prepare → tsc).
import v8 from 'node:v8';

// Before anything allocates: no allocation-site pretenuring. Under durable writes a request's objects outlive a
// scavenge (they wait for the fsync), so V8 learns to allocate them straight into the old generation; from then
// on every request's short-lived objects are old, and whatever young objects they point to survive each
// scavenge with them. A GET then cost about half again as much in a server that had taken 40 000 creates as in
// one restarted on the same data (scavenges keeping 2.3 MB instead of 15 KB). V8 reads this flag at each GC, so
// setting it here works; heap sizes, by contrast, can only be set on the command line.
v8.setFlagsFromString('--no-allocation-site-pretenuring');

import('../dist/src/cli/main.js').then((m) => m.main(process.argv)).catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
