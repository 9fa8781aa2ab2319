// Rendering a CloudConfig, as pure functions over plain data: placeholders, then patches (toFieldPath) into
// cloud-config YAML, then one document — a part as itself when cloud-init would recognize it by its first line,
// several as a multipart/mixed MIME message in the shape `cloud-init devel make-mime` writes — then the optional
// gzip, then the size check. The same inputs always give the same bytes (the MIME boundary is derived from the
// content, not random), so the hash changes only when the content does.
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { CloudConfigPart, CloudConfigSpec, CloudConfigStatus } from '../../kinds/cloud-config.js';
import { validateCloudConfigSchema } from '../../kinds/cloud-init/schema.js';
import {
  checkFieldWrite,
  defaultFilename,
  isShellScript,
  parseFieldPath,
  substitutePlaceholders,
  typeFromStartsWith,
  type PartContentType,
  type PathSegment,
} from '../../kinds/cloud-init/template.js';
import { parseYamlBounded } from '../../kinds/cloud-init/yaml.js';

/**
 * The most user data a machine is given, in bytes as it receives them (after gzip). Equinix Metal and this
 * API's `Device.spec.userData` take 64 KiB; EC2 takes 16 KiB, so a document meant for both should stay below
 * that. A larger one is refused (reason TooLarge) rather than cut off at boot.
 */
export const MaxUserDataBytes = 64 * 1024;

export interface RenderedPart {
  contentType: PartContentType;
  filename: string;
  content: string;
}

export type PartOutcome = { ok: true; part: RenderedPart } | { ok: false; message: string };

export type RenderOutcome =
  | {
      ok: true;
      /** The document before encoding. */
      document: string;
      contentType: string;
      /** `sha256:<hex>` of `document`: what changes only when the content does, whatever the encoding. */
      hash: string;
      /** What a machine receives (gzip bytes with encoding gzip+base64). */
      delivered: Buffer;
      parts: RenderedPart[];
    }
  | { ok: false; reason: 'RenderFailed' | 'TooLarge'; message: string };

/** One part with its values in: placeholders, then patches, then (cloud-config) the YAML and schema again. */
export function renderPart(part: CloudConfigPart, index: number, values: ReadonlyMap<string, string>): PartOutcome {
  const at = `parts[${index}]`;
  const sub = substitutePlaceholders(part.content, values);
  if (sub.missing.length) return { ok: false, message: `${at}: no value for ${sub.missing.map((n) => `$(${n})`).join(', ')}` };
  let content = sub.text;
  if (isShellScript(part.contentType) && !content.startsWith('#!')) {
    return { ok: false, message: `${at}: a ${part.contentType} part must start with #!` };
  }
  if (part.contentType === 'text/cloud-config') {
    const parsed = parseYamlBounded(content);
    if (!parsed.ok) {
      return { ok: false, message: `${at}: with its values in, the cloud-config ${parsed.message} (set a value with a patch's toFieldPath to have it quoted as YAML)` };
    }
    if (part.patches?.length) {
      for (const p of part.patches) {
        const v = values.get(p.fromValue);
        if (v === undefined) return { ok: false, message: `${at}: no value for patch ${p.fromValue}` };
        const path = parseFieldPath(p.toFieldPath);
        if (!path.ok) return { ok: false, message: `${at}: toFieldPath ${path.message}` };
        const problem = checkFieldWrite(parsed.doc.toJS(), path.segments);
        if (problem) return { ok: false, message: `${at}: toFieldPath ${p.toFieldPath}: ${problem}` };
        try {
          parsed.doc.setIn(yamlPath(path.segments), v);
        } catch (e) {
          return { ok: false, message: `${at}: toFieldPath ${p.toFieldPath}: ${(e as Error).message}` };
        }
      }
      content = parsed.doc.toString({ lineWidth: 0 });
    }
    const check = part.patches?.length ? parseYamlBounded(content) : parsed;
    if (!check.ok) return { ok: false, message: `${at}: the patched cloud-config ${check.message}` };
    const errors = validateCloudConfigSchema(check.value);
    if (errors.length) return { ok: false, message: `${at}: with its values in, ${errors.join('; ')}` };
  }
  return { ok: true, part: { contentType: part.contentType, filename: part.filename ?? defaultFilename(index), content } };
}

function yamlPath(segments: readonly PathSegment[]): Array<string | number> {
  return segments.map((s) => ('index' in s ? s.index : 'key' in s ? s.key : ''));
}

