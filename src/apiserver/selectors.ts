// Label and field selectors, as the kube API accepts them in `labelSelector` / `fieldSelector` (and as
// metav1.LabelSelector in objects). Parse errors are ApiError 400 BadRequest with kube's wording, e.g.
// `unable to parse requirement: found '', expected: '('` or `field label not supported: spec.foo`.
import { selectableFieldsOf } from '../kinds/index.js';
import type { KindDeclaration, KubeObject } from '../kinds/types.js';
import { isQualifiedName, isValidLabelValue } from '../kinds/validation.js';
import { ApiError } from '../lib/errors.js';
import { evalJsonPath } from './table.js';

// ---------------------------------------------------------------------------------------------------------
// Label selectors

export type LabelOperator = 'exists' | '!' | '=' | '==' | '!=' | 'in' | 'notin' | 'gt' | 'lt';

export interface LabelRequirement {
  key: string;
  operator: LabelOperator;
  values: string[];
}

export class LabelSelector {
  constructor(readonly requirements: readonly LabelRequirement[]) {}

  /** True when the selector selects everything. */
  isEmpty(): boolean {
    return this.requirements.length === 0;
  }

  matches(labels: Readonly<Record<string, string>> | undefined): boolean {
    const l = labels ?? {};
    return this.requirements.every((r) => matchRequirement(r, l));
  }

  toString(): string {
    return this.requirements
      .map((r) => {
        switch (r.operator) {
          case 'exists':
            return r.key;
          case '!':
            return `!${r.key}`;
          case 'in':
          case 'notin':
            return `${r.key} ${r.operator} (${r.values.join(',')})`;
          case 'gt':
            return `${r.key}>${r.values[0]}`;
          case 'lt':
            return `${r.key}<${r.values[0]}`;
          default:
            return `${r.key}${r.operator}${r.values[0]}`;
        }
      })
      .join(',');
  }
}

function matchRequirement(r: LabelRequirement, labels: Readonly<Record<string, string>>): boolean {
  const has = Object.prototype.hasOwnProperty.call(labels, r.key);
  const v = labels[r.key];
  switch (r.operator) {
    case 'exists':
      return has;
    case '!':
      return !has;
    case '=':
    case '==':
    case 'in':
      return has && r.values.includes(v!);
    case '!=':
    case 'notin':
      return !has || !r.values.includes(v!);
    case 'gt':
    case 'lt': {
      if (!has || !/^-?\d+$/.test(v!)) return false;
      const n = Number(v);
      const limit = Number(r.values[0]);
      return r.operator === 'gt' ? n > limit : n < limit;
    }
  }
}

type TokenType = 'id' | '!' | '=' | '==' | '!=' | 'in' | 'notin' | '>' | '<' | ',' | '(' | ')' | 'end';
interface Token {
  type: TokenType;
  text: string;
}

const special = new Set([' ', '\t', '\n', '\r', ',', '(', ')', '!', '=', '<', '>']);

function lex(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const c = input[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
    } else if (c === '!' && input[i + 1] === '=') {
      tokens.push({ type: '!=', text: '!=' });
      i += 2;
    } else if (c === '=' && input[i + 1] === '=') {
      tokens.push({ type: '==', text: '==' });
      i += 2;
    } else if (c === '!' || c === '=' || c === ',' || c === '(' || c === ')') {
      tokens.push({ type: c, text: c });
      i++;
    } else if (c === '<' || c === '>') {
      tokens.push({ type: c, text: c });
      i++;
    } else {
      let j = i;
      while (j < input.length && !special.has(input[j]!)) j++;
      const text = input.slice(i, j);
      tokens.push({ type: text === 'in' ? 'in' : text === 'notin' ? 'notin' : 'id', text });
      i = j;
    }
  }
  tokens.push({ type: 'end', text: '' });
  return tokens;
}

/** A syntax error inside one requirement; becomes `unable to parse requirement: …`. */
class SelectorSyntaxError extends Error {}

function badSelector(message: string): ApiError {
  return ApiError.badRequest(message);
}

/**
 * Parses kube's label selector syntax: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, `a>1`,
 * `a<1`, comma-separated (AND). An empty or absent selector selects everything.
 */
