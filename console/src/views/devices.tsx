// The devices of the selected projects, live, with a state filter and a search box.
import { useMemo, useState } from 'react';
import { age, type KubeObject } from '../api';
import { useScope } from '../app';
import { StateTag } from '../health';
import { useLive } from '../live';
import { R } from '../resources';
import { linkProps } from '../router';

export const DEVICE_STATES = ['queued', 'provisioning', 'active', 'powering_off', 'powering_on', 'inactive', 'reinstalling', 'deprovisioning', 'failed'];

export function ipsOf(d: KubeObject): string[] {
  return ((d.status?.ipAddresses as Array<{ address: string; public: boolean; family: number }> | undefined) ?? []).map((ip) => ip.address);
}

export function Devices() {
  const { namespaces, session } = useScope();
  const devices = useLive(R.devices, namespaces);
  const [search, setSearch] = useState('');
  const [state, setState] = useState('');
  const rows = useMemo(() => {
    const q = search.trim().toLowerCase();
    return devices.items
      .filter((d) => !state || d.status?.state === state)
      .filter((d) => {
        if (!q) return true;
        const spec = d.spec as { hostname?: string; plan?: string; metro?: string; tags?: string[] };
        return [d.metadata.name, d.metadata.namespace, spec.hostname, spec.plan, spec.metro, ...(spec.tags ?? []), ...ipsOf(d)].some((v) => v?.toLowerCase().includes(q));
      });
  }, [devices.items, search, state]);
  return (
    <section aria-labelledby="devices-title">
      <div className="page-head">
        <h1 id="devices-title">Devices</h1>
        {!session.readOnly && (
          <a className="button" {...linkProps('devices/new')}>
            New device
          </a>
        )}
      </div>
      <div className="filters" role="search">
        <label>
          Search <input type="search" value={search} onChange={(e) => setSearch(e.target.value)} placeholder="hostname, plan, IP, tag…" />
        </label>
        <label>
          State{' '}
          <select value={state} onChange={(e) => setState(e.target.value)}>
            <option value="">any</option>
            {DEVICE_STATES.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <span className="muted" aria-live="polite">
          {devices.status === 'live' ? `${rows.length} of ${devices.items.length}` : ''}
        </span>
      </div>
      {devices.status === 'error' && <p className="error" role="alert">Could not load devices: {devices.error}</p>}
      {devices.status === 'loading' && <p className="muted" role="status">Loading devices…</p>}
      {devices.status === 'live' && devices.items.length === 0 && (
        <p className="empty">
          No devices yet. <a {...linkProps('devices/new')}>Create one</a>, or <code>kubectl apply -f examples/device.yaml</code>.
        </p>
      )}
      {rows.length > 0 && (
        <table className="grid" data-testid="devices-table">
          <thead>
            <tr>
              <th scope="col">Hostname</th>
              <th scope="col">Project</th>
              <th scope="col">State</th>
              <th scope="col">Plan</th>
              <th scope="col">Metro</th>
              <th scope="col">IPs</th>
              <th scope="col">Age</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((d) => {
              const spec = d.spec as { hostname?: string; plan: string; metro?: string; facility?: string };
              const st = d.status as { state?: string; metro?: string; provisioningPercentage?: number } | undefined;
              return (
                <tr key={d.metadata.uid} data-device={`${d.metadata.namespace}/${d.metadata.name}`}>
                  <td>
                    <a {...linkProps(`devices/${d.metadata.namespace}/${d.metadata.name}`)}>{spec.hostname ?? d.metadata.name}</a>
                  </td>
                  <td>{d.metadata.namespace}</td>
                  <td>
                    <StateTag state={st?.state} />
                    {st?.state === 'provisioning' && st.provisioningPercentage !== undefined && <span className="muted"> {Math.round(st.provisioningPercentage)}%</span>}
                  </td>
                  <td>{spec.plan}</td>
                  <td>{st?.metro ?? spec.metro ?? spec.facility}</td>
                  <td className="mono">{ipsOf(d).join(', ') || '—'}</td>
                  <td>{age(d.metadata.creationTimestamp)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}
