// One RMCP+ session with a BMC over UDP: open (Open Session, RAKP 1–4), run commands, close. Each exchange is
// retried a bounded number of times within the operation's deadline (UDP loses packets; BMCs drop them when
// busy). Failures become BmcErrors: no answer at all is `unreachable` (transient), a BMC that refuses the
// credentials is `unauthorized` (permanent), an answer we cannot parse is `protocol`.
import dgram from 'node:dgram';
import { isIP } from 'node:net';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { BmcError } from '../types.js';
import {
  MAX_PACKET_BYTES,
  PayloadType,
  Privilege,
  ProtocolError,
  decodePacket,
  decodeResponse,
  describeCompletion,
  describeStatus,
  encodePacket,
  encodeRequest,
  isAuthStatus,
  isTransientCompletion,
  openSessionRequest,
  parseOpenSessionResponse,
  parseRakp2,
  parseRakp4,
  rakp1,
  rakp2AuthCode,
  rakp3,
  rakp4Icv,
  sessionKeys,
  type Handshake,
  type Packet,
  type Request,
  type Response,
  type SessionKeys,
} from './rmcp.js';

export interface SessionTarget {
  host: string;
  port: number;
  username: string;
  password: string;
  /** What the operation may take in all, from the first packet to the close. */
  deadlineMs: number;
  /** How long one try of one exchange waits for its answer before it is sent again. */
  retryMs: number;
}

const NetFn = { app: 0x06 } as const;
const Cmd = { setSessionPrivilege: 0x3b, closeSession: 0x3c } as const;

/** Runs `fn` inside an authenticated, encrypted session at administrator privilege, and closes it after. */
export async function withSession<T>(t: SessionTarget, what: string, fn: (s: IpmiSession) => Promise<T>): Promise<T> {
  const s = new IpmiSession(t, what);
  try {
    await s.open();
    return await fn(s);
  } finally {
    await s.close();
  }
}

export class IpmiSession {
  private readonly socket: dgram.Socket;
  private readonly deadline: number;
  private readonly label: string;
  private keys: SessionKeys | undefined;
  private bmcSessionId = 0;
  private sequence = 1;
  private rqSeq = Math.floor(Math.random() * 64);
  private socketError: Error | undefined;
  private readonly inbox: Buffer[] = [];
  private wake: (() => void) | undefined;

  constructor(
    private readonly t: SessionTarget,
    what: string,
  ) {
    this.deadline = Date.now() + t.deadlineMs;
    this.label = `ipmi ${formatHostPort(t.host, t.port)}: ${what}`;
    this.socket = dgram.createSocket(isIP(t.host) === 6 ? 'udp6' : 'udp4');
    this.socket.on('message', (m) => {
      // A BMC answers with small packets; anything larger is not worth keeping.
      if (m.length <= MAX_PACKET_BYTES && this.inbox.length < 64) this.inbox.push(m);
      this.wake?.();
    });
    this.socket.on('error', (err) => {
      this.socketError = err;
      this.wake?.();
    });
  }

