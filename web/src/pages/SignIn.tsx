// Sign in, or create an account: the session starts with the answer (access token in
// memory, refresh token kept to stay signed in).
import { useState } from 'react';
import { useNavigate } from 'react-router-dom';
import { useMutation } from 'urql';
import { graphql } from '../gql';
import { session } from '../api/session';
import { describe, formSubmit, isAbout, problemOf, type ApiProblem } from '../api/errors';

const Login = graphql(`
  mutation Login($input: LoginInput!) {
    login(input: $input) {
      ...AuthFields
    }
  }
`);

const Register = graphql(`
  mutation Register($input: RegisterInput!, $key: String) {
    register(input: $input, idempotencyKey: $key) {
      ...AuthFields
    }
  }
`);

export default function SignIn() {
  const [mode, setMode] = useState<'in' | 'up'>('in');
  return (
    <section className="card narrow">
      <div className="tabs" role="group" aria-label="Sign in or sign up">
        <button type="button" aria-pressed={mode === 'in'} onClick={() => setMode('in')}>
          Sign in
        </button>
        <button type="button" aria-pressed={mode === 'up'} onClick={() => setMode('up')}>
          Create an account
        </button>
      </div>
      {mode === 'in' ? <SignInForm /> : <SignUpForm />}
    </section>
  );
}

function SignInForm() {
  const [{ fetching }, login] = useMutation(Login);
  const [problem, setProblem] = useState<ApiProblem>();
  const navigate = useNavigate();
  const submit = async (form: FormData) => {
    const result = await login({ input: { login: String(form.get('login')), password: String(form.get('password')) } });
    if (result.data) {
      session.signIn(result.data.login);
      navigate('/portfolios');
    } else setProblem(problemOf(result.error));
  };
  return (
    <form className="stack-form" onSubmit={formSubmit(submit)}>
      <h1>Sign in</h1>
      <Field name="login" label="Username or e-mail" autoComplete="username" problem={problem} />
      <Field name="password" label="Password" type="password" autoComplete="current-password" problem={problem} />
      {problem && !problem.field && <p className="error" role="alert">{problem.code === 'UNAUTHENTICATED' ? 'Wrong username or password.' : describe(problem)}</p>}
      <button type="submit" className="primary" disabled={fetching}>
        Sign in
      </button>
    </form>
  );
}

function SignUpForm() {
  const [{ fetching }, register] = useMutation(Register);
  const [problem, setProblem] = useState<ApiProblem>();
  // One key per form: a double submit registers once.
  const [key] = useState(() => crypto.randomUUID());
  const navigate = useNavigate();
  const submit = async (form: FormData) => {
    const input = { username: String(form.get('username')), email: String(form.get('email')), password: String(form.get('password')) };
    const result = await register({ input, key });
    if (result.data) {
      session.signIn(result.data.register);
      navigate('/portfolios');
    } else setProblem(problemOf(result.error));
  };
  return (
    <form className="stack-form" onSubmit={formSubmit(submit)}>
      <h1>Create an account</h1>
      <Field name="username" label="Username" hint="3 to 32 of a-z, 0-9, . _ -" autoComplete="username" problem={problem} />
      <Field name="email" label="E-mail" type="email" autoComplete="email" problem={problem} />
      <Field name="password" label="Password" type="password" hint="12 characters or more" autoComplete="new-password" problem={problem} />
      {problem && !['username', 'email', 'password'].some((f) => isAbout(problem, f)) && <p className="error" role="alert">{describe(problem)}</p>}
      <button type="submit" className="primary" disabled={fetching}>
        Create account
      </button>
    </form>
  );
}

/** A labelled input that shows the VALIDATION problem naming it. */
export function Field(props: { name: string; label: string; type?: string; hint?: string; autoComplete?: string; problem?: ApiProblem; defaultValue?: string }) {
  const wrong = isAbout(props.problem, props.name);
  const id = `field-${props.name}`;
  return (
    <label htmlFor={id}>
      {props.label}
      <input id={id} name={props.name} type={props.type ?? 'text'} required autoComplete={props.autoComplete} defaultValue={props.defaultValue} aria-invalid={wrong} aria-describedby={wrong ? `${id}-error` : undefined} />
      {props.hint && !wrong && <span className="muted">{props.hint}</span>}
      {wrong && props.problem && (
        <span className="field-error" id={`${id}-error`} role="alert">
          {describe(props.problem)}
        </span>
      )}
    </label>
  );
}
