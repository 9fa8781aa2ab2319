// YAML from outside, parsed within bounds: every YAML entry point (kube API bodies, CloudConfig parts) goes
// through here instead of calling the `yaml` package directly.
//
// The `yaml` composer and `toJS` recurse once per level of nesting and, past a few hundred levels, overflow the
// stack in the middle of their work (a 400 that leaks what it had built, or a process killed by V8 when the
// overflow lands inside the RegExp compiler). Aliases are resolved by reference, so a small document can stand
// for a huge value that everything after the parser (validation, JSON.stringify, patching) then expands. So:
//   1. before the parser sees the text: its size, its number of documents and a conservative bound of its
//      nesting, from the `yaml` lexer's tokens (a linear pass that recurses nowhere);
//   2. after composing, before `toJS`: the size of the value with every alias expanded, counted over the
//      document's nodes with one size per anchor (linear in the document, not in the expansion);
//   3. after `toJS`: the real depth of the value (aliases can nest an anchor below another one).
import YAML, { CST, Lexer, isAlias, isMap, isPair, isScalar, isSeq } from 'yaml';
import { ApiError } from './errors.js';
import { measureValue, stringifyJsonDeep, tooDeep } from './bounded-json.js';

export interface YamlLimits {
  /** What the text is, for messages: "the request body", "CloudConfig part 2". */
  what: string;
  /** Longest text accepted (characters). */
  maxBytes: number;
  /** Deepest nesting of sequences and mappings. */
  maxDepth: number;
  /** Most documents in one stream (`---` separated), empty ones included. */
  maxDocuments: number;
  /**
   * The value with aliases expanded may be at most `expansionRatio` times the text, but always `minExpanded`
   * and never more than `maxExpanded` (estimated JSON characters).
   */
  expansionRatio: number;
  minExpanded: number;
  maxExpanded: number;
}

export const DEFAULT_YAML_LIMITS: Omit<YamlLimits, 'what'> = {
  maxBytes: 3 * 1024 * 1024,
  // Stored objects are at most 100 levels deep (src/kinds/validation.ts); the composer recurses about 800 levels
  // before overflowing, so this leaves it room even where the pre-scan's bound is loose.
  maxDepth: 128,
  maxDocuments: 100,
  expansionRatio: 16,
  minExpanded: 1024 * 1024,
  maxExpanded: 6 * 1024 * 1024,
};

// ---------------------------------------------------------------------------------------------------------
// 1. The pre-scan.

export interface YamlTextShape {
  /** An upper bound of the nesting the parser would build (see yamlNestingBound). */
  depth: number;
  /** An upper bound of the number of documents (up to twice the real number). */
  documents: number;
}

type BlockKind = 'map' | 'seq';

/**
 * Bounds the nesting of YAML text from the lexer's tokens, without composing it. Flow nesting is counted exactly
 * (`[`/`{` tokens: the lexer already tells brackets in quoted, plain and block scalars apart). Block nesting is
 * followed the way indentation defines it: a stack of open block collections with their columns; a `-`, `?` or
 * implicit key at column c closes the ones indented deeper, is a sibling of one at c of its kind, and opens a
 * new level otherwise (a sequence at its parent key's column, `key:\n- a`, is a level too). Stops at `stopAt`.
 */