export function parseLabelSelector(selector: string | undefined): LabelSelector {
  const tokens = lex(selector ?? '');
  let pos = 0;
  const peek = (): Token => tokens[pos]!;
  const next = (): Token => tokens[pos++]!;
  const requirements: LabelRequirement[] = [];

  const isValue = (t: Token): boolean => t.type === 'id' || t.type === 'in' || t.type === 'notin';

  // `(a,b)`; empty entries (`()`, `(,a)`, `(a,)`) are the empty value, as in kube.
  const parseValues = (): string[] => {
    const open = next();
    if (open.type !== '(') throw new SelectorSyntaxError(`found '${open.text}', expected: '('`);
    const values = new Set<string>();
    let expectValue = true;
    for (;;) {
      const t = next();
      if (t.type === ')') {
        if (expectValue) values.add('');
        return [...values];
      }
      if (t.type === ',') {
        if (expectValue) values.add('');
        expectValue = true;
      } else if (isValue(t) && expectValue) {
        values.add(t.text);
        expectValue = false;
      } else if (isValue(t)) {
        throw new SelectorSyntaxError(`found '${t.text}', expected: ',' or ')'`);
      } else {
        throw new SelectorSyntaxError(`found '${t.text}', expected: ',', ')' or identifier`);
      }
    }
  };

  const parseRequirement = (): LabelRequirement => {
    let t = next();
    if (t.type === '!') {
      t = next();
      if (t.type !== 'id') throw new SelectorSyntaxError(`found '${t.text}', expected: identifier after '!'`);
      return checked({ key: t.text, operator: '!', values: [] });
    }
    const key = t.text;
    const op = peek();
    switch (op.type) {
      case ',':
      case 'end':
        return checked({ key, operator: 'exists', values: [] });
      case '=':
      case '==':
      case '!=': {
        next();
        const v = peek();
        if (v.type === 'id' || v.type === 'in' || v.type === 'notin') {
          next();
          return checked({ key, operator: op.type, values: [v.text] });
        }
        if (v.type === ',' || v.type === 'end') return checked({ key, operator: op.type, values: [''] });
        throw new SelectorSyntaxError(`found '${v.text}', expected: identifier`);
      }
      case 'in':
      case 'notin':
        next();
        return checked({ key, operator: op.type, values: parseValues() });
      case '>':
      case '<': {
        next();
        const v = next();
        if (v.type !== 'id') throw new SelectorSyntaxError(`found '${v.text}', expected: identifier`);
        return checked({ key, operator: op.type === '>' ? 'gt' : 'lt', values: [v.text] });
      }
      default:
        throw new SelectorSyntaxError(`found '${op.text}', expected: in, notin, =, ==, !=, gt, lt`);
    }
  };

  for (;;) {
    const t = peek();
    if (t.type === 'end') break;
    if (t.type !== 'id' && t.type !== '!') throw badSelector(`found '${t.text}', expected: !, identifier, or 'end of string'`);
    try {
      requirements.push(parseRequirement());
    } catch (e) {
      if (e instanceof SelectorSyntaxError) throw badSelector(`unable to parse requirement: ${e.message}`);
      throw e;
    }
    const after = next();
    if (after.type === 'end') break;
    if (after.type !== ',') throw badSelector(`found '${after.text}', expected: ',' or 'end of string'`);
    const following = peek();
    if (following.type !== 'id' && following.type !== '!') {
      throw badSelector(`found '${following.text}', expected: identifier after ','`);
    }
  }
  return new LabelSelector(requirements);
}

/** kube's NewRequirement checks: a valid key, valid values, one integer for gt/lt. Throws the message. */
function checked(r: LabelRequirement): LabelRequirement {
  for (const m of isQualifiedName(r.key)) throw new SelectorSyntaxError(`key: Invalid value: ${JSON.stringify(r.key)}: ${m}`);
  if (r.operator === 'gt' || r.operator === 'lt') {
    if (r.values.length !== 1) throw new SelectorSyntaxError("for 'Gt', 'Lt' operators, exactly one value is required");
    if (!/^-?\d+$/.test(r.values[0]!)) throw new SelectorSyntaxError("for 'Gt', 'Lt' operators, the value must be an integer");
    return r;
  }
  if ((r.operator === '=' || r.operator === '==' || r.operator === '!=') && r.values.length !== 1) {
    throw new SelectorSyntaxError('exact-match compatibility requires one single value');
  }
  r.values.forEach((v, i) => {
    for (const m of isValidLabelValue(v)) throw new SelectorSyntaxError(`values[${i}]: Invalid value: ${JSON.stringify(v)}: ${m}`);
  });
  return r;
}

