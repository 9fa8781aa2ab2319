// IPMI 2.0 over LAN (RMCP+), the wire format and the crypto, as pure functions over buffers: what ipmitool
// `-I lanplus -C 3` speaks. Cipher suite 3 = RAKP-HMAC-SHA1 authentication, HMAC-SHA1-96 integrity, AES-CBC-128
// confidentiality, the one every BMC since IPMI 2.0 implements. Section numbers refer to the IPMI v2.0 rev 1.1
// specification. No I/O here: session.ts sends and receives, this file only builds and checks packets.
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** RMCP header (§13.1.3): version 6, reserved, sequence 0xff (no RMCP ack), class 7 (IPMI). */
const RMCP_HEADER = Buffer.from([0x06, 0x00, 0xff, 0x07]);
const AUTH_TYPE_RMCPP = 0x06;

export const PayloadType = {
  ipmi: 0x00,
  openSessionRequest: 0x10,
  openSessionResponse: 0x11,
  rakp1: 0x12,
  rakp2: 0x13,
  rakp3: 0x14,
  rakp4: 0x15,
} as const;

export const Privilege = { callback: 1, user: 2, operator: 3, admin: 4 } as const;

/** The largest answer we accept: an IPMI message is at most a few hundred bytes. */
export const MAX_PACKET_BYTES = 1024;

/** RMCP+ status codes of Open Session and RAKP answers (§13.24), with what they mean for the operator. */
const RMCPP_STATUS: Record<number, string> = {
  0x01: 'insufficient resources to create a session (too many open sessions)',
  0x02: 'invalid session id',
  0x03: 'invalid payload type',
  0x04: 'invalid authentication algorithm',
  0x05: 'invalid integrity algorithm',
  0x06: 'no matching authentication payload',
  0x07: 'no matching integrity payload',
  0x08: 'inactive session id',
  0x09: 'invalid role',
  0x0a: 'unauthorized role or privilege level requested',
  0x0b: 'insufficient resources to create a session at the requested role',
  0x0c: 'invalid name length',
  0x0d: 'unauthorized name (no such user)',
  0x0e: 'unauthorized GUID',
  0x0f: 'invalid integrity check value (wrong password?)',
  0x10: 'invalid confidentiality algorithm',
  0x11: 'no cipher suite match with proposed security algorithms',
  0x12: 'illegal or unrecognized parameter',
};

/** Status codes that mean "these credentials will never work" rather than "try again". */
const AUTH_STATUS = new Set([0x09, 0x0a, 0x0c, 0x0d, 0x0e, 0x0f]);

export function describeStatus(code: number): string {
  return RMCPP_STATUS[code] ?? `status 0x${code.toString(16).padStart(2, '0')}`;
}

export function isAuthStatus(code: number): boolean {
  return AUTH_STATUS.has(code);
}

/** A parse failure: the peer sent something that is not the RMCP+ answer we expected. */
export class ProtocolError extends Error {}

// --- session wrapper (§13.6) --------------------------------------------------------------------------------

export interface SessionKeys {
  /** K1: HMAC-SHA1-96 integrity key. */
  k1: Buffer;
  /** The first 16 bytes of K2: the AES-CBC-128 key. */
  aesKey: Buffer;
}

export interface Packet {
  payloadType: number;
  sessionId: number;
  sequence: number;
  payload: Buffer;
}

/** An RMCP+ packet; with keys, the payload is encrypted and the packet carries an integrity trailer. */
export function encodePacket(p: Packet, keys?: SessionKeys, iv: Buffer = randomBytes(16)): Buffer {
  const body = keys ? encrypt(p.payload, keys.aesKey, iv) : p.payload;
  const type = keys ? p.payloadType | 0xc0 : p.payloadType;
  const session = Buffer.alloc(12);
  session[0] = AUTH_TYPE_RMCPP;
  session[1] = type;
  session.writeUInt32LE(p.sessionId >>> 0, 2);
  session.writeUInt32LE(p.sequence >>> 0, 6);
  session.writeUInt16LE(body.length, 10);
  if (!keys) return Buffer.concat([RMCP_HEADER, session, body]);
  // Integrity pad: from the auth type byte through the next-header byte, a multiple of 4 bytes (§13.28.4).
  const unpadded = session.length + body.length + 2;
  const padLength = (4 - (unpadded % 4)) % 4;
  const trailer = Buffer.concat([Buffer.alloc(padLength, 0xff), Buffer.from([padLength, 0x07])]);
  const signed = Buffer.concat([session, body, trailer]);
  return Buffer.concat([RMCP_HEADER, signed, authCode(keys.k1, signed)]);
}

