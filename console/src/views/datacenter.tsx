// Metros → facilities → racks, each rack drawn with its machines as slots coloured by Hardware state, with power
// and injected faults; a capacity matrix (metro × plan) and the queued devices with why they wait.
import { useMemo, useState } from 'react';
import type { KubeObject } from '../api';
import { slotStateOf, type SlotState, StateTag } from '../health';
import { useLive } from '../live';
import { usePoll, type SimFault } from '../poll';
import { R } from '../resources';
import { linkProps } from '../router';

interface HwSpec {
  metro: string;
  facility: string;
  rack?: string;
  slot?: number;
  plan: string;
  bmc: { address: string };
}

type Selection = { type: 'rack'; key: string } | { type: 'bmc'; address: string } | { type: 'machine'; name: string } | undefined;

export const SLOT_LEGEND: Array<[SlotState, string]> = [
  ['available', 'available'],
  ['provisioning', 'provisioning'],
  ['in-use', 'in use'],
  ['failed', 'failed'],
  ['maintenance', 'maintenance'],
  ['discovering', 'discovering'],
];

export function Datacenter() {
  const hardware = useLive(R.hardware);
  const devices = useLive(R.devices);
  const metros = useLive(R.metros);
  const faults = usePoll<{ faults: SimFault[] }>('/sim/v1/faults', 1500);
  const [selected, setSelected] = useState<Selection>();

  const faultsByMachine = useMemo(() => {
    const m = new Map<string, string[]>();
    for (const f of faults.data?.faults ?? []) m.set(f.machine, [...(m.get(f.machine) ?? []), f.type]);
    return m;
  }, [faults.data]);

  // metro → facility → rack → hardware (by slot)
  const tree = useMemo(() => {
    const t = new Map<string, Map<string, Map<string, KubeObject[]>>>();
    for (const hw of hardware.items) {
      const s = hw.spec as unknown as HwSpec;
      const fac = t.get(s.metro) ?? new Map<string, Map<string, KubeObject[]>>();
      t.set(s.metro, fac);
      const racks = fac.get(s.facility) ?? new Map<string, KubeObject[]>();
      fac.set(s.facility, racks);
      const rack = s.rack ?? 'unracked';
      racks.set(rack, [...(racks.get(rack) ?? []), hw]);
    }
    for (const fac of t.values()) for (const racks of fac.values()) for (const [k, list] of racks) racks.set(k, [...list].sort((a, b) => ((a.spec as unknown as HwSpec).slot ?? 0) - ((b.spec as unknown as HwSpec).slot ?? 0)));
    return t;
  }, [hardware.items]);

  const metroName = (code: string) => (metros.items.find((m) => m.metadata.name === code)?.spec as { name?: string } | undefined)?.name;

  if (hardware.status === 'error') return <p className="error" role="alert">Could not load the hardware: {hardware.error}</p>;
  if (hardware.status === 'loading') return <p className="muted" role="status">Loading racks…</p>;

  const isHighlighted = (hw: KubeObject): boolean => {
    const s = hw.spec as unknown as HwSpec;
    if (!selected) return false;
    if (selected.type === 'rack') return `${s.facility}/${s.rack ?? 'unracked'}` === selected.key;
    if (selected.type === 'bmc') return s.bmc.address === selected.address;
    return hw.metadata.name === selected.name;
  };
  const selectedHw = selected?.type === 'machine' ? hardware.items.find((h) => h.metadata.name === selected.name) : undefined;

  return (
    <section aria-labelledby="dc-title">
      <h1 id="dc-title">Datacenter</h1>
      {hardware.items.length === 0 ? (
        <p className="empty">No hardware is enrolled yet. Start with the simulated datacenter (<code>metalplane up --sim</code>) or apply Hardware objects.</p>
      ) : (
        <>
          <ul className="legend" aria-label="Slot colours">
            {SLOT_LEGEND.map(([s, label]) => (
              <li key={s}>
                <span className={`swatch slot-${s}`} aria-hidden="true" /> {label}
              </li>
            ))}
            <li>
              <span className="swatch slot-fault" aria-hidden="true" /> injected fault
            </li>
            {faults.error && <li className="muted">faults unavailable: {faults.error}</li>}
          </ul>
          <div className="dc-layout">
            <div className="metros">
              {[...tree].sort(([a], [b]) => a.localeCompare(b)).map(([metro, facilities]) => (
                <section key={metro} className="metro" aria-label={`Metro ${metro}`}>
                  <h2>
                    {metro} <span className="muted">{metroName(metro)}</span>
                  </h2>
                  {[...facilities].sort(([a], [b]) => a.localeCompare(b)).map(([facility, racks]) => (
                    <div key={facility} className="facility">
                      <h3>{facility}</h3>
                      <div className="racks">
                        {[...racks].sort(([a], [b]) => a.localeCompare(b)).map(([rack, machines]) => {
                          const key = `${facility}/${rack}`;
                          const rackSelected = selected?.type === 'rack' && selected.key === key;
                          return (
                            <div key={rack} className={`rack${rackSelected ? ' selected' : ''}`} data-rack={key}>
                              <button type="button" className="rack-head" aria-pressed={rackSelected} onClick={() => setSelected(rackSelected ? undefined : { type: 'rack', key })}>
                                {rack}
                              </button>
                              <ol className="slots">
                                {machines.map((hw) => {
                                  const state = slotStateOf(hw);
                                  const power = (hw.status?.power as string | undefined) ?? 'unknown';
                                  const f = faultsByMachine.get(hw.metadata.name) ?? [];
                                  const claim = hw.status?.claim as { namespace: string; name: string } | undefined;
                                  const label = `${hw.metadata.name}: ${state}, power ${power}${f.length ? `, faults: ${f.join(', ')}` : ''}${claim ? `, device ${claim.namespace}/${claim.name}` : ''}`;
                                  return (
                                    <li key={hw.metadata.name}>
                                      <button
                                        type="button"
                                        className={`slot slot-${state}${f.length ? ' faulted' : ''}${isHighlighted(hw) ? ' highlighted' : ''}`}
                                        data-machine={hw.metadata.name}
                                        data-state={state}
                                        data-fault={f.join(',')}
                                        title={label}
                                        aria-label={label}
                                        onClick={() => setSelected({ type: 'machine', name: hw.metadata.name })}
                                      >
                                        <span className={`power power-${power}`} aria-hidden="true" />
                                        <span className="slot-name">{(hw.spec as unknown as HwSpec).slot ?? '·'}</span>
                                        {f.length > 0 && <span className="fault-mark" aria-hidden="true">⚡</span>}
                                      </button>
                                    </li>
                                  );
                                })}
                              </ol>
                            </div>
                          );
                        })}
                      </div>
                    </div>
                  ))}
                </section>
              ))}
            </div>
            <aside className="panel" aria-label="Selection">
              {selectedHw ? (
                <MachinePanel hw={selectedHw} faults={faultsByMachine.get(selectedHw.metadata.name) ?? []} onSelectBmc={(address) => setSelected({ type: 'bmc', address })} />
              ) : selected?.type === 'bmc' ? (
                <p>
                  Highlighted: every machine behind the BMC <code>{selected.address}</code>.
                </p>
              ) : selected?.type === 'rack' ? (
                <p>Highlighted: the machines of rack {selected.key}.</p>
              ) : (
                <p className="muted">Select a rack or a machine. A machine’s BMC highlights every machine it serves.</p>
              )}
            </aside>
          </div>
          <Capacity hardware={hardware.items} />
          <Queued devices={devices.items} hardware={hardware.items} />
        </>
      )}
    </section>
  );
}

