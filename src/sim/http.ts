// The operator API of the simulated datacenter, mounted at /sim/v1 (the server authenticates it): machine
// snapshots and console output, fault injection and chaos. It is what `metalplane chaos` and the console talk
// to. Errors are `{ "errors": ["..."] }` with 400/404, saying what was wrong and what would be right.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FAULT_TYPES, isFaultType, type ChaosOptions, type FaultSpec, type FaultType } from './faults.js';
import { SimRequestError, type SimDatacenter } from './datacenter.js';
import type { MachineSnapshot } from './machine.js';

/** A machine as the API shows it: its snapshot plus where it is racked. */
export interface SimMachineView extends MachineSnapshot {
  metro?: string;
  facility?: string;
  rack?: string;
  slot?: number;
  plan?: string;
  macs: string[];
}

const FAULT_FIELDS = ['type', 'durationSeconds', 'factor'];
const CHAOS_FIELDS = ['rate', 'types', 'durationSeconds', 'seed'];

export function registerSimRoutes(app: FastifyInstance, sim: SimDatacenter): void {
  const route = (
    method: 'GET' | 'POST' | 'DELETE',
    url: string,
    handler: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>,
  ): void => {
    app.route({ method, url, handler, errorHandler: (err, _req, reply) => sendError(reply, err) });
  };

  const view = (id: string): SimMachineView => {
    const m = sim.machine(id);
    if (m === undefined) throw notFound(sim, id);
    const p = sim.placement(id);
    const v: SimMachineView = { ...m.snapshot(), macs: m.spec.nics.map((n) => n.mac) };
    if (p) Object.assign(v, { metro: p.metro, facility: p.facility, rack: p.rack, slot: p.slot, plan: p.plan });
    return v;
  };

  route('GET', '/sim/v1/machines', async () => ({ machines: sim.machines().map((m) => view(m.id)) }));

  route('GET', '/sim/v1/machines/:id', async (req) => view(paramId(req)));

  route('POST', '/sim/v1/machines/:id/faults', async (req, reply) => {
    const id = paramId(req);
    if (sim.machine(id) === undefined) throw notFound(sim, id);
    const spec = faultSpecOf(bodyObject(req.body, FAULT_FIELDS));
    const fault = sim.injectFault(id, spec);
    return reply.code(201).send({ machine: id, ...fault });
  });

  route('DELETE', '/sim/v1/machines/:id/faults', async (req) => {
    const id = paramId(req);
    const q = req.query as Record<string, unknown>;
    let type: FaultType | undefined;
    if (q['type'] !== undefined && q['type'] !== '') {
      if (!isFaultType(q['type'])) throw new SimRequestError(400, `unknown fault type ${JSON.stringify(q['type'])}; valid: ${FAULT_TYPES.join(', ')}`);
      type = q['type'];
    }
    const cleared = sim.clearFaults(id, type);
    return { machine: id, cleared, faults: sim.machine(id)?.faults.list() ?? [] };
  });

  route('GET', '/sim/v1/faults', async () => ({ faults: sim.listFaults(), chaos: sim.chaosStatus() }));

  route('GET', '/sim/v1/chaos', async () => sim.chaosStatus());

  route('POST', '/sim/v1/chaos', async (req) => sim.startChaos(chaosOptionsOf(bodyObject(req.body, CHAOS_FIELDS))));

  route('DELETE', '/sim/v1/chaos', async () => sim.stopChaos());

  // The machine's console output (its boot log), bounded per machine; `?after=<seq>` answers only newer lines.
  route('GET', '/sim/v1/machines/:id/console', async (req) => {
    const id = paramId(req);
    const m = sim.machine(id);
    if (m === undefined) throw notFound(sim, id);
    const raw = (req.query as Record<string, unknown>)['after'];
    let after = 0;
    if (raw !== undefined && raw !== '') {
      if (typeof raw !== 'string' || !/^\d{1,15}$/.test(raw)) {
        throw new SimRequestError(400, `after must be a line number (the "last" of an earlier answer), got ${JSON.stringify(raw)}`);
      }
      after = Number(raw);
    }
    return { machine: id, ...m.readConsole(after) };
  });

  // What the network was told (read-only): the racks' switches, and one machine's ports and BGP peers.
  route('GET', '/sim/v1/switches', async () => ({ switches: sim.fabric.switches() }));

  route('GET', '/sim/v1/switches/:id', async (req) => {
    const sw = sim.fabric.switch(paramId(req));
    if (!sw) throw new SimRequestError(404, `no switch "${paramId(req)}"; switches are named <facility>-<rack>-tor (GET /sim/v1/switches lists them)`);
    return sw;
  });

  route('GET', '/sim/v1/machines/:id/network', async (req) => {
    const id = paramId(req);
    if (sim.machine(id) === undefined) throw notFound(sim, id);
    return { machine: id, ...sim.fabric.machine(id) };
  });

  // Anything else under /sim/v1 answers in this API's error format, listing what exists.
  app.route({
    method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
    url: '/sim/v1/*',
    handler: async (req, reply) =>
      reply.code(404).send({
        errors: [
          `no ${req.method} ${req.url.split('?')[0]} in the sim API; it has GET /sim/v1/machines, GET /sim/v1/machines/{id}, ` +
            'POST|DELETE /sim/v1/machines/{id}/faults, GET /sim/v1/machines/{id}/console[?after=N], GET /sim/v1/machines/{id}/network, ' +
            'GET /sim/v1/switches[/{name}], ' +
            'GET /sim/v1/faults, GET|POST|DELETE /sim/v1/chaos',
        ],
      }),
  });
}