/** Parses an RMCP+ packet; with keys, checks its integrity trailer and decrypts its payload. */
export function decodePacket(buf: Buffer, keys?: SessionKeys): Packet {
  if (buf.length > MAX_PACKET_BYTES) throw new ProtocolError(`answer of ${buf.length} bytes is larger than any IPMI message`);
  if (buf.length < 16 || buf[0] !== 0x06 || buf[3] !== 0x07) throw new ProtocolError('not an RMCP/IPMI packet');
  if (buf[4] !== AUTH_TYPE_RMCPP) throw new ProtocolError(`authentication type ${buf[4]} is not RMCP+ (6): the BMC answered in IPMI 1.5`);
  const type = buf[5]!;
  const sessionId = buf.readUInt32LE(6);
  const sequence = buf.readUInt32LE(10);
  const length = buf.readUInt16LE(14);
  if (16 + length > buf.length) throw new ProtocolError(`payload length ${length} runs past the end of the packet`);
  let payload = buf.subarray(16, 16 + length);
  const encrypted = (type & 0x80) !== 0;
  const authenticated = (type & 0x40) !== 0;
  if (keys) {
    if (!authenticated || !encrypted) throw new ProtocolError('the BMC answered an encrypted session without integrity or confidentiality');
    const signedEnd = buf.length - 12;
    if (signedEnd < 16 + length + 2) throw new ProtocolError('integrity trailer missing');
    const expected = authCode(keys.k1, buf.subarray(4, signedEnd));
    const got = buf.subarray(signedEnd);
    if (!timingSafeEqual(expected, got)) throw new ProtocolError('integrity check of the answer failed');
    payload = decrypt(payload, keys.aesKey);
  } else if (authenticated || encrypted) {
    throw new ProtocolError('an encrypted answer before the session has keys');
  }
  return { payloadType: type & 0x3f, sessionId, sequence, payload: Buffer.from(payload) };
}

function authCode(k1: Buffer, data: Buffer): Buffer {
  return createHmac('sha1', k1).update(data).digest().subarray(0, 12);
}

/** AES-CBC-128 with IPMI's confidentiality pad (1, 2, 3, … then the pad length; §13.29). */
function encrypt(data: Buffer, key: Buffer, iv: Buffer): Buffer {
  const padLength = (16 - ((data.length + 1) % 16)) % 16;
  const pad = Buffer.from(Array.from({ length: padLength }, (_, i) => i + 1));
  const plain = Buffer.concat([data, pad, Buffer.from([padLength])]);
  const cipher = createCipheriv('aes-128-cbc', key, iv).setAutoPadding(false);
  return Buffer.concat([iv, cipher.update(plain), cipher.final()]);
}

function decrypt(data: Buffer, key: Buffer): Buffer {
  if (data.length < 32 || data.length % 16 !== 0) throw new ProtocolError(`encrypted payload of ${data.length} bytes is not IV + AES blocks`);
  const decipher = createDecipheriv('aes-128-cbc', key, data.subarray(0, 16)).setAutoPadding(false);
  const plain = Buffer.concat([decipher.update(data.subarray(16)), decipher.final()]);
  const padLength = plain[plain.length - 1]!;
  if (padLength > 15 || padLength + 1 > plain.length) throw new ProtocolError('bad confidentiality pad');
  return plain.subarray(0, plain.length - 1 - padLength);
}

// --- session establishment (§13.17–13.23) --------------------------------------------------------------------

/** Open Session Request proposing cipher suite 3 only. */
export function openSessionRequest(tag: number, consoleSessionId: number, privilege: number): Buffer {
  const b = Buffer.alloc(32);
  b[0] = tag;
  b[1] = privilege;
  b.writeUInt32LE(consoleSessionId >>> 0, 4);
  // authentication: RAKP-HMAC-SHA1; integrity: HMAC-SHA1-96; confidentiality: AES-CBC-128.
  Buffer.from([0x00, 0, 0, 8, 0x01, 0, 0, 0, 0x01, 0, 0, 8, 0x01, 0, 0, 0, 0x02, 0, 0, 8, 0x01, 0, 0, 0]).copy(b, 8);
  return b;
}

