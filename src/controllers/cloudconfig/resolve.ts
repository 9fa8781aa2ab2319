// Resolving a CloudConfig's values from the objects it names, and finding cycles between CloudConfigs: pure
// functions over a lookup (the controller passes its informer caches). A value resolves when its object exists
// and has the field — a Device only once it is Ready, another CloudConfig only once it is Ready and rendered
// its current generation. What does not resolve is described for the Ready condition's message.
import type { CloudConfigSpec, CloudConfigStatus, CloudConfigValue } from '../../kinds/cloud-config.js';
import { fieldText, getField, parseFieldPath } from '../../kinds/cloud-init/template.js';
import type { StoredObject } from '../../kinds/types.js';
import { getCondition } from '../../runtime/conditions.js';
import { deliveredUserData, documentOf } from './render.js';

/** The kinds a value can name (a fieldRef's kind, or Secret / ConfigMap / CloudConfig for the other refs). */
export type InputKind = 'Device' | 'IPReservation' | 'SSHKey' | 'ConfigMap' | 'CloudConfig' | 'Secret';

/** Finds an object of a kind in the CloudConfig's namespace. */
export type Lookup = (kind: InputKind, name: string) => StoredObject | undefined;

export interface InputRef {
  kind: InputKind;
  name: string;
}

/** The object a value reads, if it reads one. */
export function inputOf(v: CloudConfigValue): InputRef | undefined {
  const f = v.valueFrom;
  if (!f) return undefined;
  if (f.fieldRef) return { kind: f.fieldRef.kind, name: f.fieldRef.name };
  if (f.secretKeyRef) return { kind: 'Secret', name: f.secretKeyRef.name };
  if (f.configMapKeyRef) return { kind: 'ConfigMap', name: f.configMapKeyRef.name };
  if (f.cloudConfigRef) return { kind: 'CloudConfig', name: f.cloudConfigRef.name };
  return undefined;
}

export interface Resolution {
  values: Map<string, string>;
  /** One line per value that did not resolve: `DB_IP: Device db-1 is not Ready`. */
  waiting: string[];
  /** A value came from a Secret (directly or through another CloudConfig): the render belongs in a Secret too. */
  secret: boolean;
}

/** A CloudConfig's render is current and usable: Ready, for the generation it is now. */
export function isRenderedCloudConfig(cc: StoredObject): boolean {
  const st = (cc.status ?? {}) as CloudConfigStatus;
  return getCondition(st.conditions, 'Ready')?.status === 'True' && st.observedGeneration === cc.metadata.generation && st.hash !== undefined;
}

export function resolveValues(spec: CloudConfigSpec, lookup: Lookup): Resolution {
  const out: Resolution = { values: new Map(), waiting: [], secret: false };
  for (const v of spec.values ?? []) {
    if (v.value !== undefined) {
      out.values.set(v.name, v.value);
      continue;
    }
    const r = resolveOne(v, lookup);
    if ('waiting' in r) out.waiting.push(`${v.name}: ${r.waiting}`);
    else {
      out.values.set(v.name, r.value);
      out.secret ||= r.secret;
    }
  }
  return out;
}

