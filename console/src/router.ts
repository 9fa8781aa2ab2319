// A small router over the History API: routes are paths under /ui/ (the server answers every one with the app).
import { useSyncExternalStore } from 'react';

const BASE = '/ui/';
const listeners = new Set<() => void>();
window.addEventListener('popstate', () => listeners.forEach((l) => l()));

export function navigate(to: string, replace = false): void {
  const url = BASE + to.replace(/^\//, '');
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  listeners.forEach((l) => l());
  window.scrollTo(0, 0);
}

function current(): string {
  const p = location.pathname;
  return (p.startsWith(BASE) ? p.slice(BASE.length) : '') + location.search;
}

export function useRoute(): { path: string[]; query: URLSearchParams } {
  const loc = useSyncExternalStore(
    (fn) => {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    current,
  );
  const [path, search] = loc.split('?');
  return { path: (path ?? '').split('/').filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(search ?? '') };
}

/** An in-app link: a real <a href> (open in a new tab works), navigated without a reload. */
export function linkProps(to: string): { href: string; onClick: (e: React.MouseEvent) => void } {
  return {
    href: BASE + to.replace(/^\//, ''),
    onClick: (e) => {
      if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      navigate(to);
    },
  };
}
