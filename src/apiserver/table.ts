// `kubectl get` output: a meta.k8s.io/v1 Table derived from a kind's printer columns, laid out as kube does for
// CRDs (NAME, the kind's columns, AGE), cells evaluated with a small JSONPath subset and formatted like kube's
// table convertor (ages as `5m12s`, missing values as null, which kubectl prints as `<none>`).
import { ageSince } from '../kinds/common.js';
import type { KindDeclaration, KubeObject, PrinterColumn, TableCell } from '../kinds/types.js';

export type IncludeObject = 'None' | 'Object' | 'Metadata';

export interface TableColumnDefinition {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

export interface TableRow {
  cells: TableCell[];
  object?: KubeObject;
}

export interface Table {
  kind: 'Table';
  apiVersion: 'meta.k8s.io/v1';
  metadata: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
  columnDefinitions: TableColumnDefinition[];
  rows: TableRow[];
}

export interface TableOptions {
  /** What each row carries in `object` (kube's `includeObject`; kubectl asks for Metadata by default). */
  includeObject?: IncludeObject;
  /**
   * Omitted: every column, as kube sends them (kubectl hides priority > 0 unless `-o wide`).
   * false: only priority-0 columns.
   */
  wide?: boolean;
  /** Epoch milliseconds, for ages. */
  now: number;
  /** List metadata to carry over. */
  listMeta?: Table['metadata'];
}

const nameDescription =
  'Name must be unique within a namespace. Is required when creating resources, although some resources may ' +
  'allow a client to request the generation of an appropriate name automatically. Name is primarily intended ' +
  'for creation idempotence and configuration definition. Cannot be updated.';
const ageDescription =
  'CreationTimestamp is a timestamp representing the server time when this object was created. It is not ' +
  'guaranteed to be set in happens-before order across separate operations. Clients may not set this value. ' +
  'It is represented in RFC3339 form and is in UTC.';

interface ResolvedColumn {
  definition: TableColumnDefinition;
  cell: (obj: KubeObject, now: number) => TableCell;
}

const nameColumn: ResolvedColumn = {
  definition: { name: 'Name', type: 'string', format: 'name', description: nameDescription, priority: 0 },
  cell: (obj) => obj.metadata.name ?? '',
};
const ageColumn: ResolvedColumn = {
  definition: { name: 'Age', type: 'date', format: '', description: ageDescription, priority: 0 },
  cell: (obj, now) => ageSince(obj.metadata.creationTimestamp, now),
};

const resolvedCache = new WeakMap<KindDeclaration, ResolvedColumn[]>();

function resolveColumns(kind: KindDeclaration): ResolvedColumn[] {
  const cached = resolvedCache.get(kind);
  if (cached) return cached;
  const declared = kind.printerColumns ?? [];
  const lists = (path: string): boolean => declared.some((c) => c.jsonPath === path && !c.value);
  const cols: ResolvedColumn[] = [];
  if (kind.implicitColumns?.name !== false && !lists('.metadata.name')) cols.push(nameColumn);
  for (const c of declared) cols.push(resolvePrinterColumn(c));
  if (kind.implicitColumns?.age !== false && !lists('.metadata.creationTimestamp')) cols.push(ageColumn);
  resolvedCache.set(kind, cols);
  return cols;
}

function resolvePrinterColumn(c: PrinterColumn): ResolvedColumn {
  const definition: TableColumnDefinition = {
    name: c.name,
    type: c.type,
    format: c.format ?? '',
    description: c.description ?? '',
    priority: c.priority ?? 0,
  };
  if (c.value) return { definition, cell: c.value };
  const path = parseJsonPath(c.jsonPath);
  return { definition, cell: (obj, now) => formatCell(c.type, evaluate(obj, path), now) };
}

/** The column definitions of a kind's table, in order (NAME first and AGE last unless the kind says otherwise). */
export function tableColumnsFor(kind: KindDeclaration): TableColumnDefinition[] {
  return resolveColumns(kind).map((c) => c.definition);
}

/** Builds the Table kube returns for `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`. */
export function toTable(kind: KindDeclaration, objects: readonly KubeObject[], opts: TableOptions): Table {
  const cols = resolveColumns(kind).filter((c) => opts.wide !== false || c.definition.priority === 0);
  const include = opts.includeObject ?? 'Metadata';
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { ...(opts.listMeta ?? {}) },
    columnDefinitions: cols.map((c) => c.definition),
    rows: objects.map((obj) => {
      const row: TableRow = { cells: cols.map((c) => c.cell(obj, opts.now)) };
      if (include === 'Object') row.object = obj;
      else if (include === 'Metadata') row.object = { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: rowMetadata(obj.metadata) };
      return row;
    }),
  };
}