function resolveOne(v: CloudConfigValue, lookup: Lookup): { value: string; secret: boolean } | { waiting: string } {
  const f = v.valueFrom!;
  if (f.fieldRef) {
    const { kind, name, fieldPath } = f.fieldRef;
    const obj = lookup(kind, name);
    if (!obj) return { waiting: `${kind} ${name} does not exist` };
    if (kind === 'Device' && getCondition((obj.status as { conditions?: [] } | undefined)?.conditions, 'Ready')?.status !== 'True') {
      return { waiting: `Device ${name} is not Ready` };
    }
    const path = parseFieldPath(fieldPath, { filters: true });
    if (!path.ok) return { waiting: `fieldPath ${path.message}` };
    const got = getField(obj, path.segments);
    if (!got.found) return { waiting: `${kind} ${name} has no ${got.missing}` };
    return { value: fieldText(got.value), secret: false };
  }
  if (f.secretKeyRef || f.configMapKeyRef) {
    const kind = f.secretKeyRef ? 'Secret' : 'ConfigMap';
    const { name, key } = (f.secretKeyRef ?? f.configMapKeyRef)!;
    const obj = lookup(kind, name);
    if (!obj) return { waiting: `${kind} ${name} does not exist` };
    const data = (obj.data ?? {}) as Record<string, string>;
    if (kind === 'Secret') {
      if (data[key] === undefined) return { waiting: `Secret ${name} has no key ${key}` };
      return { value: Buffer.from(data[key], 'base64').toString('utf8'), secret: true };
    }
    if (data[key] !== undefined) return { value: data[key], secret: false };
    const binary = ((obj.binaryData ?? {}) as Record<string, string>)[key];
    if (binary !== undefined) return { value: Buffer.from(binary, 'base64').toString('utf8'), secret: false };
    return { waiting: `ConfigMap ${name} has no key ${key}` };
  }
  if (f.cloudConfigRef) {
    const name = f.cloudConfigRef.name;
    const cc = lookup('CloudConfig', name);
    if (!cc) return { waiting: `CloudConfig ${name} does not exist` };
    const st = (cc.status ?? {}) as CloudConfigStatus;
    if (!isRenderedCloudConfig(cc)) {
      const ready = getCondition(st.conditions, 'Ready');
      return { waiting: `CloudConfig ${name} is not Ready${ready?.reason ? ` (${ready.reason})` : ''}` };
    }
    const secret = st.secretRef ? lookup('Secret', st.secretRef.name) : undefined;
    if (st.secretRef && !secret) return { waiting: `CloudConfig ${name}'s Secret ${st.secretRef.name} does not exist` };
    const bytes = deliveredUserData(st, secret?.data as Record<string, string> | undefined);
    if (!bytes) return { waiting: `CloudConfig ${name} has no rendered document` };
    let document: string;
    try {
      document = documentOf(bytes, st.encoding);
    } catch (e) {
      return { waiting: `CloudConfig ${name}'s document cannot be read: ${(e as Error).message}` };
    }
    return { value: document, secret: st.secretRef !== undefined };
  }
  return { waiting: 'valueFrom names no source' };
}

/**
 * The cycle through `start` in the graph of CloudConfigs reading each other (`edges(name)`: the CloudConfigs a
 * CloudConfig reads), as the path `[start, …, start]`; undefined if `start` is on no cycle. A cycle further
 * down that does not come back to `start` is not its own: it only makes `start` wait.
 */
export function findCycle(start: string, edges: (name: string) => readonly string[], maxNodes = 1000): string[] | undefined {
  const seen = new Set<string>();
  const path: string[] = [start];
  const visit = (node: string): boolean => {
    for (const next of edges(node)) {
      if (next === start) {
        path.push(next);
        return true;
      }
      if (seen.has(next) || seen.size >= maxNodes) continue;
      seen.add(next);
      path.push(next);
      if (visit(next)) return true;
      path.pop();
    }
    return false;
  };
  return visit(start) ? path : undefined;
}

/** The kinds whose objects a reconcile reads live rather than from a cache: many of them, few read, and large. */
export type DataKind = 'ConfigMap' | 'Secret';
export const isDataKind = (k: InputKind): k is DataKind => k === 'ConfigMap' || k === 'Secret';

/**
 * The ConfigMaps and Secrets resolving `spec` reads: those its values name, and the rendered Secret of each
 * CloudConfig it reads (found with `cloudConfig`), so a caller can fetch them before resolving.
 */
export function dataInputs(spec: CloudConfigSpec, cloudConfig: (name: string) => StoredObject | undefined): Array<{ kind: DataKind; name: string }> {
  const out = new Map<string, { kind: DataKind; name: string }>();
  const add = (kind: DataKind, name: string) => out.set(`${kind}/${name}`, { kind, name });
  for (const v of spec.values ?? []) {
    const r = inputOf(v);
    if (!r) continue;
    if (isDataKind(r.kind)) add(r.kind, r.name);
    else if (r.kind === 'CloudConfig' && v.valueFrom?.cloudConfigRef) {
      const ref = (cloudConfig(r.name)?.status as CloudConfigStatus | undefined)?.secretRef;
      if (ref) add('Secret', ref.name);
    }
  }
  return [...out.values()];
}

/** The CloudConfigs a spec reads (through cloudConfigRef or a fieldRef of kind CloudConfig). */
export function cloudConfigsRead(spec: CloudConfigSpec): string[] {
  const out = new Set<string>();
  for (const v of spec.values ?? []) {
    const r = inputOf(v);
    if (r?.kind === 'CloudConfig') out.add(r.name);
  }
  return [...out];
}
