// Bounds on the shape of JSON-like values, for text and data that come from outside: nesting depth and size.
// Everything downstream of a decoded body (validation, patching, managed fields, structuredClone,
// JSON.stringify, the YAML encoder) recurses per level of nesting, so a value nested a few thousand levels deep
// overflows the stack somewhere far from where it came in. These checks are iterative (no recursion of their
// own), linear in what they walk and stop as soon as a bound is passed.
import { ApiError } from './errors.js';

export interface ShapeLimits {
  /** Deepest nesting of arrays and objects; the outermost container is level 1. */
  maxDepth: number;
  /** Roughly the length of the value written as JSON (characters); Infinity for no bound. */
  maxBytes: number;
}

export interface Shape {
  /** Deepest nesting reached (at most maxDepth + 1 when the walk stopped on depth). */
  depth: number;
  /** Estimated JSON length walked (past maxBytes when the walk stopped on size). */
  bytes: number;
  /** Which bound stopped the walk, if one did. */
  exceeded?: 'depth' | 'bytes';
  /** Where the walk stopped, as path segments from the root (for messages). */
  at?: (string | number)[];
}

/**
 * The deepest `[`/`{` nesting of JSON text, found without parsing (strings are skipped, escapes honoured).
 * Stops counting past `max`. For valid JSON it is exact; for invalid JSON it is still an upper bound of what a
 * parser would build before failing.
 */
export function jsonTextDepth(text: string, max = Infinity): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > deepest && (deepest = depth) > max) return deepest;
    } else if ((c === 0x5d /* ] */ || c === 0x7d) /* } */ && depth > 0) depth--;
  }
  return deepest;
}

function scalarBytes(v: unknown): number {
  if (typeof v === 'string') return v.length + 2;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v).length;
  if (typeof v === 'boolean') return v ? 4 : 5;
  return 4; // null, undefined
}

/**
 * Walks a decoded value (iteratively, depth first) and measures its nesting and estimated JSON size, stopping at
 * the first bound passed. Shared references (YAML aliases) are walked once per reference, as JSON would write
 * them, so a value that aliases one big map a hundred times measures a hundred times its size; cycles end on the
 * size or depth bound, so give at least one finite bound for values that may hold them.
 */
export function measureValue(value: unknown, limits: ShapeLimits): Shape {
  // Nearly every value measured is within its bounds (every stored object is measured on every write): a
  // recursive walk answers those without the stacks, the path or a key array per object. A value past a bound,
  // or a depth bound too large to recurse to, takes the iterative walk, which also says where it stopped.
  if (limits.maxDepth <= MAX_RECURSIVE_DEPTH) {
    const tally = { bytes: 0, deepest: 0 };
    if (withinBounds(value, 1, limits, tally)) return { depth: tally.deepest, bytes: tally.bytes };
  }
  return measureWalk(value, limits);
}

/** Deepest depth bound measured by recursion (the kinds' and the store's bounds are 100 and below). */
const MAX_RECURSIVE_DEPTH = 1000;

/** The recursive walk of measureValue: false as soon as a bound is passed; adds what it walked to `tally`. */
function withinBounds(v: unknown, depth: number, limits: ShapeLimits, tally: { bytes: number; deepest: number }): boolean {
  if (v === null || typeof v !== 'object') {
    tally.bytes += scalarBytes(v);
    return tally.bytes <= limits.maxBytes;
  }
  if (depth > tally.deepest) tally.deepest = depth;
  if (depth > limits.maxDepth) return false;
  tally.bytes += 2;
  if (Array.isArray(v)) {
    tally.bytes += v.length;
    for (let i = 0; i < v.length; i++) if (!withinBounds(v[i], depth + 1, limits, tally)) return false;
  } else {
    // Own keys only, as Object.keys gives them (decoded JSON and YAML have no inherited enumerable keys).
    for (const k in v) {
      if (!Object.prototype.hasOwnProperty.call(v, k)) continue;
      tally.bytes += k.length + 4;
      if (!withinBounds((v as Record<string, unknown>)[k], depth + 1, limits, tally)) return false;
    }
  }
  return tally.bytes <= limits.maxBytes;
}

