// Continue tokens for paginated lists: the revision the first page was read at plus the last key returned,
// so every page of one list is consistent at one revision (as kube-apiserver does).
import { ApiError } from '../lib/errors.js';

interface TokenBody {
  v: 'meta.k8s.io/v1';
  rv: number;
  start: string;
}

export function encodeContinue(revision: number, lastKey: string): string {
  const body: TokenBody = { v: 'meta.k8s.io/v1', rv: revision, start: lastKey };
  return Buffer.from(JSON.stringify(body)).toString('base64url');
}

export function decodeContinue(token: string): { revision: number; startAfter: string } {
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw ApiError.badRequest(`invalid continue token: not a token this server issued`);
  }
  const b = body as Partial<TokenBody>;
  if (!b || b.v !== 'meta.k8s.io/v1' || typeof b.rv !== 'number' || typeof b.start !== 'string' || b.rv <= 0) {
    throw ApiError.badRequest('invalid continue token: not a token this server issued');
  }
  return { revision: b.rv, startAfter: b.start };
}
