// The template language of a CloudConfig, as pure functions shared by admission (src/kinds/cloud-config.ts) and
// the renderer (src/controllers/cloudconfig/render.ts):
//
// - `$(NAME)` placeholders, Kubernetes' convention for env and args, with `$$(NAME)` for a literal `$(NAME)`.
//   Names are upper case (`DB_IP`), so that a shell part's command substitutions (`$(hostname)`) are never taken
//   for placeholders; an unknown upper-case `$(NAME)` is refused rather than left as is, since it is almost
//   always a typo.
// - Field paths (`status.ipAddresses[0].address`, `write_files[0].content`, `data["a.b"]`): read from an
//   object for a `fieldRef`, written into a cloud-config part's YAML for a Crossplane-style `toFieldPath`.
// - The content types cloud-init knows, and how it recognizes a part by its first line.

export const ValueNamePattern = '^[A-Z_][A-Z0-9_]*$';
const placeholderRe = /\$\$\(([A-Z_][A-Z0-9_]*)\)|\$\(([A-Z_][A-Z0-9_]*)\)/g;

/** The placeholder names `text` uses (escaped ones excluded), each once, in order of first use. */
export function placeholdersIn(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.matchAll(placeholderRe)) if (m[2]) out.add(m[2]);
  return [...out];
}

/**
 * Replaces every `$(NAME)` with its value and every `$$(NAME)` with `$(NAME)`, in one pass (a value is never
 * expanded again). Names without a value are returned in `missing` and left as they were.
 */
export function substitutePlaceholders(text: string, values: ReadonlyMap<string, string>): { text: string; missing: string[] } {
  const missing = new Set<string>();
  const out = text.replace(placeholderRe, (whole, escaped: string | undefined, name: string | undefined) => {
    if (escaped) return `$(${escaped})`;
    const v = values.get(name!);
    if (v === undefined) {
      missing.add(name!);
      return whole;
    }
    return v;
  });
  return { text: out, missing: [...missing] };
}

// ---------------------------------------------------------------------------------------------------------
// Field paths.

export type PathSegment =
  | { key: string }
  | { index: number }
  /** `[?(@.family==4)]`: the first list item whose field equals the value (reads only). */
  | { filter: { path: string[]; value: string | number | boolean | null } };

export type ParsedPath = { ok: true; segments: PathSegment[] } | { ok: false; message: string };

const identRe = /^[A-Za-z_$][A-Za-z0-9_$-]*/;

/** Parses `a.b[0]["c.d"]` (and, with `filters`, `[?(@.x.y=="v")]`). */
export function parseFieldPath(path: string, opts: { filters?: boolean } = {}): ParsedPath {
  const segments: PathSegment[] = [];
  let i = 0;
  const fail = (what: string): ParsedPath => ({ ok: false, message: `${JSON.stringify(path)}: ${what} at offset ${i}` });
  if (path.length === 0) return { ok: false, message: 'a field path must not be empty' };
  if (path.length > 512) return { ok: false, message: 'a field path must be at most 512 characters' };
  while (i < path.length) {
    const c = path[i]!;
    if (c === '.' && segments.length > 0) {
      i++;
      const m = identRe.exec(path.slice(i));
      if (!m) return fail('expected a field name');
      segments.push({ key: m[0] });
      i += m[0].length;
    } else if (c === '[') {
      const close = path.indexOf(']', i);
      if (close < 0) return fail('unclosed [');
      const inner = path.slice(i + 1, close);
      if (/^\d+$/.test(inner)) {
        if (inner.length > 6) return fail('index too large');
        segments.push({ index: Number(inner) });
      } else if (/^"(?:[^"\\]|\\.)*"$/.test(inner) || /^'[^']*'$/.test(inner)) {
        segments.push({ key: inner.startsWith('"') ? (JSON.parse(inner) as string) : inner.slice(1, -1) });
      } else if (inner.startsWith('?(')) {
        if (!opts.filters) return fail('a filter can only be read, not written');
        const f = /^\?\(@((?:\.[A-Za-z_$][A-Za-z0-9_$-]*)+)\s*==\s*(.+)\)$/.exec(inner);
        if (!f) return fail('expected a filter like [?(@.family==4)]');
        let value: unknown;
        try {
          value = JSON.parse(f[2]!.trim().replace(/^'([^']*)'$/, '"$1"'));
        } catch {
          return fail('the filter value must be a string in quotes, a number, true, false or null');
        }
        if (value !== null && typeof value === 'object') return fail('the filter value must be a scalar');
        segments.push({ filter: { path: f[1]!.slice(1).split('.'), value: value as string | number | boolean | null } });
      } else {
        return fail('expected [<index>], ["<key>"] or a filter');
      }
      i = close + 1;
    } else if (segments.length === 0) {
      const m = identRe.exec(path);
      if (!m) return fail('expected a field name');
      segments.push({ key: m[0] });
      i = m[0].length;
    } else {
      return fail(`unexpected ${JSON.stringify(c)}`);
    }
  }
  return { ok: true, segments };
}