/** measureValue's iterative walk, which keeps the path so that a value past a bound says where (exported for tests). */
export function measureWalk(value: unknown, limits: ShapeLimits): Shape {
  let bytes = 0;
  let deepest = 0;
  // Parallel stacks: the value, its depth and its path segment; `path` is the current path (depth - 1 long).
  const values: unknown[] = [value];
  const depths: number[] = [1];
  const keys: (string | number)[] = [''];
  const path: (string | number)[] = [];
  while (values.length) {
    const v = values.pop();
    const depth = depths.pop()!;
    const key = keys.pop()!;
    if (depth > 1) {
      path.length = depth - 2;
      path.push(key);
    } else path.length = 0;
    if (v === null || typeof v !== 'object') {
      bytes += scalarBytes(v);
      if (bytes > limits.maxBytes) return { depth: deepest, bytes, exceeded: 'bytes', at: [...path] };
      continue;
    }
    if (depth > deepest) deepest = depth;
    if (depth > limits.maxDepth) return { depth, bytes, exceeded: 'depth', at: [...path] };
    bytes += 2;
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) {
        values.push(v[i]);
        depths.push(depth + 1);
        keys.push(i);
      }
      bytes += v.length;
    } else {
      const entries = Object.keys(v);
      for (let i = entries.length - 1; i >= 0; i--) {
        const k = entries[i]!;
        values.push((v as Record<string, unknown>)[k]);
        depths.push(depth + 1);
        keys.push(k);
        bytes += k.length + 4;
      }
    }
    if (bytes > limits.maxBytes) return { depth: deepest, bytes, exceeded: 'bytes', at: [...path] };
  }
  return { depth: deepest, bytes };
}

/** `spec`, `actions`, 0, `params` → `spec.actions[0].params`; long paths are shortened in the middle. */
export function formatPath(path: readonly (string | number)[], maxSegments = 12): string {
  const seg = (p: string | number, i: number): string =>
    typeof p === 'number' ? `[${p}]` : /^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(p) ? (i === 0 ? p : `.${p}`) : `[${JSON.stringify(p)}]`;
  if (path.length <= maxSegments) return path.map(seg).join('') || '<root>';
  const head = path.slice(0, maxSegments / 2).map(seg).join('');
  const tail = path.slice(-maxSegments / 2).map((p, i) => seg(p, i)).join('');
  return `${head}…(${path.length - maxSegments} more)…${tail}`;
}

export interface JsonLimits {
  maxDepth: number;
  /** What the text is, for messages: "the request body", "the user data part". */
  what: string;
}

export function tooDeep(what: string, maxDepth: number): ApiError {
  return ApiError.badRequest(`${what} is nested more than ${maxDepth} levels deep; objects that deep are not accepted (at most ${maxDepth} levels of arrays and objects)`);
}

/**
 * Whether the text holds more than `max` opening brackets (`{` or `[`, inside strings too): if it does not, it
 * cannot nest deeper than `max`. Counted with indexOf, which searches natively: most texts have few brackets,
 * and this saves them the character-by-character walk of jsonTextDepth.
 */
export function hasMoreBracketsThan(text: string, max: number): boolean {
  let n = 0;
  for (let i = text.indexOf('{'); i >= 0; i = text.indexOf('{', i + 1)) if (++n > max) return true;
  for (let i = text.indexOf('['); i >= 0; i = text.indexOf('[', i + 1)) if (++n > max) return true;
  return false;
}

/** JSON.parse, after checking the nesting of the text: a 400 saying what was wrong for deep or broken text. */
export function parseBoundedJson(text: string, limits: JsonLimits): unknown {
  if (hasMoreBracketsThan(text, limits.maxDepth) && jsonTextDepth(text, limits.maxDepth) > limits.maxDepth) throw tooDeep(limits.what, limits.maxDepth);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw ApiError.badRequest(`invalid JSON in ${limits.what}: ${(e as Error).message}`);
  }
}

/**
 * JSON text of any value JSON.parse could have produced, however deep: the native JSON.stringify for ordinary
 * depths, an explicit stack beyond (V8's recursive stringify overflows a few thousand levels down).
 */
export function stringifyJsonDeep(value: unknown): string {
  if (measureValue(value, { maxDepth: 1000, maxBytes: Infinity }).exceeded === undefined) return JSON.stringify(value) ?? 'null';
  const out: string[] = [];
  // Work items: a value to write, or a literal piece of text (closing brackets, commas, keys).
  const work: ({ v: unknown } | { s: string })[] = [{ v: value }];
  while (work.length) {
    const item = work.pop()!;
    if ('s' in item) {
      out.push(item.s);
      continue;
    }
    const v = item.v;
    if (v === null || typeof v !== 'object' || typeof (v as { toJSON?: unknown }).toJSON === 'function') {
      out.push(JSON.stringify(v) ?? 'null');
      continue;
    }
    const pieces: ({ v: unknown } | { s: string })[] = [];
    if (Array.isArray(v)) {
      pieces.push({ s: '[' });
      v.forEach((x, i) => {
        if (i > 0) pieces.push({ s: ',' });
        pieces.push({ v: x === undefined || typeof x === 'function' ? null : x });
      });
      pieces.push({ s: ']' });
    } else {
      pieces.push({ s: '{' });
      let first = true;
      for (const [k, x] of Object.entries(v)) {
        if (x === undefined || typeof x === 'function') continue;
        pieces.push({ s: `${first ? '' : ','}${JSON.stringify(k)}:` });
        pieces.push({ v: x });
        first = false;
      }
      pieces.push({ s: '}' });
    }
    for (let i = pieces.length - 1; i >= 0; i--) work.push(pieces[i]!);
  }
  return out.join('');
}