function MachinePanel({ hw, faults, onSelectBmc }: { hw: KubeObject; faults: string[]; onSelectBmc: (address: string) => void }) {
  const s = hw.spec as unknown as HwSpec;
  const claim = hw.status?.claim as { namespace: string; name: string } | undefined;
  const failure = hw.status?.lastFailure as { reason: string; message: string } | undefined;
  return (
    <div data-testid="machine-panel">
      <h2>{hw.metadata.name}</h2>
      <dl className="kv">
        <dt>State</dt>
        <dd>
          <StateTag state={hw.status?.state as string | undefined} />
        </dd>
        <dt>Power</dt>
        <dd>{(hw.status?.power as string | undefined) ?? 'unknown'}</dd>
        <dt>Plan</dt>
        <dd>{s.plan}</dd>
        <dt>Place</dt>
        <dd>
          {s.metro} / {s.facility} / {s.rack ?? '—'} / slot {s.slot ?? '—'}
        </dd>
        <dt>BMC</dt>
        <dd>
          <button type="button" className="linklike" onClick={() => onSelectBmc(s.bmc.address)}>
            {s.bmc.address}
          </button>
        </dd>
        <dt>Device</dt>
        <dd>{claim ? <a {...linkProps(`devices/${claim.namespace}/${claim.name}`)}>{`${claim.namespace}/${claim.name}`}</a> : '—'}</dd>
        <dt>Faults</dt>
        <dd>{faults.length ? faults.join(', ') : 'none'}</dd>
        {failure && (
          <>
            <dt>Last failure</dt>
            <dd>
              {failure.reason}: {failure.message}
            </dd>
          </>
        )}
      </dl>
    </div>
  );
}

