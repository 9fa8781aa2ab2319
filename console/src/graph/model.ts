// The resource graph as plain data: which objects are nodes, how they connect, sibling folding and the node
// cap (unhealthy first). Pure: the view lays it out and draws it. Kinds are nodes by their role, so more sources
// (Kubernetes clusters, Git sources) can be added as further node kinds and edges later.
import type { KubeObject } from '../api';
import { condition, healthOf, type Health } from '../health';

export interface GraphNode {
  id: string;
  kind: string;
  label: string;
  sub?: string;
  health: Health;
  /** In-app route of the object's page, if it has one. */
  link?: string;
  /** A folded node stands for this many objects. */
  folded?: number;
}

export interface GraphEdge {
  id: string;
  source: string;
  target: string;
}

export interface Graph {
  nodes: GraphNode[];
  edges: GraphEdge[];
  /** Devices left out by the cap. */
  omitted: number;
}

export interface GraphInput {
  devices: KubeObject[];
  workflows: KubeObject[];
  hardware: KubeObject[];
  cloudConfigs: KubeObject[];
}

const RANK: Record<Health, number> = { failed: 0, progressing: 1, unknown: 2, ready: 3 };
const worst = (hs: Health[]): Health => hs.reduce<Health>((w, h) => (RANK[h] < RANK[w] ? h : w), 'ready');

/** Siblings of one kind under one parent beyond this many fold into one node. */
export const FOLD_AT = 4;
/** The most devices drawn; the rest are counted in `omitted`, unhealthy ones kept first. */
export const DEVICE_CAP = 40;

/** The CloudConfig a device uses (Device.spec.cloudConfigRef, src/kinds/device.ts). */
function cloudConfigOf(d: KubeObject): string | undefined {
  return (d.spec as { cloudConfigRef?: { name?: string } } | undefined)?.cloudConfigRef?.name;
}

/** An object a CloudConfig reads (spec.values[].valueFrom, src/kinds/cloud-config.ts), as kind and name. */
interface CloudConfigInput {
  kind: string;
  name: string;
}

function inputsOf(c: KubeObject): CloudConfigInput[] {
  type From = {
    fieldRef?: { kind: string; name: string };
    cloudConfigRef?: { name: string };
    secretKeyRef?: { name: string };
    configMapKeyRef?: { name: string };
  };
  const values = (c.spec as { values?: Array<{ valueFrom?: From }> } | undefined)?.values ?? [];
  const out: CloudConfigInput[] = [];
  for (const v of values) {
    const f = v.valueFrom;
    if (f?.fieldRef) out.push({ kind: f.fieldRef.kind, name: f.fieldRef.name });
    else if (f?.cloudConfigRef) out.push({ kind: 'CloudConfig', name: f.cloudConfigRef.name });
    else if (f?.secretKeyRef) out.push({ kind: 'Secret', name: f.secretKeyRef.name });
    else if (f?.configMapKeyRef) out.push({ kind: 'ConfigMap', name: f.configMapKeyRef.name });
  }
  // One edge per object, however many values read it.
  return out.filter((x, i) => out.findIndex((y) => y.kind === x.kind && y.name === x.name) === i);
}

