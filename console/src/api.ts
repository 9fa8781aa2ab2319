// HTTP helpers: the console calls the same APIs as every client (the kube API, the Metal API, /sim/v1); the
// session cookie authenticates it (the server turns it into each surface's own credential).

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid: string;
  resourceVersion: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: Array<{ kind: string; name: string; uid: string }>;
}

export interface KubeObject<S = Record<string, unknown>, T = Record<string, unknown>> {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec?: S;
  status?: T;
  [k: string]: unknown;
}

export interface Resource {
  group: string;
  version: string;
  plural: string;
  namespaced: boolean;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function resourcePath(r: Resource, namespace?: string, name?: string): string {
  const base = r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
  const ns = r.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  return `${base}${ns}/${r.plural}${name ? '/' + encodeURIComponent(name) : ''}`;
}

async function errorOf(res: Response): Promise<HttpError> {
  const text = await res.text();
  let message = text || res.statusText;
  try {
    const body = JSON.parse(text) as { message?: string; errors?: string[] };
    message = body.message ?? body.errors?.join('; ') ?? message;
  } catch {
    /* not JSON: the text is the message */
  }
  return new HttpError(res.status, message);
}

/** What every request() of this session listens to: signing out aborts the ones still in flight (endSessionRequests). */
let sessionRequests = new AbortController();

/**
 * Aborts the requests still in flight, so none reaches the server after the session has ended there (its 401
 * would be an error in the browser console, and would read as "your session ended"). Requests made after this
 * go out as usual.
 */
export function endSessionRequests(): void {
  sessionRequests.abort();
  sessionRequests = new AbortController();
}

export async function request<T>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
  const res = await fetch(path, {
    method,
    signal: sessionRequests.signal,
    credentials: 'same-origin',
    headers: body !== undefined ? { 'content-type': contentType, accept: 'application/json' } : { accept: 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401) window.dispatchEvent(new Event('metalplane:unauthorized'));
  if (!res.ok) throw await errorOf(res);
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

export interface ObjectList {
  metadata: { resourceVersion: string };
  items: KubeObject[];
}

export const kube = {
  list: (r: Resource, namespace?: string) => request<ObjectList>('GET', resourcePath(r, namespace)),
  get: (r: Resource, namespace: string | undefined, name: string) => request<KubeObject>('GET', resourcePath(r, namespace, name)),
  create: (r: Resource, namespace: string | undefined, obj: unknown) => request<KubeObject>('POST', resourcePath(r, namespace) + '?fieldManager=metalplane-console', obj),
  merge: (r: Resource, namespace: string | undefined, name: string, patch: unknown) =>
    request<KubeObject>('PATCH', resourcePath(r, namespace, name) + '?fieldManager=metalplane-console', patch, 'application/merge-patch+json'),
  remove: (r: Resource, namespace: string | undefined, name: string) => request<KubeObject>('DELETE', resourcePath(r, namespace, name)),
};

export interface Session {
  user: string;
  operator: boolean;
  readOnly: boolean;
  projects: string[];
}

export const session = {
  get: () => request<({ signedIn: true } & Session) | { signedIn: false }>('GET', '/ui/session'),
  signIn: (body: { login?: string; token?: string }) => request<{ user: string }>('POST', '/ui/session', body),
  signOut: () => request<void>('DELETE', '/ui/session'),
};

/** Kinds the server serves, from discovery (CloudConfig appears here when it lands). */
export async function servedResources(): Promise<Set<string>> {
  const groups = await request<{ groups: Array<{ name: string; preferredVersion: { groupVersion: string } }> }>('GET', '/apis');
  const out = new Set<string>();
  await Promise.all(
    groups.groups.map(async (g) => {
      const list = await request<{ resources: Array<{ name: string }> }>('GET', `/apis/${g.preferredVersion.groupVersion}`).catch(() => ({ resources: [] }));
      for (const r of list.resources) if (!r.name.includes('/')) out.add(`${g.name}/${r.name}`);
    }),
  );
  return out;
}

export function age(ts: string | undefined, now = Date.now()): string {
  if (!ts) return '—';
  const s = Math.max(0, Math.round((now - Date.parse(ts)) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

export function duration(from?: string, to?: string): string {
  if (!from) return '';
  const ms = (to ? Date.parse(to) : Date.now()) - Date.parse(from);
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)}m ${Math.round((ms % 60_000) / 1000)}s`;
}