export interface OpenSessionResponse {
  tag: number;
  status: number;
  consoleSessionId: number;
  bmcSessionId: number;
}

export function parseOpenSessionResponse(p: Buffer): OpenSessionResponse {
  if (p.length < 2) throw new ProtocolError('Open Session Response too short');
  const tag = p[0]!;
  const status = p[1]!;
  // An error answer may stop after the console session id.
  if (status !== 0) return { tag, status, consoleSessionId: p.length >= 8 ? p.readUInt32LE(4) : 0, bmcSessionId: 0 };
  if (p.length < 36) throw new ProtocolError(`Open Session Response of ${p.length} bytes, expected 36`);
  if (p[12] !== 0x00 || p[16] !== 0x01 || p[20] !== 0x01 || p[24] !== 0x01 || p[28] !== 0x02 || p[32] !== 0x01) {
    throw new ProtocolError('the BMC chose other algorithms than cipher suite 3 (RAKP-HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128)');
  }
  return { tag, status, consoleSessionId: p.readUInt32LE(4), bmcSessionId: p.readUInt32LE(8) };
}

/** What both sides must agree on to derive the session keys. */
export interface Handshake {
  consoleSessionId: number;
  bmcSessionId: number;
  consoleRandom: Buffer;
  bmcRandom: Buffer;
  bmcGuid: Buffer;
  /** The role byte of RAKP 1 as sent (privilege | 0x10 name-only lookup). */
  role: number;
  username: Buffer;
  /** Kuid: the user's password (at most 20 bytes). */
  password: Buffer;
}

export function rakp1(tag: number, bmcSessionId: number, consoleRandom: Buffer, role: number, username: Buffer): Buffer {
  const b = Buffer.alloc(28 + username.length);
  b[0] = tag;
  b.writeUInt32LE(bmcSessionId >>> 0, 4);
  consoleRandom.copy(b, 8);
  b[24] = role;
  b[27] = username.length;
  username.copy(b, 28);
  return b;
}

export interface Rakp2 {
  tag: number;
  status: number;
  consoleSessionId: number;
  bmcRandom: Buffer;
  bmcGuid: Buffer;
  authCode: Buffer;
}

export function parseRakp2(p: Buffer): Rakp2 {
  if (p.length < 2) throw new ProtocolError('RAKP 2 too short');
  const tag = p[0]!;
  const status = p[1]!;
  const empty = Buffer.alloc(0);
  if (status !== 0) return { tag, status, consoleSessionId: 0, bmcRandom: empty, bmcGuid: empty, authCode: empty };
  if (p.length < 60) throw new ProtocolError(`RAKP 2 of ${p.length} bytes, expected 60`);
  return { tag, status, consoleSessionId: p.readUInt32LE(4), bmcRandom: p.subarray(8, 24), bmcGuid: p.subarray(24, 40), authCode: p.subarray(40, 60) };
}

const nameTail = (h: Handshake): Buffer => Buffer.concat([Buffer.from([h.role, h.username.length]), h.username]);

/** The BMC's proof in RAKP 2 that it knows the password: HMAC_Kuid(SIDm, SIDc, Rm, Rc, GUIDc, ROLEm, ULENm, UNAMEm). */
export function rakp2AuthCode(h: Handshake): Buffer {
  const data = Buffer.concat([u32(h.consoleSessionId), u32(h.bmcSessionId), h.consoleRandom, h.bmcRandom, h.bmcGuid, nameTail(h)]);
  return createHmac('sha1', h.password).update(data).digest();
}

/** Our proof in RAKP 3: HMAC_Kuid(Rc, SIDm, ROLEm, ULENm, UNAMEm). */
export function rakp3(tag: number, h: Handshake): Buffer {
  const code = createHmac('sha1', h.password).update(Buffer.concat([h.bmcRandom, u32(h.consoleSessionId), nameTail(h)])).digest();
  const b = Buffer.alloc(8);
  b[0] = tag;
  b.writeUInt32LE(h.bmcSessionId >>> 0, 4);
  return Buffer.concat([b, code]);
}

