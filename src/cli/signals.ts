// How a long-running command ends: on SIGTERM or SIGINT it says so, closes what it runs and returns; a close
// that fails, or takes more than 10 s, exits 1.
export function untilSignalled(what: string, close: () => Promise<void>): Promise<void> {
  return new Promise<void>((resolveStop) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`received ${signal}, shutting down${what ? ` ${what}` : ''}\n`);
      const force = setTimeout(() => process.exit(1), 10_000);
      force.unref();
      close().then(resolveStop, (err: unknown) => {
        process.stderr.write(`shutdown error: ${String(err)}\n`);
        process.exit(1);
      });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}
