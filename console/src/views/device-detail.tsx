// One device: spec and status, conditions, IPs, its Workflows as a timeline of actions (durations, where it
// failed), the actions asked for (reboot, power, …), its events and its user data; and the actions, each
// confirmed first, asked for with the metalplane.dev/action annotation (as `kubectl annotate` does).
import { useEffect, useRef, useState } from 'react';
import { age, duration, kube, request, type KubeObject } from '../api';
import { usePoll } from '../poll';
import { describeAvailability, unscheduledReason } from './datacenter';
import { useScope } from '../app';
import { Badge, healthOf, StateTag } from '../health';
import { useLive } from '../live';
import { R } from '../resources';
import { linkProps, navigate } from '../router';

const ACTIONS: Array<{ type: string; label: string; danger?: boolean; explain: string }> = [
  { type: 'power_on', label: 'Power on', explain: 'Power the machine on through its BMC.' },
  { type: 'power_off', label: 'Power off', explain: 'Power the machine off through its BMC. The device becomes inactive.' },
  { type: 'reboot', label: 'Reboot', explain: 'Reset the machine through its BMC.' },
  { type: 'reinstall', label: 'Reinstall', danger: true, explain: 'Wipe the disks and install the operating system again. Data on the machine is lost.' },
  { type: 'rescue', label: 'Rescue', explain: 'Boot the machine into the in-memory rescue environment.' },
];

interface ActionStatus {
  name: string;
  state: string;
  attempts?: number;
  startedAt?: string;
  finishedAt?: string;
  message?: string;
  progress?: number;
}

