// Chaos (the operator only): inject and clear simulated faults on a machine through /sim/v1, to watch the
// controllers remediate.
import { useState } from 'react';
import { request } from '../api';
import { usePoll } from '../poll';

const FAULTS = ['bmc-unreachable', 'power-stuck', 'disk-failure', 'agent-hang', 'nic-down', 'slow-boot'];

interface SimMachine {
  id: string;
  power: string;
  phase: string;
  faults: Array<{ type: string }>;
  metro?: string;
  rack?: string;
  plan?: string;
}

export function Chaos() {
  const machines = usePoll<{ machines: SimMachine[] }>('/sim/v1/machines', 2000);
  const [machine, setMachine] = useState('');
  const [fault, setFault] = useState('disk-failure');
  const [message, setMessage] = useState<{ ok: boolean; text: string }>();
  const act = async (method: 'POST' | 'DELETE', id: string, type?: string) => {
    try {
      if (method === 'POST') await request('POST', `/sim/v1/machines/${encodeURIComponent(id)}/faults`, { type });
      else await request('DELETE', `/sim/v1/machines/${encodeURIComponent(id)}/faults${type ? `?type=${type}` : ''}`);
      setMessage({ ok: true, text: method === 'POST' ? `Injected ${type} on ${id}.` : `Cleared faults on ${id}.` });
      machines.refresh();
    } catch (e) {
      setMessage({ ok: false, text: e instanceof Error ? e.message : String(e) });
    }
  };
  if (machines.error && !machines.data) return <p className="empty">The simulated datacenter is not running ({machines.error}). Start metalplane with <code>--sim</code> to inject faults.</p>;
  if (!machines.data) return <p className="muted" role="status">Loading machines…</p>;
  const list = machines.data.machines;
  return (
    <section aria-labelledby="chaos-title">
      <h1 id="chaos-title">Chaos</h1>
      <form
        className="filters"
        onSubmit={(e) => {
          e.preventDefault();
          if (machine) void act('POST', machine, fault);
        }}
      >
        <label>
          Machine{' '}
          <select value={machine} onChange={(e) => setMachine(e.target.value)} required data-testid="chaos-machine">
            <option value="">choose…</option>
            {list.map((m) => (
              <option key={m.id}>{m.id}</option>
            ))}
          </select>
        </label>
        <label>
          Fault{' '}
          <select value={fault} onChange={(e) => setFault(e.target.value)} data-testid="chaos-fault">
            {FAULTS.map((f) => (
              <option key={f}>{f}</option>
            ))}
          </select>
        </label>
        <button type="submit" disabled={!machine}>
          Inject
        </button>
      </form>
      {message && (
        <p className={message.ok ? 'notice' : 'error'} role="status">
          {message.text}
        </p>
      )}
      <table className="grid compact">
        <thead>
          <tr>
            <th scope="col">Machine</th>
            <th scope="col">Plan</th>
            <th scope="col">Power</th>
            <th scope="col">Phase</th>
            <th scope="col">Faults</th>
            <th scope="col">
              <span className="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {list.map((m) => (
            <tr key={m.id} data-sim-machine={m.id}>
              <td>{m.id}</td>
              <td>{m.plan}</td>
              <td>{m.power}</td>
              <td>{m.phase}</td>
              <td>{m.faults.map((f) => f.type).join(', ') || '—'}</td>
              <td>
                {m.faults.length > 0 && (
                  <button type="button" className="ghost" onClick={() => void act('DELETE', m.id)}>
                    Clear
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