/** SIK = HMAC_Kg(Rm, Rc, ROLEm, ULENm, UNAMEm), Kg = Kuid (no BMC key set); K1, K2 from it (§13.31–13.32). */
export function sessionKeys(h: Handshake): { sik: Buffer; keys: SessionKeys } {
  const sik = createHmac('sha1', h.password).update(Buffer.concat([h.consoleRandom, h.bmcRandom, nameTail(h)])).digest();
  const k = (n: number): Buffer => createHmac('sha1', sik).update(Buffer.alloc(20, n)).digest();
  return { sik, keys: { k1: k(1), aesKey: k(2).subarray(0, 16) } };
}

export interface Rakp4 {
  tag: number;
  status: number;
  consoleSessionId: number;
  icv: Buffer;
}

export function parseRakp4(p: Buffer): Rakp4 {
  if (p.length < 2) throw new ProtocolError('RAKP 4 too short');
  const tag = p[0]!;
  const status = p[1]!;
  if (status !== 0) return { tag, status, consoleSessionId: 0, icv: Buffer.alloc(0) };
  if (p.length < 20) throw new ProtocolError(`RAKP 4 of ${p.length} bytes, expected 20`);
  return { tag, status, consoleSessionId: p.readUInt32LE(4), icv: p.subarray(8, 20) };
}

/** The BMC's integrity check value in RAKP 4: HMAC_SIK(Rm, SIDc, GUIDc), first 12 bytes. */
export function rakp4Icv(h: Handshake, sik: Buffer): Buffer {
  return createHmac('sha1', sik).update(Buffer.concat([h.consoleRandom, u32(h.bmcSessionId), h.bmcGuid])).digest().subarray(0, 12);
}

// --- IPMI messages (§13.8) ------------------------------------------------------------------------------------

const BMC_ADDRESS = 0x20;
const CONSOLE_ADDRESS = 0x81;

export interface Request {
  netFn: number;
  cmd: number;
  data?: Buffer | number[];
}

export interface Response {
  netFn: number;
  cmd: number;
  rqSeq: number;
  completionCode: number;
  data: Buffer;
}

const checksum = (b: Buffer): number => (0x100 - (b.reduce((s, x) => s + x, 0) & 0xff)) & 0xff;

export function encodeRequest(r: Request, rqSeq: number): Buffer {
  const data = Buffer.from(r.data ?? []);
  const head = Buffer.from([BMC_ADDRESS, (r.netFn << 2) & 0xff]);
  const body = Buffer.concat([Buffer.from([CONSOLE_ADDRESS, (rqSeq << 2) & 0xff, r.cmd]), data]);
  return Buffer.concat([head, Buffer.from([checksum(head)]), body, Buffer.from([checksum(body)])]);
}

export function decodeResponse(p: Buffer): Response {
  if (p.length < 8) throw new ProtocolError(`IPMI response of ${p.length} bytes is too short`);
  if (checksum(p.subarray(0, 2)) !== p[2] || checksum(p.subarray(3, p.length - 1)) !== p[p.length - 1]) {
    throw new ProtocolError('IPMI response checksum mismatch');
  }
  return { netFn: p[1]! >> 2, rqSeq: p[4]! >> 2, cmd: p[5]!, completionCode: p[6]!, data: Buffer.from(p.subarray(7, p.length - 1)) };
}

/** Completion codes worth a retry: the BMC is busy or timed out internally (§5.2). */
export function isTransientCompletion(code: number): boolean {
  return code === 0xc0 || code === 0xc3 || code === 0xff;
}

const COMPLETION: Record<number, string> = {
  0xc0: 'node busy',
  0xc1: 'invalid command',
  0xc3: 'timeout',
  0xc7: 'request data length invalid',
  0xc9: 'parameter out of range',
  0xcc: 'invalid data field in request',
  0xd4: 'insufficient privilege level',
  0xd5: 'command not supported in present state',
  0xff: 'unspecified error',
};

export function describeCompletion(code: number): string {
  return `${COMPLETION[code] ?? 'completion code'} (0x${code.toString(16).padStart(2, '0')})`;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0, 0);
  return b;
}
