// A mistake in how a command was called: main() prints it and exits with status 2 (kubectl's habit).
export class UsageError extends Error {}