export function DeviceDetail({ namespace, name }: { namespace: string; name: string }) {
  const { session } = useScope();
  const devices = useLive(R.devices, [namespace]);
  const workflows = useLive(R.workflows, [namespace]);
  const events = useLive(R.events, [namespace]);
  const [confirm, setConfirm] = useState<{ type: string; label: string; explain: string; danger?: boolean } | undefined>();
  const [error, setError] = useState<string>();
  const device = devices.items.find((d) => d.metadata.name === name);

  if (devices.status === 'loading') return <p className="muted" role="status">Loading…</p>;
  if (devices.status === 'error') return <p className="error" role="alert">{devices.error}</p>;
  if (!device)
    return (
      <p className="empty">
        There is no device {namespace}/{name} (any more). <a {...linkProps('devices')}>All devices</a>
      </p>
    );

  const spec = device.spec as { hostname?: string; plan: string; metro?: string; facility?: string; operatingSystem: string; userData?: string; cloudConfigRef?: { name: string }; tags?: string[]; sshKeys?: string[] };
  const st = (device.status ?? {}) as {
    state?: string;
    hardware?: string;
    metro?: string;
    facility?: string;
    ipAddresses?: Array<{ address: string; cidr: number; gateway: string; family: number; public: boolean }>;
    provisioningPercentage?: number;
    failure?: { reason: string; message: string; time: string };
    lastAction?: { request: string; type: string; state: string; message?: string; time?: string };
    cloudConfig?: { name: string; hash?: string; waiting?: string };
    conditions?: Array<{ type: string; status: string; reason?: string; message?: string; lastTransitionTime?: string }>;
  };
  const wfs = workflows.items
    .filter((w) => (w.spec as { device?: string }).device === name || w.metadata.ownerReferences?.some((o) => o.uid === device.metadata.uid))
    .sort((a, b) => (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? ''));
  const evs = events.items
    .filter((e) => {
      const io = e.involvedObject as { kind?: string; name?: string; uid?: string } | undefined;
      return (io?.kind === 'Device' && io.name === name) || (io?.kind === 'Workflow' && wfs.some((w) => w.metadata.name === io.name));
    })
    .sort((a, b) => lastSeen(b).localeCompare(lastSeen(a)));

  const run = async (type: string) => {
    setError(undefined);
    try {
      if (type === 'delete') {
        await kube.remove(R.devices, namespace, name);
      } else {
        // A new value each time: the controller carries out each request once (status.lastAction.request).
        await kube.merge(R.devices, namespace, name, { metadata: { annotations: { 'metalplane.dev/action': `${type}/${Date.now().toString(36)}` } } });
      }
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  };

  return (
    <article aria-labelledby="device-title" data-testid="device-detail">
      <p className="crumbs">
        <a {...linkProps('devices')}>Devices</a> / {namespace}
      </p>
      <div className="page-head">
        <h1 id="device-title">
          {spec.hostname ?? name} <Badge health={healthOf(device)} /> <StateTag state={st.state} />
          {st.state === 'provisioning' && st.provisioningPercentage !== undefined && <span className="muted"> {Math.round(st.provisioningPercentage)}%</span>}
        </h1>
        {!session.readOnly && (
          <div className="actions" role="group" aria-label="Device actions">
            {ACTIONS.map((a) => (
              <button key={a.type} type="button" className={a.danger ? 'danger' : ''} onClick={() => setConfirm(a)} data-action={a.type}>
                {a.label}
              </button>
            ))}
            <button type="button" className="danger" data-action="delete" onClick={() => setConfirm({ type: 'delete', label: 'Delete', danger: true, explain: 'Delete the device: the machine is wiped and returned to the pool, its IPs are released.' })}>
              Delete
            </button>
          </div>
        )}
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {device.metadata.deletionTimestamp && <p className="notice">Being deleted: the machine is being wiped.</p>}
      {(st.state === 'queued' || !st.state) && !device.metadata.deletionTimestamp && <QueuedNotice device={device} />}
      {st.failure && (
        <p className="error" role="status">
          Failed: <b>{st.failure.reason}</b> — {st.failure.message}
        </p>
      )}
      <div className="columns">
        <section aria-labelledby="spec-title">
          <h2 id="spec-title">Spec and status</h2>
          <dl className="kv">
            <dt>Plan</dt>
            <dd>{spec.plan}</dd>
            <dt>Metro</dt>
            <dd>{st.metro ?? spec.metro ?? '—'}</dd>
            <dt>Facility</dt>
            <dd>{st.facility ?? spec.facility ?? '—'}</dd>
            <dt>OS</dt>
            <dd>{spec.operatingSystem}</dd>
            <dt>Hardware</dt>
            <dd>{st.hardware ?? '—'}</dd>
            <dt>Tags</dt>
            <dd>{spec.tags?.join(', ') || '—'}</dd>
            <dt>Created</dt>
            <dd>{age(device.metadata.creationTimestamp)} ago</dd>
            <dt>Last action</dt>
            <dd data-testid="last-action">{st.lastAction ? `${st.lastAction.type}: ${st.lastAction.state}${st.lastAction.message ? ` — ${st.lastAction.message}` : ''}` : '—'}</dd>
          </dl>
          <h3>IP addresses</h3>
          {st.ipAddresses?.length ? (
            <ul className="plain mono" data-testid="ips">
              {st.ipAddresses.map((ip) => (
                <li key={ip.address}>
                  {ip.address}/{ip.cidr} <span className="muted">{ip.public ? 'public' : 'private'} IPv{ip.family}, gateway {ip.gateway}</span>
                </li>
              ))}
            </ul>
          ) : (
            <p className="muted">None assigned yet.</p>
          )}
          <h3>Conditions</h3>
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
              {(st.conditions ?? []).map((c) => (
                <tr key={c.type}>
                  <td>{c.type}</td>
                  <td className={c.status === 'True' ? 'ok' : c.status === 'False' ? 'bad' : ''}>{c.status}</td>
                  <td>{c.reason}</td>
                  <td>{c.message}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
        <section aria-labelledby="timeline-title">
          <h2 id="timeline-title">Timeline</h2>
          {wfs.length === 0 && !st.lastAction && <p className="muted">No workflow has run yet.</p>}
          <ol className="timeline" data-testid="timeline">
            {wfs.map((w) => (
              <WorkflowBlock key={w.metadata.uid} wf={w} />
            ))}
            {st.lastAction && (
              <li className={`tl-action tl-${st.lastAction.state}`} data-testid="timeline-action" data-type={st.lastAction.type}>
                <b>{st.lastAction.type.replace('_', ' ')}</b> <span className={`state state-${st.lastAction.state}`}>{st.lastAction.state}</span>{' '}
                <span className="muted">
                  {st.lastAction.message} {st.lastAction.time ? `· ${age(st.lastAction.time)} ago` : ''}
                </span>
              </li>
            )}
          </ol>
        </section>
      </div>
      <section aria-labelledby="events-title">
        <h2 id="events-title">Events</h2>
        {evs.length === 0 ? (
          <p className="muted">No events.</p>
        ) : (
          <table className="grid compact" data-testid="device-events">
            <thead>
              <tr>
                <th scope="col">Type</th>
                <th scope="col">Reason</th>
                <th scope="col">Object</th>
                <th scope="col">Message</th>
                <th scope="col">Age</th>
              </tr>
            </thead>
            <tbody>
              {evs.map((e) => (
                <tr key={e.metadata.uid} className={e.type === 'Warning' ? 'warn' : ''}>
                  <td>{String(e.type ?? '')}</td>
                  <td>{String(e.reason ?? '')}</td>
                  <td>{(e.involvedObject as { kind: string; name: string }).kind}</td>
                  <td>
                    {String(e.message ?? '')}
                    {Number(e.count ?? 1) > 1 ? <span className="muted"> ×{String(e.count)}</span> : null}
                  </td>
                  <td>{age(lastSeen(e))}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section aria-labelledby="userdata-title">
        <h2 id="userdata-title">User data</h2>
        {spec.cloudConfigRef ? (
          <RenderedUserData device={device} cloudConfig={spec.cloudConfigRef.name} status={st.cloudConfig} />
        ) : spec.userData ? (
          <pre className="code">{spec.userData}</pre>
        ) : (
          <p className="muted">None.</p>
        )}
      </section>
      <section aria-labelledby="console-title">
        <h2 id="console-title">Console</h2>
        {session.operator ? (
          st.hardware ? (
            <MachineConsole machine={st.hardware} />
          ) : (
            <p className="muted">No machine yet: the console shows once the device is bound to one.</p>
          )
        ) : (
          <p className="muted" data-testid="console-operator-only">
            The machine&rsquo;s console output is for operators only: it is read from the hardware, out of band, like a BMC&rsquo;s serial console.
          </p>
        )}
      </section>
      {confirm && (
        <Confirm
          title={`${confirm.label} ${spec.hostname ?? name}?`}
          body={confirm.explain}
          danger={confirm.danger}
          confirmLabel={confirm.label}
          onCancel={() => setConfirm(undefined)}
          onConfirm={() => {
            const type = confirm.type;
            setConfirm(undefined);
            void run(type).then(() => {
              if (type === 'delete') navigate('devices');
            });
          }}
        />
      )}
    </article>
  );
}

/** A queued device: why it has no machine, and (to an operator, who sees the hardware) where its plan is available. */
function QueuedNotice({ device }: { device: KubeObject }) {
  const { session } = useScope();
  const hardware = useLive(R.hardware, 'all', session.operator);
  const why = unscheduledReason(device);
  const plan = (device.spec as { plan: string }).plan;
  return (
    <p className="notice" role="status" data-testid="queued-reason">
      Waiting for a machine{why?.reason ? <>: <b>{why.reason}</b></> : null}
      {why?.message ? ` — ${why.message}` : ''}.{' '}
      {session.operator && hardware.status === 'live' ? <span className="muted">{describeAvailability(hardware.items, plan)}</span> : null}
    </p>
  );
}

/**
 * The user data of a device composed by a CloudConfig, as its machine receives it: the Metal API's
 * /devices/{id}/userdata (the id is the Device's uid), fetched again when the render the device runs changes.
 */
function RenderedUserData({ device, cloudConfig, status }: { device: KubeObject; cloudConfig: string; status?: { hash?: string; waiting?: string } }) {
  const [doc, setDoc] = useState<{ text?: string; error?: string }>({});
  useEffect(() => {
    if (!status?.hash) return;
    let stale = false;
    request<{ userdata: string }>('GET', `/metal/v1/devices/${device.metadata.uid}/userdata`).then(
      (r) => !stale && setDoc({ text: r.userdata }),
      (e: unknown) => !stale && setDoc({ error: e instanceof Error ? e.message : String(e) }),
    );
    return () => {
      stale = true;
    };
  }, [device.metadata.uid, status?.hash]);
  return (
    <>
      <p>
        From CloudConfig <a {...linkProps(`cloudconfigs/${device.metadata.namespace}/${cloudConfig}`)}>{cloudConfig}</a>
        {status?.waiting ? <span className="muted"> — provisioning waits for {status.waiting}</span> : status?.hash ? <span className="muted"> — render {status.hash.slice(0, 19)}…</span> : null}
      </p>
      {doc.error ? <p className="error">{doc.error}</p> : doc.text !== undefined ? <pre className="code">{doc.text}</pre> : null}
    </>
  );
}

interface ConsoleLine {
  seq: number;
  time: string;
  text: string;
}

/** How often the console is fetched again while the page is open: the sim API has no watch. */
const CONSOLE_REFRESH_MS = 2000;

/** The machine's console output (the simulated machines write their boot log), kept scrolled to the end. */
function MachineConsole({ machine }: { machine: string }) {
  const { data, error } = usePoll<{ lines: ConsoleLine[]; dropped: number }>(`/sim/v1/machines/${encodeURIComponent(machine)}/console`, CONSOLE_REFRESH_MS);
  const ref = useRef<HTMLPreElement>(null);
  const last = data?.lines.at(-1)?.seq;
  useEffect(() => {
    const el = ref.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [last]);
  if (!data) return error ? <p className="muted">The console is not available: {error}</p> : <p className="muted" role="status">Loading the console…</p>;
  return (
    <>
      <p className="muted">
        {machine}
        {data.dropped ? ` · ${data.dropped} earlier lines dropped` : ''}
        {error ? ` · refresh failed: ${error}` : ''}
      </p>
      <pre className="code console-log" ref={ref} data-testid="machine-console" tabIndex={0} aria-label={`Console output of ${machine}`}>
        {data.lines.length === 0 ? 'No output yet.' : data.lines.map((l) => `${l.time.slice(11, 23)}  ${l.text}`).join('\n')}
      </pre>
    </>
  );
}

function lastSeen(e: KubeObject): string {
  return String(e.lastTimestamp ?? e.eventTime ?? e.metadata.creationTimestamp ?? '');
}

function WorkflowBlock({ wf }: { wf: KubeObject }) {
  const spec = wf.spec as { purpose: string; hardware: string; actions: Array<{ name: string; type: string }> };
  const st = (wf.status ?? {}) as { state?: string; actions?: ActionStatus[]; startedAt?: string; finishedAt?: string; failure?: { action: string; reason: string; message: string }; restarts?: number };
  const byName = new Map((st.actions ?? []).map((a) => [a.name, a]));
  return (
    <li className="tl-workflow" data-workflow={wf.metadata.name} data-purpose={spec.purpose}>
      <div>
        <b>{spec.purpose}</b> <Badge health={healthOf(wf)} /> <span className="muted">{wf.metadata.name} on {spec.hardware}</span>{' '}
        <span className="muted">{duration(st.startedAt, st.finishedAt)}</span>
        {st.restarts ? <span className="muted"> · restarted {st.restarts}×</span> : null}
      </div>
      <ol className="steps">
        {spec.actions.map((a) => {
          const s = byName.get(a.name);
          const failed = st.failure?.action === a.name;
          return (
            <li key={a.name} className={`step step-${s?.state ?? 'pending'}${failed ? ' step-failpoint' : ''}`} data-step={a.name} data-state={s?.state ?? 'pending'}>
              <span className="step-name">{a.name}</span>
              <span className="step-state">{s?.state ?? 'pending'}</span>
              <span className="step-time">{s?.state === 'running' && s.progress !== undefined ? `${Math.round(s.progress)}%` : duration(s?.startedAt, s?.finishedAt)}</span>
              {s?.attempts && s.attempts > 1 ? <span className="muted"> {s.attempts} attempts</span> : null}
              {failed && (
                <div className="error">
                  {st.failure!.reason}: {st.failure!.message}
                </div>
              )}
            </li>
          );
        })}
      </ol>
    </li>
  );
}

/** A modal confirmation (the native <dialog>: focus is trapped and Escape cancels). */
export function Confirm(props: { title: string; body: string; confirmLabel: string; danger?: boolean; onConfirm: () => void; onCancel: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    ref.current?.showModal();
  }, []);
  return (
    <dialog ref={ref} className="confirm" aria-labelledby="confirm-title" onCancel={props.onCancel}>
      <h2 id="confirm-title">{props.title}</h2>
      <p>{props.body}</p>
      <div className="actions">
        <button type="button" className="ghost" onClick={props.onCancel} autoFocus>
          Cancel
        </button>
        <button type="button" className={props.danger ? 'danger' : ''} onClick={props.onConfirm} data-testid="confirm">
          {props.confirmLabel}
        </button>
      </div>
    </dialog>
  );
}
