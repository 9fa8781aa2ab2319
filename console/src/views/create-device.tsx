// The create form: project, name, metro and plan (with the capacity the operator sees), operating system, user
// data or a CloudConfig of the project, SSH keys and tags. It creates the Device through the kube API, then
// shows its page.
import { useMemo, useState, type FormEvent } from 'react';
import { kube } from '../api';
import { useScope } from '../app';
import { HEALTH_LABEL, healthOf } from '../health';
import { useLive } from '../live';
import { R } from '../resources';
import { navigate } from '../router';
import { capacityOf } from './datacenter';

export function CreateDevice() {
  const { session, project } = useScope();
  const [ns, setNs] = useState(project !== '*' ? project : session.projects.includes('default') ? 'default' : (session.projects[0] ?? ''));
  const metros = useLive(R.metros);
  const plans = useLive(R.plans);
  const oses = useLive(R.operatingSystems);
  const hardware = useLive(R.hardware, 'all', session.operator);
  const keys = useLive(R.sshKeys, ns ? [ns] : [], ns !== '');
  const cloudConfigs = useLive(R.cloudConfigs, ns ? [ns] : [], ns !== '');
  /** '' : the user data typed below; otherwise the CloudConfig that composes it. */
  const [cloudConfig, setCloudConfig] = useState('');
  const [name, setName] = useState('');
  const [metro, setMetro] = useState('da');
  const [plan, setPlan] = useState('c3.small.x86');
  const [os, setOs] = useState('ubuntu_24_04');
  const [userData, setUserData] = useState('');
  const [tags, setTags] = useState('');
  const [sshKeys, setSshKeys] = useState<string[]>([]);
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const cap = useMemo(() => capacityOf(hardware.items), [hardware.items]);
  const avail = (m: string, p?: string): number | undefined => {
    if (!session.operator) return undefined;
    const row = cap.get(m);
    if (!row) return 0;
    if (p) return row.get(p)?.available ?? 0;
    return [...row.values()].reduce((n, c) => n + c.available, 0);
  };
  const withCount = (label: string, n: number | undefined) => (n === undefined ? label : `${label} — ${n} available`);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    const spec: Record<string, unknown> = { hostname: name, metro, plan, operatingSystem: os };
    if (cloudConfig) spec.cloudConfigRef = { name: cloudConfig };
    else if (userData.trim()) spec.userData = userData;
    const t = tags.split(',').map((s) => s.trim()).filter(Boolean);
    if (t.length) spec.tags = t;
    if (sshKeys.length) spec.sshKeys = sshKeys;
    try {
      await kube.create(R.devices, ns, { apiVersion: 'metalplane.dev/v1alpha1', kind: 'Device', metadata: { name, namespace: ns }, spec });
      navigate(`devices/${ns}/${name}`);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="create-title">
      <h1 id="create-title">New device</h1>
      <form className="form" onSubmit={(e) => void submit(e)} aria-describedby={error ? 'create-error' : undefined}>
        <label>
          Project
          <select
            value={ns}
            onChange={(e) => {
              setNs(e.target.value);
              setCloudConfig('');
            }}
            required
          >
            {session.projects.map((p) => (
              <option key={p}>{p}</option>
            ))}
          </select>
        </label>
        <label>
          Name
          <input name="name" value={name} onChange={(e) => setName(e.target.value.toLowerCase())} pattern="[a-z0-9]([a-z0-9\-]*[a-z0-9])?" maxLength={63} required placeholder="web-1" />
        </label>
        <label>
          Metro
          <select name="metro" value={metro} onChange={(e) => setMetro(e.target.value)}>
            {metros.items.map((m) => (
              <option key={m.metadata.name} value={m.metadata.name}>
                {withCount(`${m.metadata.name} — ${(m.spec as { name?: string }).name ?? ''}`, avail(m.metadata.name))}
              </option>
            ))}
          </select>
        </label>
        <label>
          Plan
          <select name="plan" value={plan} onChange={(e) => setPlan(e.target.value)}>
            {plans.items.map((p) => (
              <option key={p.metadata.name} value={p.metadata.name}>
                {withCount(p.metadata.name, avail(metro, p.metadata.name))}
              </option>
            ))}
          </select>
        </label>
        <label>
          Operating system
          <select name="os" value={os} onChange={(e) => setOs(e.target.value)}>
            {oses.items.map((o) => {
              const s = o.spec as { slug: string; name?: string };
              return (
                <option key={s.slug} value={s.slug}>
                  {s.name ?? s.slug}
                </option>
              );
            })}
          </select>
        </label>
        <label>
          User data from
          <select name="cloudConfig" value={cloudConfig} onChange={(e) => setCloudConfig(e.target.value)} aria-describedby="cc-help">
            <option value="">the text below</option>
            {cloudConfigs.items.map((c) => (
              <option key={c.metadata.name} value={c.metadata.name}>
                CloudConfig {c.metadata.name} — {HEALTH_LABEL[healthOf(c)]}
              </option>
            ))}
          </select>
          <span className="muted" id="cc-help">
            {cloudConfig
              ? 'The machine gets the CloudConfig’s rendered document; provisioning waits until it is Ready.'
              : cloudConfigs.items.length === 0
                ? 'The project has no CloudConfig (kubectl apply one to compose user data from other objects).'
                : 'Or compose it with a CloudConfig of the project.'}
          </span>
        </label>
        {!cloudConfig && (
          <label>
            User data <span className="muted">(#cloud-config or a script; optional)</span>
            <textarea name="userData" value={userData} onChange={(e) => setUserData(e.target.value)} rows={5} spellCheck={false} placeholder={'#cloud-config\npackages: [nginx]'} />
          </label>
        )}
        <fieldset>
          <legend>SSH keys {keys.items.length === 0 && <span className="muted">(the project has none)</span>}</legend>
          {keys.items.map((k) => (
            <label key={k.metadata.name} className="inline">
              <input
                type="checkbox"
                checked={sshKeys.includes(k.metadata.name)}
                onChange={(e) => setSshKeys((v) => (e.target.checked ? [...v, k.metadata.name] : v.filter((x) => x !== k.metadata.name)))}
              />{' '}
              {k.metadata.name}
            </label>
          ))}
          {keys.items.length > 0 && <p className="muted">None selected: every key of the project is installed.</p>}
        </fieldset>
        <label>
          Tags <span className="muted">(comma-separated)</span>
          <input name="tags" value={tags} onChange={(e) => setTags(e.target.value)} />
        </label>
        {error && (
          <p className="error" role="alert" id="create-error">
            {error}
          </p>
        )}
        <div className="actions">
          <button type="submit" disabled={busy || !ns}>
            {busy ? 'Creating…' : 'Create device'}
          </button>
          <button type="button" className="ghost" onClick={() => navigate('devices')}>
            Cancel
          </button>
        </div>
      </form>
    </section>
  );
}