/** The `:id` path parameter. */
function paramId(req: FastifyRequest): string {
  return (req.params as { id: string }).id;
}

function notFound(sim: SimDatacenter, id: string): SimRequestError {
  const some = sim
    .machines()
    .slice(0, 3)
    .map((m) => m.id)
    .join(', ');
  return new SimRequestError(404, `no simulated machine "${id}"${some ? `; machines are named like ${some} (GET /sim/v1/machines lists them)` : ''}`);
}

/**
 * The JSON object of a request body. The server hands bodies over undecoded (a Buffer), a Fastify with its
 * default parsers an object: both are accepted. Unknown fields are refused, naming the known ones.
 */
function bodyObject(body: unknown, fields: readonly string[]): Record<string, unknown> {
  let value: unknown = body;
  if (Buffer.isBuffer(body) || typeof body === 'string') {
    const text = body.toString();
    if (text.trim() === '') throw new SimRequestError(400, `the request body is empty; expected a JSON object with ${fields.join(', ')}`);
    try {
      value = JSON.parse(text) as unknown;
    } catch (err) {
      throw new SimRequestError(400, `the request body is not JSON: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (value === undefined || value === null) throw new SimRequestError(400, `the request body is empty; expected a JSON object with ${fields.join(', ')}`);
  if (typeof value !== 'object' || Array.isArray(value)) throw new SimRequestError(400, `the request body must be a JSON object with ${fields.join(', ')}`);
  const obj = value as Record<string, unknown>;
  for (const k of Object.keys(obj)) {
    if (!fields.includes(k)) throw new SimRequestError(400, `unknown field "${k}"; known fields: ${fields.join(', ')}`);
  }
  return obj;
}

function faultSpecOf(body: Record<string, unknown>): FaultSpec {
  const { type, durationSeconds, factor } = body;
  if (type === undefined) throw new SimRequestError(400, `type is required; valid fault types: ${FAULT_TYPES.join(', ')}`);
  if (!isFaultType(type)) throw new SimRequestError(400, `unknown fault type ${JSON.stringify(type)}; valid: ${FAULT_TYPES.join(', ')}`);
  const spec: FaultSpec = { type };
  if (durationSeconds !== undefined) {
    if (typeof durationSeconds !== 'number' || !(durationSeconds > 0)) {
      throw new SimRequestError(400, `durationSeconds must be a positive number of seconds, got ${JSON.stringify(durationSeconds)}; leave it out for a fault that lasts until cleared`);
    }
    spec.durationMs = Math.round(durationSeconds * 1000);
  }
  if (factor !== undefined) {
    if (type !== 'slow-boot') throw new SimRequestError(400, `factor applies only to slow-boot, not to ${type}`);
    if (typeof factor !== 'number' || !(factor >= 1)) throw new SimRequestError(400, `factor must be a number of at least 1, got ${JSON.stringify(factor)}`);
    spec.factor = factor;
  }
  return spec;
}

function chaosOptionsOf(body: Record<string, unknown>): ChaosOptions {
  const { rate, types, durationSeconds, seed } = body;
  if (typeof rate !== 'number' || !(rate > 0)) throw new SimRequestError(400, `rate must be a positive number of faults per minute, got ${JSON.stringify(rate)}`);
  const opts: ChaosOptions = { rate };
  if (types !== undefined) {
    if (!Array.isArray(types) || types.length === 0) throw new SimRequestError(400, `types must be a non-empty list of fault types (${FAULT_TYPES.join(', ')}), got ${JSON.stringify(types)}`);
    for (const t of types) {
      if (!isFaultType(t)) throw new SimRequestError(400, `unknown fault type ${JSON.stringify(t)}; valid: ${FAULT_TYPES.join(', ')}`);
    }
    opts.types = types as FaultType[];
  }
  if (durationSeconds !== undefined) {
    if (typeof durationSeconds !== 'number' || !(durationSeconds > 0)) throw new SimRequestError(400, `durationSeconds must be a positive number of seconds, got ${JSON.stringify(durationSeconds)}`);
    opts.durationMs = Math.round(durationSeconds * 1000);
  }
  if (seed !== undefined) {
    if (typeof seed !== 'number' || !Number.isInteger(seed)) throw new SimRequestError(400, `seed must be an integer, got ${JSON.stringify(seed)}`);
    opts.seed = seed;
  }
  return opts;
}

function sendError(reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof SimRequestError) return reply.code(err.status).send({ errors: [err.message] });
  const status = typeof err === 'object' && err !== null ? (err as { statusCode?: unknown }).statusCode : undefined;
  const message = err instanceof Error ? err.message : String(err);
  if (typeof status === 'number' && status >= 400 && status < 500) return reply.code(status).send({ errors: [message] });
  return reply.code(500).send({ errors: [`internal error: ${message}`] });
}