export function buildGraph(input: GraphInput, cap = DEVICE_CAP): Graph {
  const nodes: GraphNode[] = [];
  const edges: GraphEdge[] = [];
  const have = new Set<string>();
  const add = (n: GraphNode) => {
    if (have.has(n.id)) return;
    have.add(n.id);
    nodes.push(n);
  };
  const link = (source: string, target: string) => {
    const id = `${source}->${target}`;
    if (source !== target && !edges.some((e) => e.id === id)) edges.push({ id, source, target });
  };

  const devices = [...input.devices].sort((a, b) => RANK[healthOf(a)] - RANK[healthOf(b)] || a.metadata.name.localeCompare(b.metadata.name));
  const shown = devices.slice(0, cap);
  const hwByName = new Map(input.hardware.map((h) => [h.metadata.name, h]));
  const ccId = (ns: string | undefined, name: string) => `cc:${ns ?? ''}/${name}`;
  /** The node a device is drawn as: its own, or the fold it went into. */
  const deviceNode = new Map<string, string>();

  for (const c of input.cloudConfigs) {
    const ready = condition(c, 'Ready');
    add({
      id: ccId(c.metadata.namespace, c.metadata.name),
      kind: 'CloudConfig',
      label: c.metadata.name,
      sub: `${c.metadata.namespace} · ${ready ? (ready.status === 'True' ? 'rendered' : (ready.reason ?? 'not ready')) : 'not rendered yet'}`,
      health: healthOf(c),
      link: `cloudconfigs/${c.metadata.namespace}/${c.metadata.name}`,
    });
  }
  // Devices of one CloudConfig beyond FOLD_AT fold into one node (the unhealthy ones stay visible).
  const perConfig = new Map<string, KubeObject[]>();
  for (const d of shown) {
    const cc = cloudConfigOf(d);
    let key = '';
    if (cc) {
      key = ccId(d.metadata.namespace, cc);
      // A reference to a CloudConfig that is not there: the device waits for it (its conditions say so).
      add({ id: key, kind: 'CloudConfig', label: cc, sub: `${d.metadata.namespace} · not found`, health: 'progressing' });
    }
    perConfig.set(key, [...(perConfig.get(key) ?? []), d]);
  }
  for (const [parent, ds] of perConfig) {
    const healthy = ds.filter((d) => healthOf(d) === 'ready');
    const fold = parent !== '' && ds.length > FOLD_AT && healthy.length > 1 ? healthy : [];
    if (fold.length) {
      const id = `fold:${parent}:devices`;
      add({ id, kind: 'Device', label: `${fold.length} devices`, sub: 'ready', health: 'ready', folded: fold.length });
      link(parent, id);
      for (const d of fold) deviceNode.set(`${d.metadata.namespace}/${d.metadata.name}`, id);
    }
    for (const d of ds) {
      if (fold.includes(d)) continue;
      addDevice(d, parent);
    }
  }

  // What each CloudConfig reads, drawn as edges into it: from a Device or CloudConfig node of the graph, or
  // from a node of its own for the other kinds (SSHKey, IPReservation, Secret, ConfigMap), which the console
  // does not watch: they count as ready once the CloudConfig rendered (every input resolved).
  for (const c of input.cloudConfigs) {
    const ns = c.metadata.namespace ?? '';
    const target = ccId(ns, c.metadata.name);
    for (const inp of inputsOf(c)) {
      let source: string | undefined;
      if (inp.kind === 'Device') source = deviceNode.get(`${ns}/${inp.name}`);
      else if (inp.kind === 'CloudConfig') source = have.has(ccId(ns, inp.name)) ? ccId(ns, inp.name) : undefined;
      if (source === undefined) {
        source = `in:${inp.kind}:${ns}/${inp.name}`;
        const known = inp.kind === 'Device' ? input.devices.some((d) => d.metadata.namespace === ns && d.metadata.name === inp.name) : undefined;
        add({
          id: source,
          kind: inp.kind,
          label: inp.name,
          sub: known === false ? `${ns} · not found` : known ? `${ns} · not drawn` : `${ns} · input`,
          health: known === false ? 'progressing' : healthOf(c) === 'ready' ? 'ready' : 'unknown',
        });
      }
      link(source, target);
    }
  }

  function addDevice(d: KubeObject, parent: string): void {
    const ns = d.metadata.namespace ?? '';
    const id = `dev:${ns}/${d.metadata.name}`;
    const st = d.status as { state?: string; hardware?: string; ipAddresses?: Array<{ address: string; cidr: number; public: boolean }> } | undefined;
    add({ id, kind: 'Device', label: (d.spec as { hostname?: string }).hostname ?? d.metadata.name, sub: `${ns} · ${st?.state ?? 'new'}`, health: healthOf(d), link: `devices/${ns}/${d.metadata.name}` });
    deviceNode.set(`${ns}/${d.metadata.name}`, id);
    if (parent) link(parent, id);
    let wfParent = id;
    if (st?.hardware) {
      const hw = hwByName.get(st.hardware);
      const hid = `hw:${st.hardware}`;
      add({ id: hid, kind: 'Hardware', label: st.hardware, sub: (hw?.status?.state as string | undefined) ?? (hw ? '' : 'not visible to this key'), health: hw ? healthOf(hw) : 'unknown' });
      link(id, hid);
      wfParent = hid;
    }
    const wfs = input.workflows
      .filter((w) => w.metadata.namespace === ns && ((w.spec as { device?: string }).device === d.metadata.name || w.metadata.ownerReferences?.some((o) => o.uid === d.metadata.uid)))
      .sort((a, b) => (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? ''));
    // The newest workflow and every unhealthy one are drawn; older healthy ones fold.
    const keep = wfs.filter((w, i) => i === 0 || healthOf(w) !== 'ready');
    const older = wfs.filter((w) => !keep.includes(w));
    for (const w of keep) {
      const wid = `wf:${ns}/${w.metadata.name}`;
      add({ id: wid, kind: 'Workflow', label: w.metadata.name, sub: `${(w.spec as { purpose: string }).purpose} · ${(w.status?.state as string | undefined) ?? 'pending'}`, health: healthOf(w), link: `devices/${ns}/${d.metadata.name}` });
      link(wfParent, wid);
    }
    if (older.length) {
      const fid = `fold:${id}:workflows`;
      add({ id: fid, kind: 'Workflow', label: `${older.length} earlier workflows`, health: worst(older.map(healthOf)), folded: older.length, link: `devices/${ns}/${d.metadata.name}` });
      link(wfParent, fid);
    }
    const ips = st?.ipAddresses ?? [];
    const ipParent = keep[0] ? `wf:${ns}/${keep[0].metadata.name}` : id;
    if (ips.length > FOLD_AT) {
      const fid = `fold:${id}:ips`;
      add({ id: fid, kind: 'IPAddress', label: `${ips.length} IP addresses`, health: 'ready', folded: ips.length });
      link(ipParent, fid);
    } else {
      for (const ip of ips) {
        const iid = `ip:${ip.address}`;
        add({ id: iid, kind: 'IPAddress', label: `${ip.address}/${ip.cidr}`, sub: ip.public ? 'public' : 'private', health: 'ready' });
        link(ipParent, iid);
      }
    }
  }

  return { nodes, edges: edges.filter((e) => have.has(e.source) && have.has(e.target)), omitted: devices.length - shown.length };
}
