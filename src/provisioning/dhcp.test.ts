// The DHCP server's parsing and decisions as data, and one exchange over a loopback socket.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { test } from 'node:test';
import { LeasePool, MessageType, answerDhcp, encodeReply, parseDhcp, parseRange, startDhcpServer, type DhcpConfig, type DhcpRequest } from './dhcp.js';

const MAC = '52:54:00:12:34:56';
const cfg: DhcpConfig = { mode: 'full', serverIp: '10.99.0.1', subnetMask: '255.255.255.0', httpBase: 'http://10.99.0.1:7080' };

/** A client's DHCP message, the way iPXE or a PXE ROM builds it. */
function packet(o: { type: number; mac?: string; options?: Array<[number, Buffer | number[]]>; xid?: number; giaddr?: string }): Buffer {
  const h = Buffer.alloc(240);
  h[0] = 1;
  h[1] = 1;
  h[2] = 6;
  h.writeUInt32BE(o.xid ?? 0xabcdef01, 4);
  Buffer.from((o.giaddr ?? '0.0.0.0').split('.').map(Number)).copy(h, 24);
  Buffer.from((o.mac ?? MAC).split(':').map((x) => parseInt(x, 16))).copy(h, 28);
  h.writeUInt32BE(0x63825363, 236);
  const opts = [[53, [o.type]] as [number, number[]], ...(o.options ?? [])].map(([c, v]) => Buffer.concat([Buffer.from([c, Buffer.from(v).length]), Buffer.from(v)]));
  return Buffer.concat([h, ...opts, Buffer.from([255])]);
}

const pxeRom: Array<[number, Buffer | number[]]> = [[60, Buffer.from('PXEClient:Arch:00000:UNDI:002001')], [93, [0, 0]]];
const ipxe: Array<[number, Buffer | number[]]> = [...pxeRom, [77, Buffer.from('iPXE')]];

test('parseDhcp refuses malformed datagrams with a reason', () => {
  const good = packet({ type: MessageType.discover });
  const truncatedOption = Buffer.concat([good.subarray(0, 240), Buffer.from([53, 1, 1, 60, 200, 0x50])]);
  const rows: Array<{ name: string; buf: Buffer; want: RegExp }> = [
    { name: 'empty', buf: Buffer.alloc(0), want: /shorter than a DHCP header/ },
    { name: 'oversized', buf: Buffer.alloc(9000, 1), want: /longer than any DHCP message/ },
    { name: 'a reply, not a request', buf: Buffer.from(good).fill(2, 0, 1), want: /not a BOOTREQUEST/ },
    { name: 'not ethernet', buf: Buffer.from(good).fill(7, 1, 2), want: /not Ethernet/ },
    { name: 'no magic cookie', buf: Buffer.from(good).fill(0, 236, 240), want: /magic cookie/ },
    { name: 'option past the end', buf: truncatedOption, want: /runs past the end/ },
    { name: 'no message type', buf: Buffer.concat([good.subarray(0, 240), Buffer.from([255])]), want: /no DHCP message type/ },
    { name: 'length byte missing', buf: Buffer.concat([good.subarray(0, 240), Buffer.from([53])]), want: /no length byte/ },
  ];
  for (const r of rows) assert.match(String(parseDhcp(r.buf)), r.want, r.name);
  const req = parseDhcp(packet({ type: MessageType.discover, options: ipxe }));
  assert.ok(typeof req !== 'string');
  assert.deepEqual([req.mac, req.type, req.arch, req.userClass], [MAC, 1, 0, 'iPXE']);
});

test('parseDhcp never throws on random bytes', () => {
  let seed = 7;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 256;
  const base = packet({ type: MessageType.discover, options: ipxe });
  for (let i = 0; i < 2000; i++) {
    const b = Buffer.from(base.subarray(0, 240 + (rnd() % 40)));
    for (let j = 0; j < 6; j++) b[240 + (rnd() % Math.max(1, b.length - 240))] = rnd();
    const got = parseDhcp(b);
    assert.ok(typeof got === 'string' || typeof got.mac === 'string');
  }
});

