// Polling for the surfaces that have no watch (the simulator's faults, Metal API usage).
import { useEffect, useState } from 'react';
import { request } from './api';

export function usePoll<T>(path: string | undefined, everyMs: number): { data?: T; error?: string; refresh: () => void } {
  const [state, setState] = useState<{ data?: T; error?: string }>({});
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (!path) return;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async () => {
      try {
        const data = await request<T>('GET', path);
        if (!stopped) setState({ data });
      } catch (e) {
        if (!stopped) setState((s) => ({ data: s.data, error: e instanceof Error ? e.message : String(e) }));
      }
      if (!stopped) timer = setTimeout(() => void run(), everyMs);
    };
    void run();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    };
  }, [path, everyMs, tick]);
  return { ...state, refresh: () => setTick((t) => t + 1) };
}

export interface SimFault {
  machine: string;
  type: string;
  until?: string;
}
