// Which URLs may be put on the `chain` line of an iPXE script.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scriptUrlProblem } from './url.js';

test('scriptUrlProblem', () => {
  const rows: Array<[string, string, RegExp | undefined]> = [
    ['an https URL', 'https://boot.example.com/server.ipxe', undefined],
    ['an http URL with a query', 'http://10.0.0.1:8080/boot.ipxe?mac=${net0/mac}', undefined],
    ['a newline that would start a second command', 'http://a.example/x.ipxe\nshell', /whitespace or control/],
    ['a carriage return', 'http://a.example/x\r', /whitespace or control/],
    ['a space', 'http://a.example/x y', /whitespace or control/],
    ['a NUL', 'http://a.example/x\u0000', /whitespace or control/],
    ['a Unicode line separator', 'http://a.example/x\u2028kernel', /whitespace or control/],
    ['another scheme', 'tftp://a.example/x.ipxe', /http:\/\/ or https:\/\//],
    ['not a URL', 'boot.ipxe', /absolute http/],
    ['too long', `https://a.example/${'x'.repeat(2100)}`, /at most 2048/],
  ];
  for (const [name, url, want] of rows) {
    const got = scriptUrlProblem(url);
    if (want === undefined) assert.equal(got, undefined, name);
    else assert.match(got ?? '', want, name);
  }
});