/** Renders the whole document from a spec whose values all resolved. */
export function renderCloudConfig(spec: CloudConfigSpec, values: ReadonlyMap<string, string>, maxBytes = MaxUserDataBytes): RenderOutcome {
  const parts: RenderedPart[] = [];
  for (const [i, p] of spec.parts.entries()) {
    const r = renderPart(p, i, values);
    if (!r.ok) return { ok: false, reason: 'RenderFailed', message: r.message };
    parts.push(r.part);
  }
  const single = parts.length === 1 && typeFromStartsWith(parts[0]!.content) === parts[0]!.contentType ? parts[0]! : undefined;
  const document = single ? single.content : multipartMixed(parts);
  const contentType = single ? single.contentType : 'multipart/mixed';
  const delivered = spec.encoding === 'gzip+base64' ? gzip(document) : Buffer.from(document);
  if (delivered.length > maxBytes) {
    const hint = spec.encoding ? '' : ' (spec.encoding: gzip+base64 sends it compressed)';
    return { ok: false, reason: 'TooLarge', message: `the rendered user data is ${delivered.length} bytes; a datasource carries at most ${maxBytes}${hint}` };
  }
  return { ok: true, document, contentType, hash: hashOf(document), delivered, parts };
}

export function hashOf(document: string): string {
  return `sha256:${createHash('sha256').update(document).digest('hex')}`;
}

/** gzip with a fixed header (no name, mtime 0), so the same document gives the same bytes. */
function gzip(document: string): Buffer {
  return gzipSync(Buffer.from(document), { level: 9 });
}

/**
 * A multipart/mixed message cloud-init splits into its parts (cloudinit.user_data.UserDataProcessor): top-level
 * `MIME-Version` (cloud-init looks for it in the first 4 KiB to tell MIME from a plain document), and per part
 * its Content-Type, a transfer encoding that keeps the bytes (7bit for ASCII with short lines, else base64
 * UTF-8) and the file name cloud-init saves scripts under.
 */
export function multipartMixed(parts: readonly RenderedPart[]): string {
  const seed = createHash('sha256');
  for (const p of parts) seed.update(`${p.contentType}\0${p.filename}\0${p.content}\0`);
  const digest = seed.digest('hex');
  let boundary = `==metalplane-${digest.slice(0, 32)}==`;
  // A boundary must not occur in any part; one derived from the parts' own hash practically never does.
  for (let n = 0; parts.some((p) => p.content.includes(`--${boundary}`)); n++) boundary = `==metalplane-${digest.slice(0, 32)}-${n}==`;
  const out: string[] = [`Content-Type: multipart/mixed; boundary="${boundary}"`, 'MIME-Version: 1.0', ''];
  for (const p of parts) {
    const ascii = /^[\x00-\x7f]*$/.test(p.content) && !p.content.split('\n').some((l) => l.length > 998);
    out.push(`--${boundary}`);
    out.push(`Content-Type: ${p.contentType}; charset="${ascii ? 'us-ascii' : 'utf-8'}"`);
    out.push('MIME-Version: 1.0');
    out.push(`Content-Transfer-Encoding: ${ascii ? '7bit' : 'base64'}`);
    out.push(`Content-Disposition: attachment; filename="${p.filename}"`);
    out.push('');
    // The line break before a boundary belongs to the boundary, so a part's own last newline is kept.
    out.push(ascii ? p.content : (Buffer.from(p.content).toString('base64').match(/.{1,76}/g) ?? []).join('\n'));
  }
  out.push(`--${boundary}--`, '');
  return out.join('\n');
}

/** The user data as status carries it: the document, or base64 of its gzip. */
export function statusUserData(delivered: Buffer, encoding: CloudConfigSpec['encoding']): string {
  return encoding === 'gzip+base64' ? delivered.toString('base64') : delivered.toString('utf8');
}

/**
 * What a machine receives, from a CloudConfig's status (and the Secret it points to, when it does). The
 * metadata service serves these bytes; cloud-init unzips gzip itself.
 */
export function deliveredUserData(status: CloudConfigStatus, secretData?: Record<string, string>): Buffer | undefined {
  if (status.secretRef) {
    const b64 = secretData?.[status.secretRef.key];
    return b64 === undefined ? undefined : Buffer.from(b64, 'base64');
  }
  if (status.userData === undefined) return undefined;
  return status.encoding === 'gzip+base64' ? Buffer.from(status.userData, 'base64') : Buffer.from(status.userData);
}

/** The rendered document as text (unzipped), for composing into another CloudConfig or for display. */
export function documentOf(delivered: Buffer, encoding: string | undefined): string {
  return (encoding === 'gzip+base64' ? gunzipSync(delivered, { maxOutputLength: 4 * 1024 * 1024 }) : delivered).toString('utf8');
}
