// The web console at /ui/: the static files Vite built into dist/console/ (npm ci runs the build), the sign-in
// routes (console-session.ts) and the one multiplexed watch stream per tab (apiserver/watch-stream.ts). The
// console is a client like any other: it reads and writes through the kube API, the Metal API and /sim/v1.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { User } from '../apiserver/auth.js';
import type { Registry } from '../apiserver/registry.js';
import { registerWatchStream } from '../apiserver/watch-stream.js';
import { registerSessionRoutes, type ConsoleSessions } from './console-session.js';

/** dist/console/, next to the compiled server (dist/src/server/console.js). */
export const CONSOLE_DIR = fileURLToPath(new URL('../../console/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.map': 'application/json',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

// The console loads nothing from elsewhere; xyflow positions nodes with inline styles; elkjs runs in a worker.
const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; worker-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'X-Content-Type-Options': 'nosniff',
  // The sign-in token is in the fragment, which is never sent; this keeps paths out of other sites' logs too.
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
};

const MISSING_BUILD = `<!doctype html><html lang="en"><meta charset="utf-8"><title>metalplane console: not built</title>
<body style="font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;line-height:1.5">
<h1>The console is not built</h1>
<p>This metalplane serves the web console from <code>dist/console/</code>, which is missing. It is built by
<code>npm ci</code> (the <code>prepare</code> script); to build it alone run <code>npm run build:console</code>
in the metalplane checkout, then reload this page. The kube API, the Metal API and kubectl work without it.</p>
</body></html>`;

export interface ConsoleDeps {
  registry: Registry;
  sessions: ConsoleSessions;
  authenticate: (req: FastifyRequest) => Promise<User>;
  onWatch?: (delta: number, resource: string) => void;
  /** Where the built files are (default CONSOLE_DIR). */
  dir?: string;
}

export function registerConsole(app: FastifyInstance, deps: ConsoleDeps): void {
  const dir = deps.dir ?? CONSOLE_DIR;
  registerSessionRoutes(app, deps.sessions, deps.authenticate);
  registerWatchStream(app, '/ui/stream', { registry: deps.registry, authenticate: deps.authenticate, onWatch: deps.onWatch });

  const serve = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) reply.header(k, v);
    const rel = decodeURIComponent((req.params as { '*'?: string })['*'] ?? '');
    const index = join(dir, 'index.html');
    if (!existsSync(index)) return reply.code(503).header('Cache-Control', 'no-store').type('text/html; charset=utf-8').send(MISSING_BUILD);
    const file = normalize(join(dir, rel));
    const inside = file.startsWith(dir.endsWith(sep) ? dir : dir + sep);
    if (rel !== '' && inside && existsSync(file) && statSync(file).isFile()) {
      // Vite names assets by content hash: they never change under one name.
      const immutable = rel.startsWith('assets/');
      reply.header('Cache-Control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
      return reply.type(TYPES[extname(file)] ?? 'application/octet-stream').send(readFileSync(file));
    }
    // A missing file is a 404; a path without an extension is a client route, answered with the app.
    if (rel.startsWith('assets/') || extname(rel) !== '') return reply.code(404).type('text/plain').send(`no console file ${rel}\n`);
    return reply.header('Cache-Control', 'no-cache').type('text/html; charset=utf-8').send(readFileSync(index));
  };
  app.get('/ui', async (_req, reply) => reply.redirect('/ui/', 308));
  app.get('/ui/*', serve);
}
