// The logging contract of the runtime and the controllers: the object-first subset of pino's API, so the
// server can pass its pino logger as is and tests can pass a silent or a recording one.

export type LogFn = (obj: object, msg?: string) => void;

export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  child?: (bindings: Record<string, unknown>) => Logger;
}

const noop: LogFn = () => {};

export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

/** A logger with `bindings` merged into every entry (pino's `child` when the logger has one). */
export function childLogger(logger: Logger, bindings: Record<string, unknown>): Logger {
  if (logger.child) return logger.child(bindings);
  const wrap =
    (fn: LogFn): LogFn =>
    (obj, msg) =>
      fn({ ...bindings, ...obj }, msg);
  return {
    debug: wrap(logger.debug.bind(logger)),
    info: wrap(logger.info.bind(logger)),
    warn: wrap(logger.warn.bind(logger)),
    error: wrap(logger.error.bind(logger)),
    child: (more) => childLogger(logger, { ...bindings, ...more }),
  };
}

export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  obj: Record<string, unknown>;
  msg?: string;
}

/** A logger that keeps its entries in memory, for tests that assert on what was logged. */
export function memoryLogger(): Logger & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const at =
    (level: LogEntry['level']): LogFn =>
    (obj, msg) =>
      entries.push({ level, obj: { ...(obj as Record<string, unknown>) }, msg });
  return { entries, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