/**
 * A row's metadata for `includeObject=Metadata`: the object's metadata without its managedFields. kube-apiserver
 * copies them into every row; kubectl, the one client that asks for Tables by default, never shows them (it even
 * strips them from `-o yaml` unless `--show-managed-fields`), and they were most of the bytes it had to decode:
 * 10 000 Hardware as a Table went from 12.4 to 4.6 MB, and `kubectl get hardware --chunk-size=0` from 1.1 to 0.45 s.
 * `includeObject=Object` still carries the whole object, managedFields included.
 */
function rowMetadata(metadata: KubeObject['metadata']): KubeObject['metadata'] {
  if (metadata.managedFields === undefined) return metadata;
  const { managedFields: _omitted, ...rest } = metadata;
  return rest;
}

/** A cell from JSONPath results, the way kube's CRD table convertor formats them. */
function formatCell(type: PrinterColumn['type'], results: unknown[], now: number): TableCell {
  if (results.length === 0) return null;
  const first = results[0];
  switch (type) {
    case 'date':
      return typeof first === 'string' ? ageSince(first, now) : null;
    case 'integer':
      return typeof first === 'number' ? Math.trunc(first) : null;
    case 'number':
      return typeof first === 'number' ? first : null;
    case 'boolean':
      return typeof first === 'boolean' ? first : null;
    default:
      return results.map(printValue).join(',');
  }
}

function printValue(v: unknown): string {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return v.map(printValue).join(',');
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

// ---------------------------------------------------------------------------------------------------------
// JSONPath subset: `.a.b`, `.a[0].b`, `.a[-1]`, `.a[*].b`, `.a.*`, `['x.y']`, `..b`,
// `[?(@.type=="Ready")]` (==, !=, <, <=, >, >=, or bare existence), optionally wrapped in `{…}` or after `$`.

export type JsonPathSegment =
  | { t: 'field'; name: string }
  | { t: 'index'; i: number }
  | { t: 'wildcard' }
  | { t: 'recursive'; name: string }
  | { t: 'filter'; path: JsonPathSegment[]; op?: string; value?: unknown };

const pathCache = new Map<string, JsonPathSegment[]>();

export function parseJsonPath(expr: string): JsonPathSegment[] {
  const cached = pathCache.get(expr);
  if (cached) return cached;
  let s = expr.trim();
  if (s.startsWith('{') && s.endsWith('}')) s = s.slice(1, -1).trim();
  if (s.startsWith('$')) s = s.slice(1);
  const segs = parseSegments(s, expr);
  pathCache.set(expr, segs);
  return segs;
}

function parseSegments(s: string, whole: string): JsonPathSegment[] {
  const segs: JsonPathSegment[] = [];
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`invalid JSONPath ${JSON.stringify(whole)}: ${why}`);
  };
  const readName = (): string => {
    let name = '';
    while (i < s.length && s[i] !== '.' && s[i] !== '[') {
      if (s[i] === '\\' && i + 1 < s.length) i++;
      name += s[i++];
    }
    return name;
  };
  while (i < s.length) {
    const ch = s[i];
    if (ch === '.') {
      if (s[i + 1] === '.') {
        i += 2;
        const name = readName();
        if (!name) fail('expected a field name after ..');
        segs.push({ t: 'recursive', name });
        continue;
      }
      i++;
      if (s[i] === '*') {
        i++;
        segs.push({ t: 'wildcard' });
        continue;
      }
      const name = readName();
      if (name) segs.push({ t: 'field', name });
      continue;
    }
    if (ch === '[') {
      const close = findClose(s, i);
      if (close < 0) fail('unclosed [');
      const inner = s.slice(i + 1, close).trim();
      i = close + 1;
      if (inner === '*') segs.push({ t: 'wildcard' });
      else if (/^-?\d+$/.test(inner)) segs.push({ t: 'index', i: Number(inner) });
      else if (/^'.*'$|^".*"$/.test(inner)) segs.push({ t: 'field', name: inner.slice(1, -1) });
      else if (inner.startsWith('?(') && inner.endsWith(')')) segs.push(parseFilter(inner.slice(2, -1).trim(), whole));
      else fail(`unsupported subscript [${inner}]`);
      continue;
    }
    // A path may start without a dot (`spec.plan`).
    const name = readName();
    if (!name) fail(`unexpected ${JSON.stringify(ch)}`);
    segs.push({ t: 'field', name });
  }
  return segs;
}