export function yamlTextShape(text: string, stopAt = Infinity): YamlTextShape {
  let deepest = 0;
  // Counted from both the lexer's document marker and `---`, so `---` opening the first document counts twice.
  let documents = 0;
  let flow = 0;
  const block: { col: number; kind: BlockKind }[] = [];
  let col = 0;
  // The column where the current run of node tokens on this line started (an implicit key's column, counting
  // its anchor, tag or flow collection), or -1 when none started since the last indicator or line break.
  let runStart = -1;
  const open = (c: number, kind: BlockKind): void => {
    while (block.length && block[block.length - 1]!.col > c) block.pop();
    const top = block[block.length - 1];
    if (!top || top.col < c || top.kind !== kind) block.push({ col: c, kind });
    if (block.length + flow > deepest) deepest = block.length + flow;
  };
  for (const tok of new Lexer().lex(text)) {
    const at = col;
    const nl = tok.lastIndexOf('\n');
    col = nl < 0 ? col + tok.length : tok.length - nl - 1;
    switch (CST.tokenType(tok)) {
      case 'doc-mode':
      case 'doc-start':
        documents++;
        flow = 0;
        block.length = 0;
        runStart = -1;
        break;
      case 'flow-error-end':
        // The lexer left flow context here (an unclosed `[` or `{` followed by less indented lines).
        flow = 0;
        break;
      case 'newline':
        runStart = -1;
        break;
      case 'space':
      case 'comment':
      case 'scalar': // the zero-width marker before a scalar's source
      case 'byte-order-mark':
        break;
      case 'seq-item-ind':
        if (flow === 0) open(at, 'seq');
        runStart = -1;
        break;
      case 'explicit-key-ind':
        if (flow === 0) open(at, 'map');
        runStart = -1;
        break;
      case 'map-value-ind':
        if (flow === 0) open(runStart >= 0 ? runStart : at, 'map');
        runStart = -1;
        break;
      case 'flow-map-start':
      case 'flow-seq-start':
        if (runStart < 0) runStart = at;
        flow++;
        if (block.length + flow > deepest) deepest = block.length + flow;
        break;
      case 'flow-map-end':
      case 'flow-seq-end':
        if (flow > 0) flow--;
        break;
      case 'comma':
        runStart = -1;
        break;
      default:
        // Scalars, anchors, tags, aliases, block scalar headers, directives. A token spanning lines (a
        // multi-line scalar) cannot start an implicit key on the line it ends on.
        if (nl >= 0) runStart = -1;
        else if (runStart < 0) runStart = at;
    }
    if (deepest > stopAt) break;
  }
  return { depth: deepest, documents: Math.max(documents, 1) };
}

// ---------------------------------------------------------------------------------------------------------
// 2. The expanded size, over the composed document.

function scalarSize(v: unknown): number {
  if (typeof v === 'string') return v.length + 2;
  if (v === null || v === undefined) return 4;
  return String(v).length;
}

class ExpansionError extends Error {}
class DuplicateKeyError extends Error {}

/**
 * The `yaml` composer's own duplicate-key check compares each key with every earlier one (a 20 000-key map takes
 * seconds), so it is turned off and done here with a set per map: scalar keys only, as YAML compares them
 * (`1` and `"1"` differ).
 */
function checkUniqueKeys(items: unknown[]): void {
  if (items.length < 2) return;
  const seen = new Set<string>();
  for (const item of items) {
    const key = isPair(item) ? item.key : undefined;
    if (!isScalar(key)) continue;
    const id = `${typeof key.value}:${String(key.value)}`;
    if (seen.has(id)) throw new DuplicateKeyError(`Map keys must be unique; ${JSON.stringify(String(key.value))} is repeated`);
    seen.add(id);
  }
}

/**
 * The estimated JSON length of the document's value with every alias replaced by what it names, computed in one
 * pass over the nodes: an anchored node's size is kept, an alias adds it. Throws ExpansionError past `budget`, or
 * for an alias inside the node it names (a value that would contain itself); DuplicateKeyError for a map that
 * repeats a key.
 */
export function expandedSize(doc: YAML.Document.Parsed, budget: number): number {
  const anchors = new Map<string, object>();
  const sizes = new Map<object, number>();
  const inProgress = new Set<object>();
  let total = 0;
  type Frame = { node: unknown; exitOf?: undefined } | { exitOf: object; start: number };
  const stack: Frame[] = [{ node: doc.contents }];
  while (stack.length) {
    const f = stack.pop()!;
    if (f.exitOf !== undefined) {
      const { exitOf, start } = f as { exitOf: object; start: number };
      sizes.set(exitOf, total - start);
      inProgress.delete(exitOf);
      continue;
    }
    const node = (f as { node: unknown }).node;
    if (node === null || node === undefined) {
      total += 4;
    } else if (isAlias(node)) {
      const target = anchors.get(node.source);
      // An alias to no anchor is the composer's error to report (toJS throws "Unresolved alias").
      if (target !== undefined) {
        if (inProgress.has(target)) throw new ExpansionError(`the alias *${node.source} is inside the node it names, so its value would contain itself`);
        total += sizes.get(target) ?? 0;
      }
    } else {
      const anchor = (node as { anchor?: string }).anchor;
      if (anchor && typeof node === 'object') {
        anchors.set(anchor, node);
        inProgress.add(node);
        stack.push({ exitOf: node, start: total });
      }
      if (isScalar(node)) total += scalarSize(node.value);
      else if (isMap(node) || isSeq(node)) {
        const items = node.items as unknown[];
        if (isMap(node)) checkUniqueKeys(items);
        total += 2 + items.length;
        for (let i = items.length - 1; i >= 0; i--) stack.push({ node: items[i] });
      } else if (isPair(node)) {
        total += 1;
        stack.push({ node: node.value });
        stack.push({ node: node.key });
      }
    }
    if (total > budget) throw new ExpansionError(`with its aliases expanded it would be more than ${budget} characters as JSON`);
  }
  return total;
}