export function capacityOf(hardware: KubeObject[]): Map<string, Map<string, { available: number; inUse: number; failed: number }>> {
  const m = new Map<string, Map<string, { available: number; inUse: number; failed: number }>>();
  for (const hw of hardware) {
    const s = hw.spec as unknown as HwSpec;
    const row = m.get(s.metro) ?? new Map();
    m.set(s.metro, row);
    const c = row.get(s.plan) ?? { available: 0, inUse: 0, failed: 0 };
    row.set(s.plan, c);
    const st = slotStateOf(hw);
    if (st === 'available') c.available++;
    else if (st === 'in-use' || st === 'provisioning') c.inUse++;
    else if (st === 'failed') c.failed++;
  }
  return m;
}

function Capacity({ hardware }: { hardware: KubeObject[] }) {
  const cap = capacityOf(hardware);
  const plans = [...new Set(hardware.map((h) => (h.spec as unknown as HwSpec).plan))].sort();
  return (
    <section aria-labelledby="cap-title">
      <h2 id="cap-title">Capacity</h2>
      <table className="grid capacity">
        <caption className="muted">available / in use / failed machines per metro and plan</caption>
        <thead>
          <tr>
            <th scope="col">Metro</th>
            {plans.map((p) => (
              <th key={p} scope="col">
                {p}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {[...cap].sort(([a], [b]) => a.localeCompare(b)).map(([metro, row]) => (
            <tr key={metro}>
              <th scope="row">{metro}</th>
              {plans.map((p) => {
                const c = row.get(p);
                return <td key={p}>{c ? <span title={`${c.available} available, ${c.inUse} in use, ${c.failed} failed`}><b className="ok">{c.available}</b> / {c.inUse} / <span className={c.failed ? 'bad' : ''}>{c.failed}</span></span> : <span className="muted">—</span>}</td>;
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

/** Where machines of `plan` are available, per metro and facility, most first. */
export function whereAvailable(hardware: KubeObject[], plan: string): Array<{ metro: string; facility: string; available: number }> {
  const by = new Map<string, { metro: string; facility: string; available: number }>();
  for (const hw of hardware) {
    const s = hw.spec as unknown as HwSpec;
    if (s.plan !== plan || slotStateOf(hw) !== 'available') continue;
    const k = `${s.metro}/${s.facility}`;
    const e = by.get(k) ?? { metro: s.metro, facility: s.facility, available: 0 };
    e.available++;
    by.set(k, e);
  }
  return [...by.values()].sort((a, b) => b.available - a.available || a.facility.localeCompare(b.facility));
}

/** "da11 (da): 2, ny5 (ny): 1", or that there is none. */
export function describeAvailability(hardware: KubeObject[], plan: string): string {
  const where = whereAvailable(hardware, plan);
  return where.length ? `Available ${plan}: ${where.map((w) => `${w.facility} (${w.metro}) ${w.available}`).join(', ')}.` : `No ${plan} is available in any metro.`;
}

/** Why a device has no machine: its Scheduled condition (NoCapacity, NoIPAddresses, InvalidPlan, …). */
export function unscheduledReason(d: KubeObject): { reason?: string; message?: string } | undefined {
  return ((d.status?.conditions as Array<{ type: string; status: string; reason?: string; message?: string }> | undefined) ?? []).find((c) => c.type === 'Scheduled' && c.status !== 'True');
}

function Queued({ devices, hardware }: { devices: KubeObject[]; hardware: KubeObject[] }) {
  const queued = devices.filter((d) => d.status?.state === 'queued' || (!d.status?.state && !d.metadata.deletionTimestamp));
  if (queued.length === 0) return null;
  return (
    <section aria-labelledby="queued-title">
      <h2 id="queued-title">Waiting for capacity</h2>
      <ul className="queued">
        {queued.map((d) => {
          const spec = d.spec as { plan: string; metro?: string; facility?: string };
          const why = unscheduledReason(d);
          return (
            <li key={d.metadata.uid} data-queued={`${d.metadata.namespace}/${d.metadata.name}`}>
              <a {...linkProps(`devices/${d.metadata.namespace}/${d.metadata.name}`)}>
                {d.metadata.namespace}/{d.metadata.name}
              </a>{' '}
              — {spec.plan} in {spec.facility ?? spec.metro}: {why?.reason ? <b>{why.reason}</b> : null} {why?.message ?? 'not scheduled yet'}.{' '}
              <span className="muted" data-testid="available-elsewhere">
                {describeAvailability(hardware, spec.plan)}
              </span>
            </li>
          );
        })}
      </ul>
    </section>
  );
}
