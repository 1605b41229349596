// The signed-in session: the access token lives in memory only; the refresh token is
// kept in localStorage so a reload stays signed in, and is rotated before the access
// token expires. A refresh token works once (presenting it twice ends the session
// everywhere), so tabs refresh one at a time under a Web Lock and each takes the
// newest token from storage inside the lock.
import { useSyncExternalStore } from 'react';

export interface SessionUser {
  id: string;
  username: string;
  displayName?: string | null;
  theme: 'DARK' | 'LIGHT' | 'SYSTEM';
  baseCurrency: string;
}

export interface AuthPayloadLike {
  accessToken: string;
  accessTokenExpiresAt: string;
  refreshToken: string;
  refreshTokenExpiresAt: string;
  user: SessionUser;
}

export type SessionState =
  | { status: 'restoring' }
  | { status: 'anonymous' }
  | { status: 'signed-in'; user: SessionUser; accessToken: string; accessExpiresAt: number };

const REFRESH_KEY = 'coinfold.refreshToken';
/** Refresh this long before the access token expires. */
export const REFRESH_MARGIN_MS = 60_000;

type Listener = () => void;

/** Sends `refreshToken(refreshToken)` and answers the new pair, or null when refused. */
export type RefreshCall = (refreshToken: string) => Promise<AuthPayloadLike | null>;

export class Session {
  private state: SessionState;
  private listeners = new Set<Listener>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private inflight: Promise<boolean> | undefined;
  /** Bumped by signOut: a refresh that started before answers into the void. */
  private epoch = 0;
  private refreshCall: RefreshCall | undefined;

  constructor(private storage: Storage | undefined) {
    this.state = storage?.getItem(REFRESH_KEY) ? { status: 'restoring' } : { status: 'anonymous' };
  }

  setRefreshCall(call: RefreshCall) {
    this.refreshCall = call;
  }

  subscribe = (listener: Listener) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getSnapshot = () => this.state;

  get accessToken(): string | undefined {
    return this.state.status === 'signed-in' ? this.state.accessToken : undefined;
  }

  /** Whether the access token is missing or about to expire. */
  needsRefresh(now = Date.now()): boolean {
    return this.state.status === 'signed-in' && this.state.accessExpiresAt - now < REFRESH_MARGIN_MS;
  }

  storedRefreshToken(): string | null {
    return this.storage?.getItem(REFRESH_KEY) ?? null;
  }

  signIn(payload: AuthPayloadLike) {
    this.storage?.setItem(REFRESH_KEY, payload.refreshToken);
    this.set({
      status: 'signed-in',
      user: payload.user,
      accessToken: payload.accessToken,
      accessExpiresAt: Date.parse(payload.accessTokenExpiresAt),
    });
    this.schedule();
  }

  /** The user as the API answered it after a change (profile, preferences). */
  updateUser(user: Partial<SessionUser>) {
    if (this.state.status !== 'signed-in') return;
    this.set({ ...this.state, user: { ...this.state.user, ...user } });
  }

  signOut() {
    this.epoch += 1;
    this.storage?.removeItem(REFRESH_KEY);
    clearTimeout(this.timer);
    this.set({ status: 'anonymous' });
  }

  /** Rotates the refresh token; false (and signed out) when the API refuses it. */
  refresh(): Promise<boolean> {
    this.inflight ??= this.rotate().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async rotate(): Promise<boolean> {
    const call = this.refreshCall;
    if (!call) return false;
    const epoch = this.epoch;
    // Inside the lock: read the newest token, and store its successor before the lock
    // is released, so the next tab in line presents that one.
    const run = async () => {
      const token = this.storedRefreshToken();
      if (!token) return null;
      const answer = await call(token);
      if (answer && epoch === this.epoch) this.storage?.setItem(REFRESH_KEY, answer.refreshToken);
      return answer;
    };
    let payload: AuthPayloadLike | null;
    try {
      payload =
        typeof navigator !== 'undefined' && navigator.locks
          ? await navigator.locks.request('coinfold.refresh', run)
          : await run();
    } catch {
      // The network is down: keep the session, try again on the next request; a
      // reload that cannot reach the server starts anonymous rather than wait.
      if (this.state.status === 'restoring') this.set({ status: 'anonymous' });
      return false;
    }
    if (epoch !== this.epoch) return false;
    if (!payload) {
      this.signOut();
      return false;
    }
    this.signIn(payload);
    return true;
  }

  private schedule() {
    clearTimeout(this.timer);
    if (this.state.status !== 'signed-in') return;
    const wait = Math.max(this.state.accessExpiresAt - Date.now() - REFRESH_MARGIN_MS, 1_000);
    this.timer = setTimeout(() => void this.refresh(), wait);
  }

  private set(state: SessionState) {
    this.state = state;
    for (const listener of this.listeners) listener();
  }
}

export const session = new Session(typeof localStorage === 'undefined' ? undefined : localStorage);

// Signed out in another tab: this one too.
if (typeof window !== 'undefined') {
  window.addEventListener('storage', (event) => {
    if (event.key === REFRESH_KEY && event.newValue === null && session.getSnapshot().status === 'signed-in') session.signOut();
  });
}

export function useSession(): SessionState {
  return useSyncExternalStore(session.subscribe, session.getSnapshot);
}
