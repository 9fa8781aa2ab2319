// YAML from outside, parsed within bounds: every YAML entry point (kube API bodies, CloudConfig parts) goes
// through here instead of calling the `yaml` package directly.
//
// The `yaml` composer and `toJS` recurse once per level of nesting and, past a few hundred levels, overflow the
// stack in the middle of their work (a 400 that leaks what it had built, or a process killed by V8 when the
// overflow lands inside the RegExp compiler). Aliases are resolved by reference, so a small document can stand
// for a huge value that everything after the parser (validation, JSON.stringify, patching) then expands. So:
//   1. before the composer sees the text: its size, and while the (iterative) parser reads it, its nesting
//      and number of documents;
//   2. after composing, before `toJS`: the size of the value with every alias expanded, counted over the
//      document's nodes with one size per anchor (linear in the document, not in the expansion);
//   3. after `toJS`: the real depth of the value (aliases can nest an anchor below another one).
import YAML, { CST, Composer, LineCounter, Lexer, Parser, isAlias, isMap, isPair, isScalar, isSeq } from 'yaml';
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
   * Most nodes (scalars, aliases and collection entries), all documents together. The `yaml` package holds about
   * 1.5 KB per node while it composes (a 2 MB map of 200 000 keys takes 300 MB), where JSON.parse holds a
   * tenth of that: large objects belong in JSON.
   */
  maxNodes: number;
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
  // Stored objects are at most 100 levels deep (src/kinds/validation.ts). The composer overflows the stack
  // about 800 levels down and nests at most twice the parser's depth, so this leaves it ample room.
  maxDepth: 128,
  maxDocuments: 100,
  maxNodes: 50_000,
  expansionRatio: 16,
  minExpanded: 1024 * 1024,
  maxExpanded: 6 * 1024 * 1024,
};

// ---------------------------------------------------------------------------------------------------------
// 1. Parsing to the concrete syntax tree, bounded as it goes.

/** Lexemes that become a node of their own: a scalar, an alias, or an entry of a collection. */
const NODE_LEXEMES = new Set<string>(['scalar', 'single-quoted-scalar', 'double-quoted-scalar', 'alias', 'flow-map-start', 'flow-seq-start', 'seq-item-ind', 'explicit-key-ind']);

/**
 * Runs the `yaml` lexer and parser (both iterative: the parser keeps an explicit stack of the collections open
 * at the current token) and stops as soon as that stack is deeper than `maxDepth`, more than `maxDocuments`
 * documents are done or more than `maxNodes` nodes were read. The composer, which recurses, only ever sees a
 * syntax tree within those bounds. The stack is what the composer will nest, except that a flow sequence entry
 * `a: b` (or an erroneous `- ` in flow) becomes a map of its own: the composer nests at most twice the stack
 * (a property test holds it to that), and the value is measured exactly after.
 */
export function parseYamlSyntax(text: string, limits: Pick<YamlLimits, 'maxDepth' | 'maxDocuments' | 'maxNodes' | 'what'>, lineCounter?: LineCounter): CST.Token[] {
  const parser = new Parser(lineCounter?.addNewLine);
  const tokens: CST.Token[] = [];
  let documents = 0;
  let nodes = 0;
  const take = (t: CST.Token): void => {
    tokens.push(t);
    if (t.type === 'document' && ++documents > limits.maxDocuments) {
      throw ApiError.badRequest(`${limits.what} holds more than ${limits.maxDocuments} YAML documents; at most ${limits.maxDocuments} are accepted`);
    }
  };
  for (const lexeme of new Lexer().lex(text)) {
    if (NODE_LEXEMES.has(CST.tokenType(lexeme) ?? '') && ++nodes > limits.maxNodes) {
      throw ApiError.badRequest(`${limits.what} holds more than ${limits.maxNodes} YAML nodes (scalars and collection entries); at most ${limits.maxNodes} are accepted in YAML: send large objects as JSON`);
    }
    for (const t of parser.next(lexeme)) take(t);
    // The bottom of the stack is the document itself.
    if (parser.stack.length - 1 > limits.maxDepth) throw tooDeep(limits.what, limits.maxDepth);
  }
  for (const t of parser.end()) take(t);
  return tokens;
}

// ---------------------------------------------------------------------------------------------------------
// 2. The expanded size, over the composed document.

function scalarSize(v: unknown): number {
  if (typeof v === 'string') return v.length + 2;
  if (v === null || v === undefined) return 4;
  return String(v).length;
}

class ExpansionError extends Error {}
/** Errors in the document itself (a repeated key, an alias inside what it names): 400, not a limit. */
class DocumentError extends Error {}

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
    if (seen.has(id)) throw new DocumentError(`Map keys must be unique; ${JSON.stringify(String(key.value))} is repeated`);
    seen.add(id);
  }
}

/**
 * The estimated JSON length of the document's value with every alias replaced by what it names, computed in one
 * pass over the nodes: an anchored node's size is kept, an alias adds it. Throws ExpansionError past `budget`, and
 * DocumentError (a document error) for a map that repeats a key, or an alias inside the node it names (a
 * value that would contain itself).
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
        if (inProgress.has(target)) throw new DocumentError(`the alias *${node.source} is inside the node it names, so its value would contain itself`);
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
 * an ApiError: 413 for text over maxBytes, 400 for syntax, nesting and alias expansion, each naming the limit.
 */
export function parseBoundedYaml(text: string, limits: YamlLimits): unknown[] {
  const { what } = limits;
  if (text.length > limits.maxBytes) {
    throw ApiError.tooLarge(`${what} is ${text.length} characters of YAML, more than the ${limits.maxBytes} accepted`);
  }
  const lineCounter = new LineCounter();
  const syntax = parseYamlSyntax(text, limits, lineCounter);
  const docs = [...new Composer({ uniqueKeys: false }).compose(syntax)] as YAML.Document.Parsed[];
  const where = (e: YAML.YAMLError): string => {
    const at = lineCounter.linePos(e.pos[0]);
    return `${e.message.split('\n')[0]} (line ${at.line}, column ${at.col})`;
  };
  const budget = Math.min(limits.maxExpanded, Math.max(limits.minExpanded, limits.expansionRatio * text.length));
  const values: unknown[] = [];
  for (const doc of docs) {
    if (doc.errors.length) throw ApiError.badRequest(`invalid YAML in ${what}: ${where(doc.errors[0]!)}`);
    if (doc.contents === null) continue;
    try {
      expandedSize(doc, budget);
    } catch (e) {
      if (e instanceof DocumentError) throw ApiError.badRequest(`invalid YAML in ${what}: ${e.message}`);
      if (!(e instanceof ExpansionError)) throw e;
      // 400 like any other malformed body (an alias bomb is the client's document, not its size).
      throw ApiError.badRequest(`${what} uses YAML aliases too much: ${e.message} (the limit is ${limits.expansionRatio} times the text, at least ${limits.minExpanded} and at most ${limits.maxExpanded}); write the repeated parts out or send JSON`);
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