// ---------------------------------------------------------------------------------------------------------
// The entry points.

/**
 * Parses a YAML stream within `limits` and returns the value of each non-empty document. Bad or too big input is
 * an ApiError: 400 for syntax and nesting, 413 for size and alias expansion, each message naming the limit.
 */
export function parseBoundedYaml(text: string, limits: YamlLimits): unknown[] {
  const { what } = limits;
  if (text.length > limits.maxBytes) {
    throw ApiError.tooLarge(`${what} is ${text.length} characters of YAML, more than the ${limits.maxBytes} accepted`);
  }
  const shape = yamlTextShape(text, limits.maxDepth);
  if (shape.depth > limits.maxDepth) throw tooDeep(what, limits.maxDepth);
  if (shape.documents > 2 * limits.maxDocuments) {
    throw ApiError.badRequest(`${what} holds more than ${limits.maxDocuments} YAML documents; at most ${limits.maxDocuments} are accepted`);
  }
  let docs: YAML.Document.Parsed[];
  try {
    docs = YAML.parseAllDocuments(text, { uniqueKeys: false }) as YAML.Document.Parsed[];
  } catch (e) {
    throw ApiError.badRequest(`invalid YAML in ${what}: ${(e as Error).message}`);
  }
  if (!Array.isArray(docs)) return []; // an empty stream
  if (docs.length > limits.maxDocuments) {
    throw ApiError.badRequest(`${what} holds ${docs.length} YAML documents; at most ${limits.maxDocuments} are accepted`);
  }
  const budget = Math.min(limits.maxExpanded, Math.max(limits.minExpanded, limits.expansionRatio * text.length));
  const values: unknown[] = [];
  for (const doc of docs) {
    if (doc.errors.length) throw ApiError.badRequest(`invalid YAML in ${what}: ${doc.errors[0]!.message}`);
    if (doc.contents === null) continue;
    try {
      expandedSize(doc, budget);
    } catch (e) {
      if (e instanceof DuplicateKeyError) throw ApiError.badRequest(`invalid YAML in ${what}: ${e.message}`);
      if (!(e instanceof ExpansionError)) throw e;
      throw ApiError.tooLarge(`${what} uses YAML aliases too much: ${e.message} (the limit is ${limits.expansionRatio} times the text, at least ${limits.minExpanded} and at most ${limits.maxExpanded}); write the repeated parts out or send JSON`);
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: -1 });
    } catch (e) {
      throw ApiError.badRequest(`invalid YAML in ${what}: ${(e as Error).message}`);
    }
    // An alias can place a deep anchor deep again; the expansion bound keeps this walk short.
    const measured = measureValue(value, { maxDepth: limits.maxDepth, maxBytes: budget });
    if (measured.exceeded === 'depth') throw tooDeep(what, limits.maxDepth);
    values.push(value);
  }
  return values;
}

/** Nodes deeper than this are written as JSON (flow style): block indentation grows with the square of depth. */
const BLOCK_STYLE_MAX_DEPTH = 32;

/**
 * YAML text for a response, for any value that JSON could carry: block style for ordinary objects, and JSON —
 * which is YAML too — for values nested too deep for the YAML stringifier (which recurses and whose block
 * indentation would make a deep object's text grow with the square of its depth) or that it fails on.
 */
export function stringifyYamlSafely(value: unknown): string {
  if (measureValue(value, { maxDepth: BLOCK_STYLE_MAX_DEPTH, maxBytes: Infinity }).exceeded === undefined) {
    try {
      return YAML.stringify(value);
    } catch {
      // fall through to JSON
    }
  }
  return stringifyJsonDeep(value) + '\n';
}
