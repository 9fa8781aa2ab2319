// A switch driver over HTTP: the whole wanted configuration of one machine's ports is PUT to
// `<base>/switch/v1/machines/<machine>` with a bearer token, and the answer says where each NIC is cabled.
// The simulated datacenter serves this when it runs as its own process (`metalplane sim`); a site's own
// fabric manager could serve it too. The call states the whole configuration (level-based), so retrying it
// is harmless.
//
//   PUT /switch/v1/machines/{machine}   { "ports": [SwitchPortConfig…], "bgp": [BgpNeighborConfig…] }
//   200 { "ports": [{ "nic", "switch", "port" }…] }
//   404 { "errors": [...] }  a NIC the fabric has no port for        → SwitchError not-found
//   4xx { "errors": [...] }  a configuration the fabric refuses       → SwitchError rejected
//   no answer, 5xx, 401/403                                          → SwitchError unreachable (retried)
import http from 'node:http';
import https from 'node:https';
import { SwitchError, type MachineNetworkConfig, type SwitchDriver, type SwitchPortRef } from './types.js';

export interface HttpSwitchDriverOptions {
  /** e.g. http://10.0.0.9:7081 */
  url: URL;
  token: string;
  /** The CA of an https:// fabric endpoint; absent: the system's trust store. */
  ca?: string;
  /** Per call, ms (default 10 000). */
  timeoutMs?: number;
}

export const SWITCH_API_PREFIX = '/switch/v1/machines/';

export class HttpSwitchDriver implements SwitchDriver {
  private readonly agent: http.Agent;

  constructor(private readonly opts: HttpSwitchDriverOptions) {
    if (opts.url.protocol !== 'http:' && opts.url.protocol !== 'https:') throw new Error(`the switch API URL must be http:// or https://, not ${opts.url.protocol}`);
    this.agent = opts.url.protocol === 'https:' ? new https.Agent({ keepAlive: true, ...(opts.ca ? { ca: opts.ca } : {}) }) : new http.Agent({ keepAlive: true });
  }

  async configureMachine(config: MachineNetworkConfig): Promise<SwitchPortRef[]> {
    const url = new URL(`${SWITCH_API_PREFIX}${encodeURIComponent(config.machine)}`, this.opts.url);
    const { status, body } = await this.put(url, { ports: config.ports, bgp: config.bgp });
    const said = errorsOf(body);
    if (status === 200) {
      const ports = (body as { ports?: unknown }).ports;
      if (!Array.isArray(ports)) throw new SwitchError('unreachable', `PUT ${url.href}: the answer has no ports list`);
      return ports.map((p: { nic?: unknown; switch?: unknown; port?: unknown }) => ({ nic: String(p.nic), switch: String(p.switch), port: String(p.port) }));
    }
    if (status === 401 || status === 403) throw new SwitchError('unreachable', `PUT ${url.href}: HTTP ${status}${said ? `: ${said}` : ''}; check the switch API token (metalplane up --sim-token-file)`);
    if (status === 404) throw new SwitchError('not-found', said ?? `PUT ${url.href}: HTTP 404`);
    if (status >= 400 && status < 500) throw new SwitchError('rejected', said ?? `PUT ${url.href}: HTTP ${status}`);
    throw new SwitchError('unreachable', `PUT ${url.href}: HTTP ${status}${said ? `: ${said}` : ''}`);
  }

  close(): void {
    this.agent.destroy();
  }

  private put(url: URL, body: unknown): Promise<{ status: number; body: unknown }> {
    const payload = JSON.stringify(body);
    const headers = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)), accept: 'application/json', authorization: `Bearer ${this.opts.token}` };
    const mod = url.protocol === 'https:' ? https : http;
    const timeoutMs = this.opts.timeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      const req = mod.request(url, { method: 'PUT', headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => reject(new SwitchError('unreachable', `PUT ${url.href}: ${err.message}`)));
        res.on('end', () => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      });
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', (err: NodeJS.ErrnoException) => reject(new SwitchError('unreachable', `PUT ${url.href}: ${err.code ?? ''}${err.code ? ' ' : ''}${err.message}`)));
      req.end(payload);
    });
  }
}

function errorsOf(body: unknown): string | undefined {
  const errors = typeof body === 'object' && body !== null ? (body as { errors?: unknown }).errors : undefined;
  return Array.isArray(errors) && errors.length > 0 ? errors.map(String).join('; ') : undefined;
}