test('answerDhcp: who gets what, in full and proxy mode', () => {
  const enrolled = new Set([MAC]);
  const world = () => {
    const pool = new LeasePool({ first: 0x0a630064, last: 0x0a630065 });
    return { isEnrolled: (m: string) => enrolled.has(m), lease: (m: string) => pool.lease(m) };
  };
  const req = (type: number, options: Array<[number, Buffer | number[]]> = [], mac = MAC): DhcpRequest => parseDhcp(packet({ type, mac, options })) as DhcpRequest;
  const rows: Array<{ name: string; mode: 'full' | 'proxy'; req: DhcpRequest; want: unknown }> = [
    { name: 'unknown MAC', mode: 'full', req: req(1, ipxe, '52:54:00:ff:ff:ff'), want: { ignore: /not a NIC of any Hardware/ } },
    { name: 'iPXE gets its script over HTTP', mode: 'full', req: req(1, ipxe), want: { type: 2, yiaddr: '10.99.0.100', file: `http://10.99.0.1:7080/boot/v1/ipxe?mac=${MAC}` } },
    { name: 'a BIOS PXE ROM gets iPXE over TFTP', mode: 'full', req: req(1, pxeRom), want: { type: 2, yiaddr: '10.99.0.100', file: 'undionly.kpxe' } },
    { name: 'a UEFI PXE ROM gets ipxe.efi', mode: 'full', req: req(1, [[60, Buffer.from('PXEClient:Arch:00007')], [93, [0, 7]]]), want: { file: 'ipxe.efi' } },
    { name: 'an unsupported architecture', mode: 'full', req: req(1, [[60, Buffer.from('PXEClient')], [93, [0, 11]]]), want: { ignore: /no boot file for client architecture 11/ } },
    { name: 'the installed OS gets an address, no boot file', mode: 'full', req: req(1), want: { type: 2, yiaddr: '10.99.0.100', file: '' } },
    { name: 'request of the offered address', mode: 'full', req: req(3, [[50, [10, 99, 0, 100]], [54, [10, 99, 0, 1]]]), want: { type: 5, yiaddr: '10.99.0.100' } },
    { name: 'request of another address', mode: 'full', req: req(3, [[50, [10, 99, 0, 7]], [54, [10, 99, 0, 1]]]), want: { type: 6 } },
    { name: 'request to another server', mode: 'full', req: req(3, [[50, [10, 99, 0, 100]], [54, [10, 99, 0, 2]]]), want: { ignore: /chose server 10.99.0.2/ } },
    { name: 'release', mode: 'full', req: req(7), want: { ignore: /needs no answer/ } },
    { name: 'proxy: a PXE client gets boot information only', mode: 'proxy', req: req(1, pxeRom), want: { type: 2, yiaddr: '0.0.0.0', file: 'undionly.kpxe' } },
    { name: 'proxy: not a PXE client', mode: 'proxy', req: req(1), want: { ignore: /proxy mode answers only PXE clients/ } },
    { name: 'proxy: request to us', mode: 'proxy', req: req(3, [...ipxe, [54, [10, 99, 0, 1]]]), want: { type: 5, yiaddr: '0.0.0.0' } },
  ];
  for (const r of rows) {
    const d = answerDhcp(r.req, { ...cfg, mode: r.mode }, world());
    const want = r.want as { ignore?: RegExp };
    if (want.ignore) {
      assert.ok('ignore' in d, r.name);
      assert.match(d.ignore, want.ignore, r.name);
    } else {
      assert.ok('reply' in d, `${r.name}: ${JSON.stringify(d)}`);
      for (const [k, v] of Object.entries(r.want as object)) assert.equal((d.reply as unknown as Record<string, unknown>)[k], v, `${r.name}: ${k}`);
    }
  }
});

test('a lease is stable per MAC and the range runs out', () => {
  const pool = new LeasePool({ first: 1, last: 2 }, ['0.0.0.1']);
  assert.equal(pool.lease('a'), '0.0.0.2');
  assert.equal(pool.lease('a'), '0.0.0.2');
  assert.equal(pool.lease('b'), undefined);
  assert.equal(pool.holder('0.0.0.2'), 'a');
  for (const [s, want] of [['10.0.0.1-10.0.0.9', 'object'], ['10.0.0.9-10.0.0.1', 'string'], ['10.0.0.1', 'string'], ['10.0.0.300-10.0.0.301', 'string']] as const) {
    assert.equal(typeof parseRange(s), want, s);
  }
});

test('the server answers an iPXE DISCOVER over UDP, and survives garbage', async () => {
  const client = dgram.createSocket('udp4');
  await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
  const server = await startDhcpServer({
    ...cfg,
    world: { isEnrolled: (m) => m === MAC, lease: () => '10.99.0.100' },
    broadcast: '127.0.0.1',
    bindAddress: '127.0.0.1',
    port: 0,
    clientPort: client.address().port,
  });
  try {
    const got = new Promise<Buffer>((r) => client.once('message', (m) => r(m)));
    for (const junk of [Buffer.alloc(0), Buffer.alloc(3000, 0xff), Buffer.from('hello')]) client.send(junk, server.port, '127.0.0.1');
    client.send(packet({ type: MessageType.discover, options: ipxe, xid: 42 }), server.port, '127.0.0.1');
    const reply = await got;
    assert.equal(reply[0], 2);
    assert.equal(reply.readUInt32BE(4), 42);
    assert.equal([...reply.subarray(16, 20)].join('.'), '10.99.0.100');
    assert.equal(reply.toString('latin1', 108, 108 + 56), `http://10.99.0.1:7080/boot/v1/ipxe?mac=${MAC}`);
    // The reply is itself a well-formed DHCP message (parsed as a request it fails only on op).
    assert.match(String(parseDhcp(reply)), /not a BOOTREQUEST/);
    assert.ok(encodeReply(parseDhcp(packet({ type: 1 })) as DhcpRequest, { type: 2, yiaddr: '1.2.3.4', file: 'x'.repeat(200), to: 'broadcast' }, cfg).length < 576);
  } finally {
    await server.close();
    client.close();
  }
});
