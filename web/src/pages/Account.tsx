// The signed-in user: profile, preferences (base currency, theme), password, and API
// keys (a new key's secret is shown once).
import { useState } from 'react';
import { useMutation, useQuery } from 'urql';
import { graphql } from '../gql';
import { session } from '../api/session';
import { describe, formSubmit, problemOf, type ApiProblem } from '../api/errors';
import { ErrorNote } from '../components/ErrorNote';
import { Field } from './SignIn';
import { setTheme } from '../theme';
import { utc } from '../format';

const Me = graphql(`
  query Me($after: String) {
    me {
      id
      username
      email
      displayName
      bio
      baseCurrency
      theme
      notifyByEmail
      notifyByPush
      registeredAt
      apiKeys(first: 20, after: $after) {
        nodes {
          id
          name
          prefix
          issuedAt
          revokedAt
        }
        pageInfo {
          hasNextPage
          endCursor
        }
      }
    }
  }
`);

const UpdateProfile = graphql(`
  mutation UpdateProfile($input: ProfileInput!) {
    updateProfile(input: $input) {
      id
      displayName
      bio
    }
  }
`);

const UpdatePreferences = graphql(`
  mutation UpdatePreferences($input: PreferencesInput!) {
    updatePreferences(input: $input) {
      id
      baseCurrency
      theme
      notifyByEmail
      notifyByPush
    }
  }
`);

const ChangePassword = graphql(`
  mutation ChangePassword($current: String!, $next: String!) {
    changePassword(currentPassword: $current, newPassword: $next)
  }
`);

const CreateKey = graphql(`
  mutation CreateApiKey($name: String!) {
    createApiKey(name: $name) {
      id
      prefix
      secret
    }
  }
`);

const RevokeKey = graphql(`
  mutation RevokeApiKey($id: ID!) {
    revokeApiKey(id: $id) {
      id
      version
    }
  }
`);

export default function Account() {
  // "Show more keys" adds the next page below the keys already shown.
  const [after, setAfter] = useState<string | null>(null);
  const [earlier, setEarlier] = useState<Key[]>([]);
  const [{ data, error }, refetch] = useQuery({ query: Me, variables: { after } });
  const me = data?.me;
  const reload = () => {
    setEarlier([]);
    setAfter(null);
    refetch({ requestPolicy: 'network-only' });
  };
  if (error) return <ErrorNote problem={problemOf(error)} />;
  if (!me) return <p className="muted">Loading…</p>;
  return (
    <div className="stack">
      <section className="card">
        <h1>{me.displayName || me.username}</h1>
        <p className="muted">
          {me.username} · {me.email} · member since {utc(me.registeredAt)}
        </p>
      </section>
      <div className="cards">
        <Profile displayName={me.displayName ?? ''} bio={me.bio ?? ''} />
        <Preferences baseCurrency={me.baseCurrency} theme={me.theme} notifyByEmail={me.notifyByEmail} notifyByPush={me.notifyByPush} />
        <Password />
      </div>
      <ApiKeys
        keys={[...earlier, ...me.apiKeys.nodes]}
        next={me.apiKeys.pageInfo.hasNextPage ? (me.apiKeys.pageInfo.endCursor ?? null) : null}
        onMore={(cursor) => {
          setEarlier((shown) => [...shown, ...me.apiKeys.nodes]);
          setAfter(cursor);
        }}
        onChange={reload}
      />
    </div>
  );
}

function Saved({ problem, saved }: { problem?: ApiProblem; saved: boolean }) {
  if (problem && !problem.field) return <ErrorNote problem={problem} />;
  return saved ? <p className="ok" role="status">Saved.</p> : null;
}

function Profile(props: { displayName: string; bio: string }) {
  const [{ fetching }, save] = useMutation(UpdateProfile);
  const [problem, setProblem] = useState<ApiProblem>();
  const [saved, setSaved] = useState(false);
  const submit = async (form: FormData) => {
    const result = await save({ input: { displayName: String(form.get('displayName')) || null, bio: String(form.get('bio')) || null } });
    setProblem(problemOf(result.error));
    setSaved(!result.error);
    if (result.data) session.updateUser({ displayName: result.data.updateProfile.displayName });
  };
  return (
    <form className="card stack-form" onSubmit={formSubmit(submit)}>
      <h2>Profile</h2>
      <label htmlFor="displayName">
        Display name
        <input id="displayName" name="displayName" defaultValue={props.displayName} maxLength={2000} aria-invalid={problem?.field === 'displayName'} />
      </label>
      <label htmlFor="bio">
        Bio
        <textarea id="bio" name="bio" defaultValue={props.bio} rows={3} maxLength={2000} aria-invalid={problem?.field === 'bio'} />
      </label>
      {problem?.field && <p className="field-error" role="alert">{describe(problem)}</p>}
      <Saved problem={problem} saved={saved} />
      <button type="submit" disabled={fetching}>
        Save profile
      </button>
    </form>
  );
}

