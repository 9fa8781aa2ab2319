// Events of the selected projects, live, newest first, filtered by object, type and reason.
import { useMemo, useState } from 'react';
import { age, type KubeObject } from '../api';
import { useScope } from '../app';
import { useLive } from '../live';
import { R } from '../resources';

const seen = (e: KubeObject): string => String(e.lastTimestamp ?? e.eventTime ?? e.metadata.creationTimestamp ?? '');

export function Events() {
  const { namespaces } = useScope();
  const events = useLive(R.events, namespaces);
  const [object, setObject] = useState('');
  const [type, setType] = useState('');
  const [reason, setReason] = useState('');
  const reasons = useMemo(() => [...new Set(events.items.map((e) => String(e.reason ?? '')))].filter(Boolean).sort(), [events.items]);
  const rows = useMemo(
    () =>
      events.items
        .filter((e) => !type || e.type === type)
        .filter((e) => !reason || e.reason === reason)
        .filter((e) => {
          if (!object) return true;
          const io = e.involvedObject as { kind?: string; name?: string };
          return `${io.kind ?? ''}/${io.name ?? ''}`.toLowerCase().includes(object.toLowerCase());
        })
        .sort((a, b) => seen(b).localeCompare(seen(a)))
        .slice(0, 500),
    [events.items, object, type, reason],
  );
  return (
    <section aria-labelledby="events-page-title">
      <h1 id="events-page-title">Events</h1>
      <div className="filters" role="search">
        <label>
          Object <input type="search" value={object} onChange={(e) => setObject(e.target.value)} placeholder="Device/web-1" />
        </label>
        <label>
          Type{' '}
          <select value={type} onChange={(e) => setType(e.target.value)}>
            <option value="">any</option>
            <option>Normal</option>
            <option>Warning</option>
          </select>
        </label>
        <label>
          Reason{' '}
          <select value={reason} onChange={(e) => setReason(e.target.value)}>
            <option value="">any</option>
            {reasons.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </label>
      </div>
      {events.status === 'loading' && <p className="muted" role="status">Loading events…</p>}
      {events.status === 'error' && <p className="error" role="alert">{events.error}</p>}
      {events.status === 'live' && rows.length === 0 && <p className="empty">No events{events.items.length ? ' match the filters' : ' yet'}.</p>}
      {rows.length > 0 && (
        <table className="grid compact" data-testid="events-table">
          <thead>
            <tr>
              <th scope="col">Age</th>
              <th scope="col">Type</th>
              <th scope="col">Reason</th>
              <th scope="col">Object</th>
              <th scope="col">Message</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((e) => {
              const io = e.involvedObject as { kind: string; name: string; namespace?: string };
              return (
                <tr key={e.metadata.uid} className={e.type === 'Warning' ? 'warn' : ''}>
                  <td>{age(seen(e))}</td>
                  <td>{String(e.type ?? '')}</td>
                  <td>{String(e.reason ?? '')}</td>
                  <td>
                    {io.namespace ? `${io.namespace}/` : ''}
                    {io.kind}/{io.name}
                  </td>
                  <td>{String(e.message ?? '')}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}
