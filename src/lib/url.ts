// A URL that a machine's firmware is told to fetch (the `chain` line of an iPXE script). iPXE reads a script
// line by line and splits commands on whitespace, so a newline or a space inside the URL would become a
// command of its own: such URLs are refused where they are admitted and again where the script is rendered.

export const MaxScriptUrlLength = 2048;

/** Why `url` cannot be put into an iPXE script, or undefined when it can. */
export function scriptUrlProblem(url: string): string | undefined {
  if (url.length > MaxScriptUrlLength) return `must be at most ${MaxScriptUrlLength} characters, not ${url.length}`;
  // Whitespace (any, including Unicode line and paragraph separators) and C0/C1 control characters.
  // eslint-disable-next-line no-control-regex
  if (/[\s\u0000-\u001f\u007f-\u009f]/u.test(url)) return 'must not contain whitespace or control characters (percent-encode them, e.g. %20)';
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'must be an absolute http:// or https:// URL, e.g. https://boot.example.com/server.ipxe';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return `must be an http:// or https:// URL, not ${u.protocol}`;
  if (!u.hostname) return 'must name a host';
  return undefined;
}
