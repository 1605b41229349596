import { beforeEach, describe, expect, it, vi } from 'vitest';
import { REFRESH_MARGIN_MS, Session, type AuthPayloadLike } from './session';

function payload(n: number, expiresInMs = 15 * 60_000): AuthPayloadLike {
  return {
    accessToken: `access-${n}`,
    accessTokenExpiresAt: new Date(Date.now() + expiresInMs).toISOString(),
    refreshToken: `refresh-${n}`,
    refreshTokenExpiresAt: new Date(Date.now() + 86_400_000).toISOString(),
    user: { id: 'u1', username: 'alice', theme: 'DARK', baseCurrency: 'USD' },
  };
}

describe('the session', () => {
  beforeEach(() => localStorage.clear());

  it('keeps the access token in memory and only the refresh token in storage', () => {
    const session = new Session(localStorage);
    session.signIn(payload(1));
    expect(session.accessToken).toBe('access-1');
    expect(localStorage.getItem('coinfold.refreshToken')).toBe('refresh-1');
    expect(JSON.stringify({ ...localStorage })).not.toContain('access-1');
    session.signOut();
  });

  it('restores from a stored refresh token, rotating it', async () => {
    localStorage.setItem('coinfold.refreshToken', 'refresh-0');
    const session = new Session(localStorage);
    expect(session.getSnapshot().status).toBe('restoring');
    const call = vi.fn(async (token: string) => (token === 'refresh-0' ? payload(1) : null));
    session.setRefreshCall(call);
    expect(await session.refresh()).toBe(true);
    expect(session.getSnapshot().status).toBe('signed-in');
    expect(localStorage.getItem('coinfold.refreshToken')).toBe('refresh-1');
    session.signOut();
  });

  it('sends one refresh for concurrent callers: a refresh token works once', async () => {
    const session = new Session(localStorage);
    session.signIn(payload(1));
    let calls = 0;
    session.setRefreshCall(async () => {
      calls += 1;
      await new Promise((resolve) => setTimeout(resolve, 10));
      return payload(2);
    });
    const results = await Promise.all([session.refresh(), session.refresh(), session.refresh()]);
    expect(results).toEqual([true, true, true]);
    expect(calls).toBe(1);
    expect(session.accessToken).toBe('access-2');
    session.signOut();
  });

  it('signs out when the refresh token is refused', async () => {
    const session = new Session(localStorage);
    session.signIn(payload(1));
    session.setRefreshCall(async () => null);
    expect(await session.refresh()).toBe(false);
    expect(session.getSnapshot().status).toBe('anonymous');
    expect(localStorage.getItem('coinfold.refreshToken')).toBeNull();
  });

  it('stays signed in when the network fails during a refresh', async () => {
    const session = new Session(localStorage);
    session.signIn(payload(1));
    session.setRefreshCall(async () => {
      throw new Error('offline');
    });
    expect(await session.refresh()).toBe(false);
    expect(session.getSnapshot().status).toBe('signed-in');
    session.signOut();
  });

  it('refreshes before the access token expires', () => {
    vi.useFakeTimers();
    try {
      const session = new Session(localStorage);
      const call = vi.fn(async () => payload(2));
      session.setRefreshCall(call);
      session.signIn(payload(1, REFRESH_MARGIN_MS + 5_000));
      expect(session.needsRefresh()).toBe(false);
      vi.advanceTimersByTime(4_000);
      expect(call).not.toHaveBeenCalled();
      vi.advanceTimersByTime(2_000);
      expect(call).toHaveBeenCalledWith('refresh-1');
      session.signOut();
    } finally {
      vi.useRealTimers();
    }
  });

  it('stays signed out when a refresh in flight answers after sign-out', async () => {
    const session = new Session(localStorage);
    session.signIn(payload(1));
    let answer: (value: AuthPayloadLike) => void = () => {};
    session.setRefreshCall(() => new Promise((resolve) => (answer = resolve)));
    const refreshing = session.refresh();
    session.signOut();
    answer(payload(2));
    expect(await refreshing).toBe(false);
    expect(session.getSnapshot().status).toBe('anonymous');
    expect(localStorage.getItem('coinfold.refreshToken')).toBeNull();
  });

  it('starts anonymous when the server cannot be reached at load', async () => {
    localStorage.setItem('coinfold.refreshToken', 'refresh-0');
    const session = new Session(localStorage);
    session.setRefreshCall(async () => {
      throw new Error('offline');
    });
    expect(await session.refresh()).toBe(false);
    expect(session.getSnapshot().status).toBe('anonymous');
    // The token is kept: the next load tries it again.
    expect(localStorage.getItem('coinfold.refreshToken')).toBe('refresh-0');
  });
});
