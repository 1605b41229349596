import { Suspense, lazy, useEffect, useMemo, useRef, useState } from 'react';
import { NavLink, Route, Routes, useNavigate } from 'react-router-dom';
import { Provider, useMutation } from 'urql';
import { graphql } from './gql';
import { makeClient, onSocketReplaced, restartSocket, useLive, type LiveState } from './api/client';
import { session, useSession } from './api/session';
import { setTheme, useTheme } from './theme';
import { AlertToasts } from './components/AlertToasts';
import { Market } from './pages/Market';

const Coin = lazy(() => import('./pages/Coin'));
const Correlation = lazy(() => import('./pages/Correlation'));
const SignIn = lazy(() => import('./pages/SignIn'));
const Account = lazy(() => import('./pages/Account'));
const Portfolios = lazy(() => import('./pages/Portfolios'));
const PortfolioPage = lazy(() => import('./pages/Portfolio'));
const Alerts = lazy(() => import('./pages/Alerts'));

const ThemeMutation = graphql(`
  mutation SetTheme($theme: Theme!) {
    updatePreferences(input: { theme: $theme }) {
      id
      theme
    }
  }
`);

const LogoutMutation = graphql(`
  mutation Logout($refreshToken: String!) {
    logout(refreshToken: $refreshToken)
  }
`);

export function App() {
  const state = useSession();
  const userId = state.status === 'signed-in' ? state.user.id : undefined;
  // After the socket's credential was refused and renewed: subscribe again.
  const [generation, setGeneration] = useState(0);
  useEffect(() => onSocketReplaced(() => setGeneration((g) => g + 1)), []);
  // A client per user: nothing one user read stays in the cache for the next.
  const client = useMemo(() => {
    restartSocket();
    return makeClient();
    // generation: a new socket's subscriptions start from a new client.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [userId, generation]);

  useEffect(() => {
    if (state.status === 'restoring') void session.refresh();
  }, [state.status]);

  return (
    <Provider value={client}>
      <Shell />
    </Provider>
  );
}

function Shell() {
  const state = useSession();
  const theme = useTheme();
  const live = useLive();
  const [, saveTheme] = useMutation(ThemeMutation);
  const [, logout] = useMutation(LogoutMutation);
  const navigate = useNavigate();
  const signedIn = state.status === 'signed-in';

  const toggleTheme = async () => {
    const next = theme === 'dark' ? 'light' : 'dark';
    setTheme(next);
    if (signedIn) {
      const result = await saveTheme({ theme: next === 'dark' ? 'DARK' : 'LIGHT' });
      if (result.data) session.updateUser({ theme: result.data.updatePreferences.theme });
    }
  };

  const signOut = async () => {
    const token = session.storedRefreshToken();
    if (token) await logout({ refreshToken: token });
    session.signOut();
    navigate('/');
  };

  return (
    <div className="app">
      <header className="top">
        <NavLink to="/" className="brand" aria-label="coinfold home">
          <img src="/favicon.svg" alt="" width={22} height={22} /> coinfold
        </NavLink>
        <nav aria-label="Main">
          <NavLink to="/" end>
            Market
          </NavLink>
          <NavLink to="/correlation">Correlation</NavLink>
          {signedIn && <NavLink to="/portfolios">Portfolios</NavLink>}
          {signedIn && <NavLink to="/alerts">Alerts</NavLink>}
        </nav>
        <div className="spacer" />
        <LiveBadge live={live} />
        <button type="button" className="ghost" onClick={() => void toggleTheme()} aria-label={`Switch to ${theme === 'dark' ? 'light' : 'dark'} theme`}>
          {theme === 'dark' ? '☀ Light' : '☾ Dark'}
        </button>
        {signedIn ? (
          <>
            <NavLink to="/account" className="who">
              {state.user.displayName || state.user.username}
            </NavLink>
            <button type="button" className="ghost" onClick={() => void signOut()}>
              Sign out
            </button>
          </>
        ) : state.status === 'anonymous' ? (
          <NavLink to="/signin" className="button">
            Sign in
          </NavLink>
        ) : null}
      </header>
      {signedIn && <AlertToasts />}
      <main>
        <Suspense fallback={<p className="muted">Loading…</p>}>
          <Routes>
            <Route path="/" element={<Market />} />
            <Route path="/coin/:symbol" element={<Coin />} />
            <Route path="/correlation" element={<Correlation />} />
            <Route path="/signin" element={<SignIn />} />
            <Route path="/account" element={<RequireSession><Account /></RequireSession>} />
            <Route path="/portfolios" element={<RequireSession><Portfolios /></RequireSession>} />
            <Route path="/portfolios/:id" element={<RequireSession><PortfolioPage /></RequireSession>} />
            <Route path="/alerts" element={<RequireSession><Alerts /></RequireSession>} />
            <Route path="*" element={<p>Nothing here. <NavLink to="/">Back to the market</NavLink></p>} />
          </Routes>
        </Suspense>
      </main>
    </div>
  );
}

function LiveBadge({ live }: { live: LiveState }) {
  const wasDropped = useRef(false);
  if (live === 'dropped') wasDropped.current = true;
  if (live === 'idle') return null;
  const text =
    live === 'live'
      ? wasDropped.current
        ? 'Live again'
        : 'Live'
      : live === 'dropped'
        ? 'Live updates dropped: reconnecting…'
        : 'Connecting…';
  return (
    <span className={`live live-${live}`} role="status" aria-live="polite">
      <span className="dot" aria-hidden="true" /> {text}
    </span>
  );
}

function RequireSession({ children }: { children: React.ReactNode }) {
  const state = useSession();
  if (state.status === 'restoring') return <p className="muted">Signing you in again…</p>;
  if (state.status === 'anonymous') return <SignInFirst />;
  return <>{children}</>;
}

function SignInFirst() {
  return (
    <section className="card narrow">
      <h1>Sign in first</h1>
      <p>
        This page shows your own data. <NavLink to="/signin">Sign in or create an account</NavLink>.
      </p>
    </section>
  );
}
