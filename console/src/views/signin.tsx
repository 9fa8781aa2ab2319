import { useState, type FormEvent } from 'react';
import { session } from '../api';

export function SignIn({ message, onSignedIn }: { message?: string; onSignedIn: () => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await session.signIn({ token: token.trim() });
      setToken('');
      onSignedIn();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main className="signin" id="main">
      <h1>metalplane</h1>
      {message && <p className="notice" role="status">{message}</p>}
      <p>
        Open the sign-in link <code>metalplane up</code> printed, or paste a token: the admin token (the <code>admin-token</code> file in
        the data dir) or a Metal API key.
      </p>
      <form onSubmit={(e) => void submit(e)}>
        <label htmlFor="token">Token</label>
        <input id="token" type="password" autoComplete="off" value={token} onChange={(e) => setToken(e.target.value)} required autoFocus />
        <button type="submit" disabled={busy || token.trim() === ''}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}
