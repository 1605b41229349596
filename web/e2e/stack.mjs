// Starts `coinfold demo` for a browser test: its own database and port, the recorded
// market, the dashboard from web/dist. Answers { base, stop, log }.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdirSync, openSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

function freePort() {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

/** `coinfold demo` on a free port with database `database`; resolves once it is ready. */
export async function startStack({ database, speed = 1, timeoutMs = 600_000 }) {
  const bin = process.env.COINFOLD_BIN ?? join(root, 'target/debug/coinfold');
  const port = Number(process.env.E2E_PORT ?? (await freePort()));
  mkdirSync(join(root, '.local/log'), { recursive: true });
  const logPath = join(root, `.local/log/${database}.out`);
  const out = openSync(logPath, 'w');
  const child = spawn(bin, ['demo', '--no-up', '--database', database, '--speed', String(speed), '--every', '30'], {
    cwd: root,
    env: { ...process.env, COINFOLD_APPLICATION__PORT: String(port), COINFOLD_WEB__DIR: join(root, 'web/dist') },
    stdio: ['ignore', 'pipe', out],
    detached: true,
  });
  let output = '';
  const stop = () => {
    try {
      process.kill(-child.pid, 'SIGINT');
    } catch {
      // already gone
    }
  };
  await new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`coinfold demo was not ready after ${timeoutMs / 1000} s:\n${output.slice(-3000)}`)), timeoutMs);
    child.stdout.on('data', (chunk) => {
      output += chunk;
      if (/ready after/.test(output)) {
        clearTimeout(timer);
        done();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`coinfold demo exited (${code}) before it was ready:\n${output.slice(-3000)}\n(stderr: ${logPath})`));
    });
  });
  return { base: `http://127.0.0.1:${port}`, stop, output: () => output, logPath };
}

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function chromiumPath() {
  return process.env.CHROMIUM ?? '/usr/bin/chromium';
}
