/**
 * A deep copy of a JSON value (a decoded body, a stored object): several times cheaper than structuredClone,
 * which serializes and deserializes. Members holding `undefined` are dropped, as JSON has none. The caller
 * bounds the depth (objects are size-checked before they are copied).
 */
export function cloneJson<T>(v: T): T {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) {
    const arr: unknown[] = new Array(v.length);
    for (let i = 0; i < v.length; i++) arr[i] = cloneJson(v[i]);
    return arr as T;
  }
  // Object.keys and an index loop rather than Object.entries: no pair arrays for every member (a hot path of writes).
  const src = v as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  const keys = Object.keys(src);
  for (let i = 0; i < keys.length; i++) {
    const x = src[keys[i]!];
    if (x !== undefined) out[keys[i]!] = cloneJson(x);
  }
  return out as T;
}