function Preferences(props: { baseCurrency: string; theme: 'DARK' | 'LIGHT' | 'SYSTEM'; notifyByEmail: boolean; notifyByPush: boolean }) {
  const [{ fetching }, save] = useMutation(UpdatePreferences);
  const [problem, setProblem] = useState<ApiProblem>();
  const [saved, setSaved] = useState(false);
  const submit = async (form: FormData) => {
    const chosen = form.get('theme');
    const theme = chosen === 'LIGHT' ? 'LIGHT' : chosen === 'DARK' ? 'DARK' : 'SYSTEM';
    const result = await save({
      input: { baseCurrency: String(form.get('baseCurrency')), theme, notifyByEmail: form.get('notifyByEmail') === 'on', notifyByPush: form.get('notifyByPush') === 'on' },
    });
    setProblem(problemOf(result.error));
    setSaved(!result.error);
    if (result.data) {
      const user = result.data.updatePreferences;
      if (user.theme !== 'SYSTEM') setTheme(user.theme === 'LIGHT' ? 'light' : 'dark');
      session.updateUser({ theme: user.theme, baseCurrency: user.baseCurrency });
    }
  };
  return (
    <form className="card stack-form" onSubmit={formSubmit(submit)}>
      <h2>Preferences</h2>
      <label htmlFor="baseCurrency">
        Base currency
        <select id="baseCurrency" name="baseCurrency" defaultValue={props.baseCurrency} aria-invalid={problem?.field === 'baseCurrency'}>
          {['USD', 'EUR', 'GBP', 'USDT', 'USDC', 'BTC'].map((c) => (
            <option key={c}>{c}</option>
          ))}
        </select>
      </label>
      <label htmlFor="theme">
        Theme
        <select id="theme" name="theme" defaultValue={props.theme}>
          <option value="DARK">Dark</option>
          <option value="LIGHT">Light</option>
          <option value="SYSTEM">As this device</option>
        </select>
      </label>
      <label className="check">
        <input type="checkbox" name="notifyByEmail" defaultChecked={props.notifyByEmail} /> Notify by e-mail
      </label>
      <label className="check">
        <input type="checkbox" name="notifyByPush" defaultChecked={props.notifyByPush} /> Notify by push
      </label>
      {problem?.field && <p className="field-error" role="alert">{describe(problem)}</p>}
      <Saved problem={problem} saved={saved} />
      <button type="submit" disabled={fetching}>
        Save preferences
      </button>
    </form>
  );
}

function Password() {
  const [{ fetching }, change] = useMutation(ChangePassword);
  const [problem, setProblem] = useState<ApiProblem>();
  const [saved, setSaved] = useState(false);
  const submit = async (form: FormData) => {
    const result = await change({ current: String(form.get('currentPassword')), next: String(form.get('newPassword')) });
    setProblem(problemOf(result.error));
    setSaved(!result.error);
  };
  return (
    <form className="card stack-form" onSubmit={formSubmit(submit)}>
      <h2>Password</h2>
      <Field name="currentPassword" label="Current password" type="password" autoComplete="current-password" problem={problem} />
      <Field name="newPassword" label="New password" type="password" hint="12 characters or more; other sessions end" autoComplete="new-password" problem={problem} />
      <Saved problem={problem} saved={saved} />
      <button type="submit" disabled={fetching}>
        Change password
      </button>
    </form>
  );
}

interface Key {
  id: string;
  name: string;
  prefix: string;
  issuedAt: string;
  revokedAt?: string | null;
}

function ApiKeys(props: { keys: Key[]; next: string | null; onMore: (after: string) => void; onChange: () => void }) {
  const [, create] = useMutation(CreateKey);
  const [, revoke] = useMutation(RevokeKey);
  const [problem, setProblem] = useState<ApiProblem>();
  const [secret, setSecret] = useState<{ name: string; secret: string }>();
  const [revoked, setRevoked] = useState(new Set<string>());
  const submit = async (form: FormData) => {
    const name = String(form.get('name'));
    const result = await create({ name });
    setProblem(problemOf(result.error));
    if (result.data) {
      setSecret({ name, secret: result.data.createApiKey.secret });
      for (const ms of [300, 1_000, 3_000]) setTimeout(props.onChange, ms);
    }
  };
  const revokeKey = async (id: string) => {
    const result = await revoke({ id });
    setProblem(problemOf(result.error));
    if (!result.error) {
      setRevoked((r) => new Set(r).add(id));
      for (const ms of [300, 1_000, 3_000]) setTimeout(props.onChange, ms);
    }
  };
  return (
    <section className="card">
      <h2>API keys</h2>
      <p className="muted">For programs: send the key as the <code>X-Api-Key</code> header. An API key cannot change the password or make more keys.</p>
      <form className="row" onSubmit={formSubmit(submit)}>
        <Field name="name" label="Key name" problem={problem} />
        <button type="submit">Create API key</button>
      </form>
      {problem && !problem.field && <ErrorNote problem={problem} />}
      {secret && (
        <div className="ok" role="status">
          <p>
            The key <strong>{secret.name}</strong>: copy it now, it is shown only once.
          </p>
          <p className="secret" data-testid="api-key-secret">
            {secret.secret}
          </p>
          <button type="button" onClick={() => setSecret(undefined)}>
            I have copied it
          </button>
        </div>
      )}
      <table>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Starts with</th>
            <th scope="col">Issued</th>
            <th scope="col">State</th>
            <th scope="col">
              <span className="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {props.keys.map((key) => {
            const isRevoked = Boolean(key.revokedAt) || revoked.has(key.id);
            return (
              <tr key={key.id}>
                <td>{key.name}</td>
                <td>
                  <code>{key.prefix}…</code>
                </td>
                <td>{utc(key.issuedAt)}</td>
                <td>{isRevoked ? `revoked ${key.revokedAt ? utc(key.revokedAt) : 'now'}` : 'active'}</td>
                <td>
                  {!isRevoked && (
                    <button type="button" className="danger" onClick={() => void revokeKey(key.id)}>
                      Revoke {key.name}
                    </button>
                  )}
                </td>
              </tr>
            );
          })}
          {props.keys.length === 0 && (
            <tr>
              <td colSpan={5} className="muted">
                No API keys yet.
              </td>
            </tr>
          )}
        </tbody>
      </table>
      {props.next && <button type="button" onClick={() => props.onMore(props.next!)}>Show more keys</button>}
    </section>
  );
}
