// YAML as cloud-init reads it (PyYAML's safe_load, YAML 1.1: `yes` is true, `0644` is octal), with bounds
// checked before and after parsing so that a hostile part cannot make admission slow or deep: a size cap
// before the parser sees the text, a cap on alias expansion, and a cap on nesting depth of the result.
//
// A shared bounded parser (src/lib/bounded-yaml.ts) is being written on another branch; when it lands this
// helper should become a thin call into it with the same limits.
import YAML, { type Document, type Tags } from 'yaml';

export interface YamlBounds {
  /** Bytes of text (UTF-8). */
  maxBytes: number;
  /** Nesting depth of maps and sequences in the result. */
  maxDepth: number;
  /** Aliases (`*a`) resolved; PyYAML has no cap, so a billion-laughs document is refused here first. */
  maxAliases: number;
}

export const DefaultYamlBounds: YamlBounds = { maxBytes: 128 * 1024, maxDepth: 64, maxAliases: 100 };

export type YamlResult = { ok: true; value: unknown; doc: Document } | { ok: false; message: string };

/** Parses one YAML document within `bounds`; the message of a failure says where and what. */
export function parseYamlBounded(text: string, bounds: YamlBounds = DefaultYamlBounds): YamlResult {
  const bytes = Buffer.byteLength(text);
  if (bytes > bounds.maxBytes) return { ok: false, message: `is ${bytes} bytes; at most ${bounds.maxBytes} are parsed` };
  // Flow collections nest without indentation, so a short text can nest deeply: count brackets before parsing
  // (strings included, which only makes the check stricter than needed for documents no config comes near).
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5b || c === 0x7b) {
      if (++depth > bounds.maxDepth) return { ok: false, message: `nests deeper than ${bounds.maxDepth} levels` };
    } else if ((c === 0x5d || c === 0x7d) && depth > 0) depth--;
  }
  let doc: Document;
  try {
    doc = YAML.parseDocument(text, { version: '1.1', prettyErrors: true, uniqueKeys: false, customTags: pyyamlScalars });
  } catch (e) {
    return { ok: false, message: `is not valid YAML: ${(e as Error).message}` };
  }
  if (doc.errors.length > 0) return { ok: false, message: `is not valid YAML: ${firstLine(doc.errors[0]!.message)}` };
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: bounds.maxAliases });
  } catch (e) {
    return { ok: false, message: `is not valid YAML: ${(e as Error).message}` };
  }
  if (depthOf(value, bounds.maxDepth + 1) > bounds.maxDepth) return { ok: false, message: `nests deeper than ${bounds.maxDepth} levels` };
  return { ok: true, value, doc };
}

/**
 * Where PyYAML (and so cloud-init) reads plain scalars differently from the yaml package's 1.1 schema: `y` and
 * `n` are strings, not booleans, and an exponent needs a dot and a sign to make a float (`1e3` is a string).
 */
function pyyamlScalars(tags: Tags): Tags {
  return tags.map((t) => {
    if (typeof t !== 'object' || !('test' in t) || !t.test) return t;
    if (t.tag === 'tag:yaml.org,2002:bool') {
      const isTrue = t.identify?.(true) === true;
      return { ...t, test: isTrue ? /^(?:yes|Yes|YES|true|True|TRUE|on|On|ON)$/ : /^(?:no|No|NO|false|False|FALSE|off|Off|OFF)$/ };
    }
    if (t.tag === 'tag:yaml.org,2002:float' && t.format === 'EXP') return { ...t, test: /^[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*[eE][-+][0-9]+$/ };
    return t;
  });
}

function firstLine(s: string): string {
  const i = s.indexOf('\n');
  return (i < 0 ? s : s.slice(0, i)).replace(/:$/, '');
}

/** The nesting depth of `v`, counting no further than `limit`. */
function depthOf(v: unknown, limit: number): number {
  if (limit <= 0 || v === null || typeof v !== 'object' || v instanceof Date) return 0;
  let max = 0;
  for (const child of Array.isArray(v) ? v : v instanceof Map ? [...v.values()] : Object.values(v)) {
    max = Math.max(max, depthOf(child, limit - 1));
    if (max >= limit - 1) break;
  }
  return 1 + max;
}
