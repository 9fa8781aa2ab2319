// The JSON body of a large list, written as it is read: items leave in chunks of bytes, so the server never
// holds the whole text (14 MB for 10 000 ConfigMaps) as one string and then again as its UTF-8 copy, the
// client starts receiving while the rest is encoded, and a slow client holds back the encoding (the stream
// pulls the next chunk when the socket wants it). Every item is already JSON text (the stored version with its
// resourceVersion spliced in), so nothing is parsed or stringified.
import { Readable } from 'node:stream';
import type { KeyValue } from '../store/types.js';

/** Items per chunk: about 1 MB of typical objects, well above the socket's buffer, well below a burst. */
const CHUNK_ITEMS = 512;

/** Lists up to this many items are sent as one string (the stream's set-up costs more than it saves). */
export const STREAM_ABOVE_ITEMS = 1024;

/** `head` + the items joined by commas + `tail`, as a byte stream of a few chunks. */
export function streamedList<T>(head: string, items: readonly T[], json: (item: T) => string, tail: string): Readable {
  let next = 0;
  return new Readable({
    read() {
      if (next > items.length) return;
      const parts: string[] = [];
      if (next === 0) parts.push(head);
      const end = Math.min(items.length, next + CHUNK_ITEMS);
      for (let i = next; i < end; i++) parts.push(i === 0 ? json(items[i]!) : ',' + json(items[i]!));
      if (end === items.length) parts.push(tail);
      next = end === items.length ? items.length + 1 : end;
      this.push(Buffer.from(parts.join('')));
      if (next > items.length) this.push(null);
    },
  });
}

/** What streamedVersions needs of the codec: each version's rawJson, written as bytes. */
export interface VersionWriter {
  rawJsonBytes(kv: KeyValue): number;
  writeRawJson(kv: KeyValue, buf: Buffer, offset: number): number;
}

/**
 * `streamedList` of stored versions as their rawJson, each written straight into its chunk's buffer around the
 * spliced revision: no spliced string per item, no joined string per chunk, one copy of the text in all.
 */
export function streamedVersions(head: string, kvs: readonly KeyValue[], codec: VersionWriter, tail: string): Readable {
  let next = 0;
  return new Readable({
    read() {
      if (next > kvs.length) return;
      const end = Math.min(kvs.length, next + CHUNK_ITEMS);
      let size = (next === 0 ? Buffer.byteLength(head) : 0) + (end === kvs.length ? Buffer.byteLength(tail) : 0);
      for (let i = next; i < end; i++) size += codec.rawJsonBytes(kvs[i]!) + 1;
      const buf = Buffer.allocUnsafe(size);
      let o = next === 0 ? buf.write(head, 0, 'utf8') : 0;
      for (let i = next; i < end; i++) {
        if (i > 0) buf[o++] = 0x2c; // ,
        o += codec.writeRawJson(kvs[i]!, buf, o);
      }
      if (end === kvs.length) o += buf.write(tail, o, 'utf8');
      next = end === kvs.length ? kvs.length + 1 : end;
      this.push(o === size ? buf : buf.subarray(0, o));
      if (next > kvs.length) this.push(null);
    },
  });
}