export function formatFieldPath(segments: readonly PathSegment[]): string {
  let out = '';
  for (const s of segments) {
    if ('index' in s) out += `[${s.index}]`;
    else if ('filter' in s) out += `[?(@.${s.filter.path.join('.')}==${JSON.stringify(s.filter.value)})]`;
    else out += identRe.test(s.key) && identRe.exec(s.key)![0] === s.key ? (out ? `.${s.key}` : s.key) : `[${JSON.stringify(s.key)}]`;
  }
  return out;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The value at `segments`, or where the path stopped resolving. */
export function getField(root: unknown, segments: readonly PathSegment[]): { found: true; value: unknown } | { found: false; missing: string } {
  let cur: unknown = root;
  for (let n = 0; n < segments.length; n++) {
    const s = segments[n]!;
    const here = () => formatFieldPath(segments.slice(0, n + 1));
    if ('key' in s) {
      if (!isRecord(cur) || !Object.prototype.hasOwnProperty.call(cur, s.key)) return { found: false, missing: here() };
      cur = cur[s.key];
    } else if ('index' in s) {
      if (!Array.isArray(cur) || s.index >= cur.length) return { found: false, missing: here() };
      cur = cur[s.index];
    } else {
      if (!Array.isArray(cur)) return { found: false, missing: here() };
      const hit = cur.find((item) => {
        const r = getField(item, s.filter.path.map((key) => ({ key })));
        return r.found && r.value === s.filter.value;
      });
      if (hit === undefined) return { found: false, missing: here() };
      cur = hit;
    }
    if (cur === undefined || cur === null) return { found: false, missing: here() };
  }
  return { found: true, value: cur };
}

/**
 * Checks that `segments` can be written into `root` as Crossplane's fieldpath does: missing maps and lists on
 * the way are created, a list index may be at most the list's length (the next item), and nothing that is
 * there already may be of the other shape. Returns the problem, or undefined when the write can go ahead.
 */
export function checkFieldWrite(root: unknown, segments: readonly PathSegment[]): string | undefined {
  let cur: unknown = root;
  for (let n = 0; n < segments.length; n++) {
    const s = segments[n]!;
    const at = n === 0 ? 'the document' : formatFieldPath(segments.slice(0, n));
    if (cur === undefined || cur === null) return undefined;
    if ('filter' in s) return 'a filter can only be read, not written';
    if ('key' in s) {
      if (!isRecord(cur)) return `${at} is ${Array.isArray(cur) ? 'a list' : `a ${typeof cur}`}, not a mapping`;
      cur = cur[s.key];
    } else {
      if (!Array.isArray(cur)) return `${at} is ${isRecord(cur) ? 'a mapping' : `a ${typeof cur}`}, not a list`;
      if (s.index > cur.length) return `${at} has ${cur.length} items: index ${s.index} would leave a gap`;
      cur = cur[s.index];
    }
  }
  return undefined;
}

/** A value read from an object, as text for a placeholder: strings as they are, anything else as JSON. */
export function fieldText(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

// ---------------------------------------------------------------------------------------------------------
// Content types.

/** The part types cloud-init 22.4 handles (cloudinit/handlers: INCLUSION_TYPES_MAP and the part handlers). */
export const PartContentTypes = [
  'text/cloud-config',
  'text/x-shellscript',
  'text/x-shellscript-per-boot',
  'text/x-shellscript-per-instance',
  'text/x-shellscript-per-once',
  'text/cloud-boothook',
  'text/part-handler',
  'text/x-include-url',
  'text/x-include-once-url',
  'text/cloud-config-archive',
  'text/jinja2',
] as const;
export type PartContentType = (typeof PartContentTypes)[number];

/** The first-line prefixes cloud-init recognizes a document by (handlers.INCLUSION_TYPES_MAP). */
const startsWith: ReadonlyArray<[string, PartContentType]> = (
  [
    ['#include', 'text/x-include-url'],
    ['#include-once', 'text/x-include-once-url'],
    ['#!', 'text/x-shellscript'],
    ['#cloud-config', 'text/cloud-config'],
    ['#part-handler', 'text/part-handler'],
    ['#cloud-boothook', 'text/cloud-boothook'],
    ['#cloud-config-archive', 'text/cloud-config-archive'],
    ['## template: jinja', 'text/jinja2'],
  ] as Array<[string, PartContentType]>
).sort((a, b) => b[0].length - a[0].length);

/** The type cloud-init gives a document that is not MIME, from its start (longest prefix first, as it does). */
export function typeFromStartsWith(content: string): PartContentType | undefined {
  const head = content.trimStart().slice(0, 64).toLowerCase();
  return startsWith.find(([prefix]) => head.startsWith(prefix))?.[1];
}

/** A part's MIME file name when it names none (cloud-init's own default is `part-NNN` too). */
export function defaultFilename(index: number): string {
  return `part-${String(index + 1).padStart(3, '0')}`;
}

export function isShellScript(t: PartContentType): boolean {
  return t.startsWith('text/x-shellscript');
}
