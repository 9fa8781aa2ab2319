// A simulated machine's console output — what an operator would see on its serial console through the BMC:
// power and firmware, PXE and iPXE, the agent's actions, the OS boot, cloud-init and phone-home. Kept in memory
// and bounded per machine (lines and line length), so a machine that retries PXE for days costs the same as one
// that booted once. Lines are numbered so that a reader can ask for only what is new.

export interface ConsoleLine {
  /** 1, 2, 3 … for the machine's lifetime; never reused, so `after` works across dropped lines. */
  seq: number;
  /** ISO time it was written (wall clock, like a serial console logger's). */
  time: string;
  text: string;
}

export interface ConsoleLogOptions {
  /** The most lines kept; older ones are dropped first. */
  maxLines?: number;
  /** Longer lines are cut (with an ellipsis). */
  maxLineLength?: number;
  now?: () => number;
  /** Applied to every line before it is kept (e.g. to hide tokens in URLs). */
  redact?: (line: string) => string;
}

/**
 * Hides what looks like a credential: a run of 32 or more token characters (base64url, dots of a JWT, hex), as
 * in the metadata service's per-instance URLs. A console is read by more people than the machine's owner.
 */
export function redactTokens(line: string): string {
  return line.replace(/[A-Za-z0-9_-]{12,}(?:\.[A-Za-z0-9_-]{8,})+|[A-Za-z0-9_-]{32,}/g, (m) =>
    // Not a kube name (lower case and dashes, however long): mixed case with digits, a JWT, or hex.
    m.includes('.') || (/[A-Z]/.test(m) && /[0-9]/.test(m)) || /^[0-9a-f]+$/.test(m) ? '…' : m,
  );
}

export const DEFAULT_CONSOLE_LINES = 500;
export const DEFAULT_CONSOLE_LINE_LENGTH = 300;

export class ConsoleLog {
  private readonly maxLines: number;
  private readonly maxLineLength: number;
  private readonly now: () => number;
  private readonly redact: (line: string) => string;
  private buf: ConsoleLine[] = [];
  private seq = 0;
  private lastText: string | undefined;
  private repeats = 0;
  private dropped = 0;

  constructor(opts: ConsoleLogOptions = {}) {
    this.maxLines = Math.max(1, opts.maxLines ?? DEFAULT_CONSOLE_LINES);
    this.maxLineLength = Math.max(8, opts.maxLineLength ?? DEFAULT_CONSOLE_LINE_LENGTH);
    this.now = opts.now ?? Date.now;
    this.redact = opts.redact ?? ((l) => l);
  }

  /**
   * Writes one line per line of `text` (control characters other than tab shown as spaces). A line equal to
   * the one before it (a firmware retrying PXE) is not kept twice: the last line moves to the end with a new
   * seq and a count, as syslog's "last message repeated" does.
   */
  write(text: string): void {
    const time = new Date(this.now()).toISOString();
    for (const raw of text.split(/\r?\n/)) {
      let line = this.redact(raw).replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, ' ');
      if (line.length > this.maxLineLength) line = `${line.slice(0, this.maxLineLength - 1)}…`;
      const prev = this.buf.at(-1);
      if (prev !== undefined && line === this.lastText) {
        this.repeats++;
        this.buf[this.buf.length - 1] = { seq: ++this.seq, time, text: `${line} (×${this.repeats})` };
        continue;
      }
      this.lastText = line;
      this.repeats = 1;
      this.buf.push({ seq: ++this.seq, time, text: line });
    }
    // Trimmed in batches, not on every line: one copy per maxLines/4 lines instead of a shift per line.
    if (this.buf.length > this.maxLines + Math.ceil(this.maxLines / 4)) {
      this.dropped += this.buf.length - this.maxLines;
      this.buf = this.buf.slice(-this.maxLines);
    }
  }

  /** The lines kept after `after` (a seq; 0 or absent: all), and how many lines the bound has dropped so far. */
  read(after = 0): { lines: ConsoleLine[]; dropped: number; last: number } {
    const extra = Math.max(0, this.buf.length - this.maxLines);
    const lines = this.buf
      .slice(extra)
      .filter((l) => l.seq > after)
      .map((l) => ({ ...l }));
    return { lines, dropped: this.dropped + extra, last: this.seq };
  }
}
