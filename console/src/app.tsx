// The shell: sign-in (the printed link's one-time token, or a pasted token), the session, the project picker,
// the navigation and the pages. Heavy pages (the graph: xyflow + elkjs) load lazily.
import { createContext, lazy, Suspense, useCallback, useContext, useEffect, useState, type ReactNode } from 'react';
import { endSessionRequests, HttpError, session as sessionApi, type Session } from './api';
import { live } from './live';
import { linkProps, navigate, useRoute } from './router';
import { SignIn } from './views/signin';
import { Datacenter } from './views/datacenter';
import { Devices } from './views/devices';
import { DeviceDetail } from './views/device-detail';
import { CreateDevice } from './views/create-device';
import { CloudConfigDetail } from './views/cloud-config';
import { Events } from './views/events';
import { Usage } from './views/usage';
import { Chaos } from './views/chaos';

const Graph = lazy(() => import('./views/graph'));

export interface Scope {
  session: Session;
  /** The namespaces the pages show: 'all' (the operator, every namespace) or named projects. */
  namespaces: string[] | 'all';
  project: string;
  setProject: (p: string) => void;
}

const ScopeContext = createContext<Scope | undefined>(undefined);

export function useScope(): Scope {
  const s = useContext(ScopeContext);
  if (!s) throw new Error('useScope outside the app');
  return s;
}

type Phase = { kind: 'loading' } | { kind: 'signing-out' } | { kind: 'signed-out'; message?: string } | { kind: 'signed-in'; session: Session };

export function App() {
  const [phase, setPhase] = useState<Phase>({ kind: 'loading' });

  const load = useCallback(async (message?: string) => {
    try {
      const s = await sessionApi.get();
      setPhase(s.signedIn ? { kind: 'signed-in', session: s } : { kind: 'signed-out', message });
    } catch (e) {
      setPhase({ kind: 'signed-out', message: e instanceof HttpError && e.status === 401 ? message : e instanceof Error ? e.message : String(e) });
    }
  }, []);

  useEffect(() => {
    const login = new URLSearchParams(location.hash.slice(1)).get('login');
    // The token leaves the address bar (and the history entry) before anything else happens.
    if (login) history.replaceState(null, '', location.pathname + location.search);
    void (async () => {
      if (login) {
        try {
          await sessionApi.signIn({ login });
        } catch (e) {
          setPhase({ kind: 'signed-out', message: e instanceof Error ? e.message : String(e) });
          return;
        }
      }
      await load();
    })();
    const onUnauthorized = () => setPhase({ kind: 'signed-out', message: 'Your session ended: sign in again.' });
    window.addEventListener('metalplane:unauthorized', onUnauthorized);
    return () => window.removeEventListener('metalplane:unauthorized', onUnauthorized);
  }, [load]);

  // Signing out: the views (their polls) are gone once this runs; the live lists and the requests still in flight
  // go next, so nothing asks with the cookie being revoked. The sign-in form comes when the server has ended the
  // session, not before.
  useEffect(() => {
    if (phase.kind !== 'signing-out') return;
    live.reset();
    endSessionRequests();
    void sessionApi.signOut().then(
      () => setPhase({ kind: 'signed-out', message: 'Signed out.' }),
      (e: unknown) =>
        setPhase({
          kind: 'signed-out',
          // 401: the session had ended already.
          message: e instanceof HttpError && e.status === 401 ? 'Signed out.' : `Signed out here, but the server did not confirm it (${e instanceof Error ? e.message : String(e)}): the session may stay valid until it expires.`,
        }),
    );
  }, [phase.kind]);

  if (phase.kind === 'loading') return <div className="center muted" role="status">Loading…</div>;
  if (phase.kind === 'signing-out') return <div className="center muted" role="status">Signing out…</div>;
  if (phase.kind === 'signed-out') return <SignIn message={phase.message} onSignedIn={() => void load()} />;
  return <Shell session={phase.session} onSignOut={() => setPhase({ kind: 'signing-out' })} />;
}

function Shell({ session, onSignOut }: { session: Session; onSignOut: () => void }) {
  const [project, setProject] = useState<string>(() => (session.operator ? '*' : (session.projects[0] ?? '')));
  const namespaces: string[] | 'all' = project === '*' ? (session.operator ? 'all' : session.projects) : [project];
  const scope: Scope = { session, namespaces, project, setProject };
  const { path } = useRoute();
  const page = path[0] ?? (session.operator ? 'datacenter' : 'devices');
  // A CloudConfig's page is reached from the graph.
  const navPage = page === 'cloudconfigs' ? 'graph' : page;

  const nav: Array<[string, string, boolean]> = [
    ['datacenter', 'Datacenter', session.operator],
    ['devices', 'Devices', true],
    ['graph', 'Graph', true],
    ['events', 'Events', true],
    ['usage', 'Usage', true],
    ['chaos', 'Chaos', session.operator],
  ];

  let content: ReactNode;
  if (page === 'devices' && path[1] === 'new') content = <CreateDevice />;
  else if (page === 'devices' && path[1] && path[2]) content = <DeviceDetail namespace={path[1]} name={path[2]} />;
  else if (page === 'devices') content = <Devices />;
  else if (page === 'cloudconfigs' && path[1] && path[2]) content = <CloudConfigDetail namespace={path[1]} name={path[2]} />;
  else if (page === 'datacenter' && session.operator) content = <Datacenter />;
  else if (page === 'graph') content = <Graph />;
  else if (page === 'events') content = <Events />;
  else if (page === 'usage') content = <Usage />;
  else if (page === 'chaos' && session.operator) content = <Chaos />;
  else content = <p className="empty">There is no page “{path.join('/')}” here. <a {...linkProps('devices')}>Go to devices</a>.</p>;

  const toggleTheme = () => {
    const next = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
    document.documentElement.dataset.theme = next;
    localStorage.setItem('metalplane.theme', next);
  };

  return (
    <ScopeContext.Provider value={scope}>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <a className="brand" {...linkProps('')}>
          metalplane
        </a>
        <nav aria-label="Pages">
          {nav
            .filter(([, , shown]) => shown)
            .map(([id, label]) => (
              <a key={id} {...linkProps(id)} aria-current={navPage === id ? 'page' : undefined}>
                {label}
              </a>
            ))}
        </nav>
        <div className="spacer" />
        <label className="project">
          <span>Project</span>
          <select value={project} onChange={(e) => setProject(e.target.value)} data-testid="project-picker">
            {(session.operator || session.projects.length > 1) && <option value="*">All projects</option>}
            {session.projects.map((p) => (
              <option key={p} value={p}>
                {p}
              </option>
            ))}
          </select>
        </label>
        <button type="button" className="ghost" onClick={toggleTheme} aria-label="Toggle light and dark theme">
          ◐
        </button>
        <span className="muted user" title={session.readOnly ? 'read-only key' : undefined}>
          {session.user}
          {session.operator ? ' (operator)' : ''}
        </span>
        <button
          type="button"
          className="ghost"
          onClick={() => {
            navigate('', true);
            onSignOut();
          }}
        >
          Sign out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        <Suspense fallback={<p className="muted" role="status">Loading…</p>}>{content}</Suspense>
      </main>
    </ScopeContext.Provider>
  );
}