function findClose(s: string, open: number): number {
  let depth = 0;
  let quote: string | undefined;
  for (let j = open; j < s.length; j++) {
    const c = s[j];
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '[') depth++;
    else if (c === ']' && --depth === 0) return j;
  }
  return -1;
}

function parseFilter(body: string, whole: string): JsonPathSegment {
  const m = /^@((?:\.[^=!<>\s]+|\[[^\]]*\])*)\s*(?:(==|!=|<=|>=|<|>)\s*(.+))?$/.exec(body);
  if (!m) throw new Error(`invalid JSONPath ${JSON.stringify(whole)}: unsupported filter ${body}`);
  const path = parseSegments(m[1] ?? '', whole);
  if (!m[2]) return { t: 'filter', path };
  const raw = m[3]!.trim();
  let value: unknown;
  if (/^'.*'$|^".*"$/.test(raw)) value = raw.slice(1, -1);
  else if (raw === 'true' || raw === 'false') value = raw === 'true';
  else if (raw === 'null') value = null;
  else if (!Number.isNaN(Number(raw))) value = Number(raw);
  else throw new Error(`invalid JSONPath ${JSON.stringify(whole)}: unsupported literal ${raw}`);
  return { t: 'filter', path, op: m[2], value };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function compare(a: unknown, op: string, b: unknown): boolean {
  switch (op) {
    case '==':
      return a === b;
    case '!=':
      return a !== b;
    default: {
      if (typeof a !== typeof b || (typeof a !== 'number' && typeof a !== 'string')) return false;
      const x = a as number | string;
      const y = b as number | string;
      return op === '<' ? x < y : op === '<=' ? x <= y : op === '>' ? x > y : x >= y;
    }
  }
}

function evaluate(root: unknown, segs: readonly JsonPathSegment[]): unknown[] {
  let cur: unknown[] = [root];
  for (const seg of segs) {
    const next: unknown[] = [];
    for (const v of cur) {
      switch (seg.t) {
        case 'field':
          if (isObject(v) && v[seg.name] !== undefined) next.push(v[seg.name]);
          break;
        case 'index':
          if (Array.isArray(v)) {
            const i = seg.i < 0 ? v.length + seg.i : seg.i;
            if (i >= 0 && i < v.length) next.push(v[i]);
          }
          break;
        case 'wildcard':
          if (Array.isArray(v)) next.push(...v);
          else if (isObject(v)) next.push(...Object.values(v));
          break;
        case 'recursive':
          collect(v, seg.name, next);
          break;
        case 'filter': {
          const items = Array.isArray(v) ? v : isObject(v) ? Object.values(v) : [];
          for (const item of items) {
            const found = evaluate(item, seg.path);
            if (seg.op === undefined ? found.length > 0 : found.some((f) => compare(f, seg.op!, seg.value))) next.push(item);
          }
          break;
        }
      }
    }
    cur = next;
  }
  return cur;
}

function collect(v: unknown, name: string, out: unknown[]): void {
  if (Array.isArray(v)) for (const x of v) collect(x, name, out);
  else if (isObject(v)) {
    if (v[name] !== undefined) out.push(v[name]);
    for (const x of Object.values(v)) collect(x, name, out);
  }
}

/** Every value `path` selects in `obj` (empty when nothing matches). Throws on a path outside the subset. */
export function evalJsonPath(obj: unknown, path: string): unknown[] {
  return evaluate(obj, parseJsonPath(path));
}