  async open(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(new BmcError('unreachable', `${this.label}: ${err.message}`, { cause: err }));
      this.socket.once('error', onError);
      this.socket.connect(this.t.port, this.t.host, () => {
        this.socket.off('error', onError);
        resolve();
      });
    });
    const username = Buffer.from(this.t.username, 'utf8');
    const password = Buffer.from(this.t.password, 'utf8');
    const consoleSessionId = randomBytes(4).readUInt32LE(0) || 1;
    const tag = randomBytes(1)[0]! & 0x3f;

    const open = await this.exchangeRaw(
      { payloadType: PayloadType.openSessionRequest, sessionId: 0, sequence: 0, payload: openSessionRequest(tag, consoleSessionId, Privilege.admin) },
      PayloadType.openSessionResponse,
      (p) => p[0] === tag,
    );
    const os = parseOpenSessionResponse(open);
    if (os.status !== 0) throw this.refused('Open Session', os.status);
    if (os.consoleSessionId !== consoleSessionId) throw new BmcError('protocol', `${this.label}: Open Session answered for another session`);

    const consoleRandom = randomBytes(16);
    // Privilege admin, with "name-only lookup" (bit 4), as ipmitool sends it.
    const role = Privilege.admin | 0x10;
    const r2raw = await this.exchangeRaw(
      { payloadType: PayloadType.rakp1, sessionId: 0, sequence: 0, payload: rakp1(tag, os.bmcSessionId, consoleRandom, role, username) },
      PayloadType.rakp2,
      (p) => p[0] === tag,
    );
    const r2 = parseRakp2(r2raw);
    if (r2.status !== 0) throw this.refused('RAKP 2', r2.status);
    const h: Handshake = { consoleSessionId, bmcSessionId: os.bmcSessionId, consoleRandom, bmcRandom: r2.bmcRandom, bmcGuid: r2.bmcGuid, role, username, password };
    // The BMC proves it knows the user's password; if it does not match ours, ours is wrong.
    const expected = rakp2AuthCode(h);
    if (r2.authCode.length !== expected.length || !timingSafeEqual(r2.authCode, expected)) {
      throw new BmcError('unauthorized', `${this.label}: the BMC refused user "${this.t.username}": wrong password (RAKP 2 authentication code does not match)`);
    }
    const r4raw = await this.exchangeRaw(
      { payloadType: PayloadType.rakp3, sessionId: 0, sequence: 0, payload: rakp3(tag, h) },
      PayloadType.rakp4,
      (p) => p[0] === tag,
    );
    const r4 = parseRakp4(r4raw);
    if (r4.status !== 0) throw this.refused('RAKP 4', r4.status);
    const { sik, keys } = sessionKeys(h);
    if (!timingSafeEqual(r4.icv, rakp4Icv(h, sik))) throw new BmcError('protocol', `${this.label}: RAKP 4 integrity check value does not match`);
    this.keys = keys;
    this.bmcSessionId = os.bmcSessionId;
    // Sessions start at user privilege; power control needs operator, we ask for what the user has up to admin.
    await this.command({ netFn: NetFn.app, cmd: Cmd.setSessionPrivilege, data: [Privilege.admin] });
  }

  /** Runs one IPMI command in the session; a non-zero completion code is an error. */
  async command(r: Request): Promise<Buffer> {
    if (!this.keys) throw new Error('IPMI session not open');
    const rqSeq = (this.rqSeq = (this.rqSeq + 1) & 0x3f);
    const payload = encodeRequest(r, rqSeq);
    const keys = this.keys;
    const res = await this.exchange(
      () => encodePacket({ payloadType: PayloadType.ipmi, sessionId: this.bmcSessionId, sequence: this.nextSequence(), payload }, keys),
      (buf) => {
        const p = decodePacket(buf, keys);
        if (p.payloadType !== PayloadType.ipmi) return undefined;
        const rsp: Response = decodeResponse(p.payload);
        return rsp.rqSeq === rqSeq && rsp.cmd === r.cmd && rsp.netFn === r.netFn + 1 ? rsp : undefined;
      },
    );
    if (res.completionCode !== 0) {
      throw new BmcError('rejected', `${this.label}: the BMC answered netfn 0x${r.netFn.toString(16)} command 0x${r.cmd.toString(16)} with ${describeCompletion(res.completionCode)}`, {
        transient: isTransientCompletion(res.completionCode),
      });
    }
    return res.data;
  }

  /** Best effort: a session we cannot close times out on the BMC by itself. */
  async close(): Promise<void> {
    try {
      if (this.keys && Date.now() < this.deadline) {
        const id = Buffer.alloc(4);
        id.writeUInt32LE(this.bmcSessionId >>> 0, 0);
        await this.command({ netFn: NetFn.app, cmd: Cmd.closeSession, data: id }).catch(() => undefined);
      }
    } finally {
      this.keys = undefined;
      try {
        this.socket.close();
      } catch {
        // already closed
      }
    }
  }

  private nextSequence(): number {
    const s = this.sequence;
    this.sequence = (this.sequence % 0xfffffffe) + 1;
    return s;
  }

  private refused(step: string, status: number): BmcError {
    const why = `${step}: ${describeStatus(status)}`;
    if (isAuthStatus(status)) return new BmcError('unauthorized', `${this.label}: the BMC refused user "${this.t.username}": ${why}`);
    return new BmcError('rejected', `${this.label}: ${why}`, { transient: status === 0x01 || status === 0x0b });
  }

  private exchangeRaw(p: Packet, type: number, match: (payload: Buffer) => boolean): Promise<Buffer> {
    const packet = encodePacket(p);
    return this.exchange(
      () => packet,
      (buf) => {
        const got = decodePacket(buf);
        return got.payloadType === type && match(got.payload) ? got.payload : undefined;
      },
    );
  }

  /**
   * Sends, waits for the answer `accept` recognises, and sends again after `retryMs` without one, until the
   * deadline. Packets it does not recognise (late answers to an earlier try) are skipped.
   */
  private async exchange<T>(build: () => Buffer, accept: (buf: Buffer) => T | undefined): Promise<T> {
    let lastProblem: string | undefined;
    for (let attempt = 1; ; attempt++) {
      const left = this.deadline - Date.now();
      if (left <= 0) {
        throw new BmcError('unreachable', `${this.label}: no answer from the BMC after ${attempt - 1} tries in ${this.t.deadlineMs} ms${lastProblem ? ` (last: ${lastProblem})` : ''}`);
      }
      this.inbox.length = 0;
      this.socket.send(build());
      const until = Date.now() + Math.min(left, this.t.retryMs);
      for (;;) {
        if (this.socketError) {
          const err = this.socketError;
          throw new BmcError('unreachable', `${this.label}: ${err.message}`, { cause: err });
        }
        const buf = this.inbox.shift();
        if (buf) {
          try {
            const got = accept(buf);
            if (got !== undefined) return got;
          } catch (err) {
            if (!(err instanceof ProtocolError)) throw err;
            lastProblem = err.message;
          }
          continue;
        }
        const wait = until - Date.now();
        if (wait <= 0) break;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, wait);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = undefined;
      }
    }
  }
}

export function formatHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
