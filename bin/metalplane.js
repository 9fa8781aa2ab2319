#!/usr/bin/env node
// The metalplane command line; the code is compiled from src/cli by `npm ci` (prepare → tsc).
import('../dist/src/cli/main.js').then((m) => m.main(process.argv)).catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
