// Dark and light: the signed-in user's preference, else the last choice on this
// browser, else the system's.
import { useEffect, useSyncExternalStore } from 'react';
import { useSession } from './api/session';

export type Theme = 'dark' | 'light';
const KEY = 'coinfold.theme';
const listeners = new Set<() => void>();

function stored(): Theme {
  const value = localStorage.getItem(KEY);
  if (value === 'dark' || value === 'light') return value;
  return window.matchMedia?.('(prefers-color-scheme: light)').matches ? 'light' : 'dark';
}

export function setTheme(theme: Theme) {
  localStorage.setItem(KEY, theme);
  for (const listener of listeners) listener();
}

export function useTheme(): Theme {
  const state = useSession();
  const local = useSyncExternalStore((listener) => {
    listeners.add(listener);
    return () => listeners.delete(listener);
  }, stored);
    const chosen = state.status === 'signed-in' ? state.user.theme : 'SYSTEM';
  const theme: Theme = chosen === 'LIGHT' ? 'light' : chosen === 'DARK' ? 'dark' : local;
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
  }, [theme]);
  return theme;
}

/** Colours the canvas charts need (they cannot read CSS variables). */
export function chartColors(theme: Theme) {
  return theme === 'dark'
    ? { background: '#12161c', text: '#c9d1d9', grid: '#1f2630', up: '#26a69a', down: '#ef5350', line: '#f0b90b', accent: '#58a6ff', muted: '#8b949e' }
    : { background: '#ffffff', text: '#1f2328', grid: '#eaeef2', up: '#0a7d6f', down: '#c62828', line: '#b7791f', accent: '#0969da', muted: '#57606a' };
}
