// Device hours and cost per project, from the Metal API (/metal/v1/projects/{id}/usages), the ledger billing uses.
import { useEffect, useState } from 'react';
import { kube, request } from '../api';
import { useScope } from '../app';
import { R } from '../resources';

interface UsageLine {
  name: string;
  plan: string;
  facility: string;
  quantity: string;
  price: string;
  total: string;
}

export function Usage() {
  const { session, namespaces } = useScope();
  const projects = namespaces === 'all' ? session.projects : namespaces;
  const [rows, setRows] = useState<Array<{ project: string; usages?: UsageLine[]; error?: string }>>();
  useEffect(() => {
    let stopped = false;
    void Promise.all(
      projects.map(async (project) => {
        try {
          const ns = await kube.get(R.namespaces, undefined, project);
          const { usages } = await request<{ usages: UsageLine[] }>('GET', `/metal/v1/projects/${ns.metadata.uid}/usages`);
          return { project, usages };
        } catch (e) {
          return { project, error: e instanceof Error ? e.message : String(e) };
        }
      }),
    ).then((r) => {
      if (!stopped) setRows(r);
    });
    return () => {
      stopped = true;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [projects.join(',')]);
  if (!rows) return <p className="muted" role="status">Loading usage…</p>;
  return (
    <section aria-labelledby="usage-title">
      <h1 id="usage-title">Usage</h1>
      <p className="muted">Device hours are billed per started hour at the plan’s price when the device was created.</p>
      {rows.map((r) => {
        const total = (r.usages ?? []).reduce((n, u) => n + Number(u.total), 0);
        const hours = (r.usages ?? []).reduce((n, u) => n + Number(u.quantity), 0);
        return (
          <section key={r.project} aria-label={`Usage of ${r.project}`}>
            <h2>
              {r.project} <span className="muted">{hours} h · ${total.toFixed(2)}</span>
            </h2>
            {r.error && <p className="error">{r.error}</p>}
            {r.usages && r.usages.length === 0 && <p className="muted">No usage yet.</p>}
            {r.usages && r.usages.length > 0 && (
              <table className="grid compact">
                <thead>
                  <tr>
                    <th scope="col">Device</th>
                    <th scope="col">Plan</th>
                    <th scope="col">Facility</th>
                    <th scope="col">Hours</th>
                    <th scope="col">Price/h</th>
                    <th scope="col">Total</th>
                  </tr>
                </thead>
                <tbody>
                  {r.usages.map((u, i) => (
                    <tr key={i}>
                      <td>{u.name}</td>
                      <td>{u.plan}</td>
                      <td>{u.facility}</td>
                      <td>{u.quantity}</td>
                      <td>${u.price}</td>
                      <td>${u.total}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </section>
        );
      })}
    </section>
  );
}