/** A metav1.LabelSelector as found in objects (`matchLabels` AND `matchExpressions`). */
export interface LabelSelectorObject {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }[];
}

export function labelSelectorFromObject(sel: LabelSelectorObject): LabelSelector {
  const reqs: LabelRequirement[] = [];
  for (const [key, value] of Object.entries(sel.matchLabels ?? {})) reqs.push({ key, operator: '=', values: [value] });
  for (const e of sel.matchExpressions ?? []) {
    const operator: LabelOperator =
      e.operator === 'In' ? 'in' : e.operator === 'NotIn' ? 'notin' : e.operator === 'Exists' ? 'exists' : '!';
    reqs.push({ key: e.key, operator, values: e.values ?? [] });
  }
  try {
    for (const r of reqs) if (r.operator !== '=' || r.values.length === 1) checked(r);
  } catch (e) {
    if (e instanceof SelectorSyntaxError) throw badSelector(`unable to parse requirement: ${e.message}`);
    throw e;
  }
  return new LabelSelector(reqs);
}

// ---------------------------------------------------------------------------------------------------------
// Field selectors

export interface FieldRequirement {
  field: string;
  operator: '=' | '==' | '!=';
  value: string;
}

export class FieldSelector {
  constructor(
    readonly requirements: readonly FieldRequirement[],
    private readonly paths: ReadonlyMap<string, string>,
  ) {}

  isEmpty(): boolean {
    return this.requirements.length === 0;
  }

  /** The value a requirement `field=value` pins, if the selector has one (e.g. to read one key directly). */
  exactValue(field: string): string | undefined {
    return this.requirements.find((r) => r.field === field && r.operator !== '!=')?.value;
  }

  matches(obj: KubeObject): boolean {
    return this.requirements.every((r) => {
      const actual = fieldValue(obj, this.paths.get(r.field)!);
      return r.operator === '!=' ? actual !== r.value : actual === r.value;
    });
  }
}

function fieldValue(obj: KubeObject, jsonPath: string): string {
  const [v] = evalJsonPath(obj, jsonPath);
  if (v === undefined || v === null) return '';
  return typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/** Splits on unescaped commas (kube allows `\,`, `\=` and `\\` in values). */
function splitTerms(s: string): string[] {
  const terms: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\' && i + 1 < s.length) {
      cur += s[i]! + s[i + 1]!;
      i++;
    } else if (s[i] === ',') {
      terms.push(cur);
      cur = '';
    } else cur += s[i];
  }
  terms.push(cur);
  return terms;
}

function unescapeValue(v: string): string {
  let out = '';
  for (let i = 0; i < v.length; i++) {
    if (v[i] === '\\') {
      const n = v[i + 1];
      if (n !== '\\' && n !== ',' && n !== '=') throw badSelector('invalid field selector: invalid escape sequence');
      out += n;
      i++;
    } else if (v[i] === ',' || v[i] === '=') {
      throw badSelector('invalid field selector: unescaped special character');
    } else out += v[i];
  }
  return out;
}

/**
 * Parses kube's field selector syntax (`f=v`, `f==v`, `f!=v`, comma = AND) against the fields `kind` can be
 * selected by (metadata.name, metadata.namespace and its `selectableFields`).
 */
export function parseFieldSelector(selector: string | undefined, kind: KindDeclaration): FieldSelector {
  const paths = new Map(selectableFieldsOf(kind).map((f) => [f.name, f.jsonPath]));
  const s = (selector ?? '').trim();
  if (s === '') return new FieldSelector([], paths);
  const reqs: FieldRequirement[] = [];
  for (const term of splitTerms(s)) {
    const t = term.trim();
    if (t === '') continue;
    const m = /^(.*?)(!=|==|=)(.*)$/s.exec(t);
    if (!m) throw badSelector(`invalid selector: '${s}'; can't understand '${t}'`);
    const field = m[1]!.trim();
    if (!paths.has(field)) throw badSelector(`field label not supported: ${field}`);
    reqs.push({ field, operator: m[2] as FieldRequirement['operator'], value: unescapeValue(m[3]!.trim()) });
  }
  return new FieldSelector(reqs, paths);
}
