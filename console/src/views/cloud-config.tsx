// One CloudConfig: whether it is Ready or what it waits for (its conditions), the objects it reads, the devices
// that use it (and which of them run an older render), and the rendered document as machines receive it.
import { useEffect, useState } from 'react';
import { kube, type KubeObject } from '../api';
import { Badge, healthOf } from '../health';
import { useLive } from '../live';
import { R } from '../resources';
import { linkProps } from '../router';

interface Value {
  name: string;
  value?: string;
  valueFrom?: {
    fieldRef?: { kind: string; name: string; fieldPath: string };
    cloudConfigRef?: { name: string };
    secretKeyRef?: { name: string; key: string };
    configMapKeyRef?: { name: string; key: string };
  };
}

interface Status {
  conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>;
  contentType?: string;
  encoding?: string;
  userData?: string;
  secretRef?: { name: string; key: string };
  hash?: string;
  size?: number;
  staleDevices?: string[];
}

export function CloudConfigDetail({ namespace, name }: { namespace: string; name: string }) {
  const configs = useLive(R.cloudConfigs, [namespace]);
  const devices = useLive(R.devices, [namespace]);
  const cc = configs.items.find((c) => c.metadata.name === name);
  const st = (cc?.status ?? {}) as Status;
  const rendered = useRendered(namespace, st);

  if (configs.status === 'loading') return <p className="muted" role="status">Loading…</p>;
  if (configs.status === 'error') return <p className="error" role="alert">{configs.error}</p>;
  if (!cc)
    return (
      <p className="empty">
        There is no CloudConfig {namespace}/{name} (any more). <a {...linkProps('graph')}>The graph</a>
      </p>
    );
  const values = ((cc.spec as { values?: Value[] } | undefined)?.values ?? []) as Value[];
  const users = devices.items.filter((d) => (d.spec as { cloudConfigRef?: { name?: string } }).cloudConfigRef?.name === name);

  return (
    <article aria-labelledby="cc-title" data-testid="cloudconfig-detail">
      <p className="crumbs">
        <a {...linkProps('graph')}>Graph</a> / {namespace} / CloudConfig
      </p>
      <h1 id="cc-title">
        {name} <Badge health={healthOf(cc)} />
      </h1>
      <div className="columns">
        <section aria-labelledby="cc-cond-title">
          <h2 id="cc-cond-title">Conditions</h2>
          <Conditions conditions={st.conditions ?? []} />
          <h3>Inputs</h3>
          {values.length === 0 ? (
            <p className="muted">None: the parts are used as they are.</p>
          ) : (
            <ul className="plain" data-testid="cc-inputs">
              {values.map((v) => (
                <li key={v.name}>
                  <code>$({v.name})</code> ← <Source v={v} namespace={namespace} />
                </li>
              ))}
            </ul>
          )}
        </section>
        <section aria-labelledby="cc-devices-title">
          <h2 id="cc-devices-title">Devices</h2>
          {users.length === 0 ? (
            <p className="muted">No device names this CloudConfig in spec.cloudConfigRef.</p>
          ) : (
            <ul className="plain">
              {users.map((d) => (
                <li key={d.metadata.uid}>
                  <a {...linkProps(`devices/${namespace}/${d.metadata.name}`)}>{d.metadata.name}</a> <Badge health={healthOf(d)} />
                  {st.staleDevices?.includes(d.metadata.name) && <span className="notice"> runs an older render: reinstall it to apply this one</span>}
                </li>
              ))}
            </ul>
          )}
        </section>
      </div>
      <section aria-labelledby="cc-doc-title">
        <h2 id="cc-doc-title">Rendered user data</h2>
        {st.hash ? (
          <p className="muted">
            {st.contentType}, {st.size} bytes{st.encoding ? ` (${st.encoding})` : ''}, {st.hash.slice(0, 19)}…
          </p>
        ) : null}
        {rendered.error ? <p className="error">{rendered.error}</p> : rendered.text !== undefined ? <pre className="code">{rendered.text}</pre> : <p className="muted">Not rendered yet.</p>}
      </section>
    </article>
  );
}

function Source({ v, namespace }: { v: Value; namespace: string }) {
  const f = v.valueFrom;
  if (!f) return <span className="muted">a literal value</span>;
  if (f.fieldRef) {
    const target = f.fieldRef.kind === 'Device' ? `devices/${namespace}/${f.fieldRef.name}` : f.fieldRef.kind === 'CloudConfig' ? `cloudconfigs/${namespace}/${f.fieldRef.name}` : undefined;
    return (
      <span>
        {f.fieldRef.kind} {target ? <a {...linkProps(target)}>{f.fieldRef.name}</a> : f.fieldRef.name} <code>{f.fieldRef.fieldPath}</code>
      </span>
    );
  }
  if (f.cloudConfigRef)
    return (
      <span>
        the document of CloudConfig <a {...linkProps(`cloudconfigs/${namespace}/${f.cloudConfigRef.name}`)}>{f.cloudConfigRef.name}</a>
      </span>
    );
  if (f.secretKeyRef) return <span>Secret {f.secretKeyRef.name}, key {f.secretKeyRef.key}</span>;
  if (f.configMapKeyRef) return <span>ConfigMap {f.configMapKeyRef.name}, key {f.configMapKeyRef.key}</span>;
  return <span className="muted">—</span>;
}

export function Conditions({ conditions }: { conditions: Array<{ type: string; status: string; reason?: string; message?: string }> }) {
  return (
    <table className="grid compact">
      <thead>
        <tr>
          <th scope="col">Type</th>
          <th scope="col">Status</th>
          <th scope="col">Reason</th>
          <th scope="col">Message</th>
        </tr>
      </thead>
      <tbody>
        {conditions.map((c) => (
          <tr key={c.type}>
            <td>{c.type}</td>
            <td className={c.status === 'True' ? 'ok' : c.status === 'False' ? 'bad' : ''}>{c.status}</td>
            <td>{c.reason}</td>
            <td>{c.message}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/**
 * The rendered document as text: status.userData, or the owned Secret's key when it is large or secret;
 * gunzipped when the encoding is gzip+base64. Fetched again when the render's hash changes.
 */
function useRendered(namespace: string, st: Status): { text?: string; error?: string } {
  const [out, setOut] = useState<{ text?: string; error?: string }>({});
  useEffect(() => {
    if (!st.hash) {
      setOut({});
      return;
    }
    let stale = false;
    void (async () => {
      let b64: string | undefined;
      let isBase64 = false;
      if (st.secretRef) {
        const secret: KubeObject = await kube.get({ group: '', version: 'v1', plural: 'secrets', namespaced: true }, namespace, st.secretRef.name);
        b64 = (secret.data as Record<string, string> | undefined)?.[st.secretRef.key];
        isBase64 = true;
      } else {
        b64 = st.userData;
        isBase64 = st.encoding === 'gzip+base64';
      }
      if (b64 === undefined) return { text: '' };
      if (!isBase64) return { text: b64 };
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const gz = bytes[0] === 0x1f && bytes[1] === 0x8b;
      if (!gz) return { text: new TextDecoder().decode(bytes) };
      const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
      return { text: await new Response(stream).text() };
    })().then(
      (r) => !stale && setOut(r ?? {}),
      (e: unknown) => !stale && setOut({ error: `Could not read the rendered document: ${e instanceof Error ? e.message : String(e)}` }),
    );
    return () => {
      stale = true;
    };
  }, [namespace, st.hash, st.secretRef?.name, st.secretRef?.key, st.userData, st.encoding]);
  return out;
}
