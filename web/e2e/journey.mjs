// The dashboard's journey in a real browser (Debian's chromium driven by
// playwright-core) against `coinfold demo` on the recorded market: a visitor sees
// prices move; signs up; creates a portfolio; imports a CSV with a bad line and sees
// the line named, then a good one and sees holdings; records a sell and sees realized
// P&L; sets an alert near the price and sees the toast; drags the time-travel slider
// and sees the earlier holdings; switches theme. Each page gets a screenshot (in
// E2E_OUT, default web/e2e/out/) and an axe-core check (no critical violations).
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import AxeBuilder from '@axe-core/playwright';
import { CHROMIUM_ARGS, chromiumPath, root, startStack } from './stack.mjs';

const out = process.env.E2E_OUT ?? join(root, 'web/e2e/out');
// Each run's screenshots alone: a failure.png of an earlier run is gone.
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const started = Date.now();
const log = (line) => console.log(`[e2e ${((Date.now() - started) / 1000).toFixed(1)} s] ${line}`);
const checks = [];

function expect(condition, what) {
  if (!condition) throw new Error(`expected: ${what}`);
  checks.push(what);
}

async function poll(what, probe, { timeoutMs = 30_000, everyMs = 250 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await probe();
    if (last) return last;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for: ${what}`);
}

async function look(page, name) {
  const file = join(out, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  const results = await new AxeBuilder({ page }).analyze();
  const critical = results.violations.filter((v) => v.impact === 'critical');
  const serious = results.violations.filter((v) => v.impact === 'serious');
  log(`${name}: screenshot ${file}; axe: ${critical.length} critical, ${serious.length} serious (${serious.map((v) => v.id).join(', ') || 'none'})`);
  expect(critical.length === 0, `no critical accessibility violation on ${name}: ${critical.map((v) => `${v.id} (${v.nodes.map((n) => n.target.join(' ')).join('; ')})`).join(', ')}`);
}

const numberIn = (text) => Number((text ?? '').replace(/[^0-9.-]/g, ''));

async function main() {
  const stack = await startStack({ database: 'coinfold_web_e2e', speed: Number(process.env.E2E_SPEED ?? 2) });
  log(`coinfold demo ready at ${stack.base}`);
  const browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_ARGS });
  const failures = [];
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, colorScheme: 'dark' });
  const page = await context.newPage();
  page.on('pageerror', (error) => failures.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') log(`console: ${message.text()}`);
  });
  try {
    // 1. A visitor sees prices move.
    await page.goto(stack.base);
    const btc = page.getByTestId('price-BTC');
    await btc.waitFor({ timeout: 30_000 });
    const first = await poll('a BTC price', async () => {
      const text = await btc.textContent();
      return text && text !== '—' ? text : undefined;
    });
    const moved = await poll('the BTC price to change', async () => {
      const text = await btc.textContent();
      return text !== first ? text : undefined;
    }, { timeoutMs: 90_000 });
    expect(moved !== first, `the BTC price moves (${first} → ${moved})`);
    await look(page, 'market');
    await page.getByLabel('Search coins').fill('eth');
    await poll('the search to keep ETH only', async () => (await page.locator('tr[data-coin="ETH"]').count()) === 1 && (await page.locator('tr[data-coin="BTC"]').count()) === 0 || undefined);
    expect(true, 'searching "eth" lists ETH and not BTC');
    await page.getByLabel('Search coins').fill('');

    await page.getByRole('link', { name: /BTC/ }).first().click();
    await page.waitForURL(/\/coin\/BTC/);
    const chart = page.getByTestId('candle-chart');
    await chart.waitFor();
    const candles = await poll('candles on the chart', async () => {
      const n = Number(await chart.getAttribute('data-candles'));
      return n > 0 ? n : undefined;
    });
    expect(candles > 0, `the BTC chart draws ${candles} candles`);
    await page.waitForTimeout(500);
    await look(page, 'coin-BTC');
    await page.getByRole('group', { name: 'Candle interval' }).getByRole('button', { name: '1m' }).click();
    const minutes = await poll('1-minute candles', async () => {
      const interval = await chart.getAttribute('data-interval');
      const n = Number(await chart.getAttribute('data-candles'));
      return interval === '1m' && n > 0 ? n : undefined;
    });
    expect(minutes > 0, `the chart switches to 1-minute candles (${minutes})`);

    await page.goto(`${stack.base}/correlation`);
    const cell = page.getByTestId('corr-BTC-ETH');
    await cell.waitFor();
    const correlation = await poll('a BTC/ETH correlation', async () => {
      const value = await cell.getAttribute('data-value');
      return value !== null ? Number(value) : undefined;
    });
    expect(correlation >= -1 && correlation <= 1, `the heatmap shows the BTC/ETH correlation (${correlation.toFixed(2)})`);
    await look(page, 'correlation');

    // 2. Signs up.
    await page.goto(`${stack.base}/signin`);
    await look(page, 'signin');
    await page.getByRole('button', { name: 'Create an account' }).click();
    const username = `e2e_${Date.now().toString(36)}`;
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('E-mail').fill(`${username}@example.test`);
    await page.getByLabel('Password').fill('journey-password-2026');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.waitForURL(/\/portfolios$/);
    expect(await page.getByRole('link', { name: username }).isVisible(), 'the new user is signed in');

    // 3. Creates a portfolio.
    await page.getByLabel('Name', { exact: true }).fill('Journey');
    await page.getByRole('button', { name: 'Create portfolio' }).click();
    await page.waitForURL(/\/portfolios\/[0-9a-f-]{36}$/);
    const portfolioUrl = page.url();
    log(`portfolio page ${portfolioUrl}`);

    // 4. Imports a CSV with one bad line: the line is named; then a good one.
    const hour = (h) => new Date(Date.now() - h * 3_600_000).toISOString().replace(/\.\d+Z$/, 'Z');
    const header = 'executed_at,side,coin,quantity,price,quote,fee,external_id,note';
    const bad = [header, `${hour(5)},buy,BTC,0.5,20000,USD,0,,first`, `${hour(4)},buy,ETH,2,not-a-price,USD,0,,second`].join('\n');
    const good = [header, `${hour(5)},buy,BTC,0.5,20000,USD,0,,first`, `${hour(4)},buy,ETH,2,1500,USD,0,,second`].join('\n');
    const fileInput = page.getByLabel('CSV file');
    await page.getByLabel('Format').selectOption('GENERIC');
    await fileInput.setInputFiles({ name: 'bad.csv', mimeType: 'text/csv', buffer: Buffer.from(bad) });
    await page.getByRole('button', { name: 'Import', exact: true }).click();
    const named = page.getByRole('alert').filter({ hasText: 'line 3' });
    await named.first().waitFor({ timeout: 15_000 });
    expect(await page.locator('[data-line="3"][aria-invalid="true"]').count() === 1, 'the bad line 3 is marked in the preview');
    await look(page, 'portfolio-import-error');
    await fileInput.setInputFiles({ name: 'good.csv', mimeType: 'text/csv', buffer: Buffer.from(good) });
    await page.getByRole('button', { name: 'Import', exact: true }).click();
    const qty = page.getByTestId('qty-BTC').first();
    await poll('0.5 BTC in the holdings', async () => ((await qty.count()) && numberIn(await qty.textContent()) === 0.5) || undefined);
    expect(true, 'the imported BTC shows in the holdings (0.5)');

    // 5. Records a sell and sees realized P&L.
    const tradeForm = page.locator('form').filter({ has: page.getByRole('button', { name: 'Record trade' }) });
    await tradeForm.getByLabel('Side').selectOption('SELL');
    await tradeForm.getByLabel('Coin').fill('BTC');
    await tradeForm.getByLabel('Quantity').fill('0.2');
    await tradeForm.getByLabel('Price', { exact: true }).fill('30000');
    await tradeForm.getByRole('button', { name: 'Record trade' }).click();
    const realized = page.getByTestId('realized-pnl');
    const pnl = await poll('realized P&L of 2,000 USD', async () => {
      const text = await realized.textContent();
      return numberIn(text) === 2000 ? text : undefined;
    });
    expect(true, `realized P&L shows ${pnl}`);
    await poll('0.3 BTC left', async () => numberIn(await qty.textContent()) === 0.3 || undefined);
    await look(page, 'portfolio');

    // 6. Sets an alert near the price and sees the toast.
    await page.getByRole('link', { name: 'Alerts' }).click();
    await page.waitForURL(/\/alerts$/);
    const price = numberIn(moved);
    await page.getByLabel('Coin', { exact: true }).fill('BTC');
    await page.getByLabel('Condition').selectOption('priceAbove');
    await page.getByLabel('Price (USD)').fill(String(Math.floor(price * 0.98)));
    await page.getByRole('button', { name: 'Create alert' }).click();
    const toast = page.getByTestId('alert-toast');
    await toast.first().waitFor({ timeout: 60_000 });
    expect((await toast.first().textContent()).includes('BTC'), 'a toast says the BTC alert fired');
    const row = page.getByTestId('alert-list').locator('tbody tr').first();
    await poll('the alert listed as fired', async () => (await row.getAttribute('data-status')) === 'FIRED' || undefined);
    expect((await row.textContent()).includes('price at or above'), 'the alert list says its condition in words and that it fired');
    await look(page, 'alerts');

    // 7. Drags the time-travel slider and sees the earlier holdings.
    await page.goto(portfolioUrl);
    const slider = page.getByLabel('Time travel');
    await slider.waitFor();
    await slider.focus();
    await page.keyboard.press('Home');
    const earlier = page.getByTestId('asof-holdings').getByTestId('qty-BTC');
    let seen;
    for (let step = 0; step < 12 && !seen; step += 1) {
      await page.waitForTimeout(400);
      if ((await earlier.count()) && numberIn(await earlier.first().textContent()) === 0.5) seen = await page.getByTestId('asof-time').textContent();
      else await page.keyboard.press('ArrowRight');
    }
    expect(Boolean(seen), `time travel shows the 0.5 BTC held before the sell (as of ${seen})`);
    await look(page, 'portfolio-time-travel');

    // 8. Switches theme.
    const before = await page.evaluate(() => document.documentElement.dataset.theme);
    await page.getByRole('button', { name: /Switch to (light|dark) theme/ }).click();
    await poll('the theme to switch', async () => (await page.evaluate(() => document.documentElement.dataset.theme)) !== before || undefined);
    const after = await page.evaluate(() => document.documentElement.dataset.theme);
    expect(after !== before, `the theme switches (${before} → ${after})`);
    await look(page, `portfolio-${after}`);
    await page.goto(`${stack.base}/account`);
    await page.getByRole('heading', { name: 'API keys' }).waitFor();
    await look(page, `account-${after}`);
    await page.goto(stack.base);
    await btc.waitFor();
    await page.getByRole('button', { name: 'Add ETH to the watchlist' }).click();
    await page.getByRole('button', { name: 'Remove ETH from the watchlist' }).waitFor();
    await page.getByLabel('Watchlist only').check();
    await poll('the watchlist to show ETH only', async () => (await page.locator('tbody tr[data-coin]').count()) === 1 && (await page.locator('tr[data-coin="ETH"]').count()) === 1 || undefined);
    expect(true, 'the watchlist keeps the starred ETH');
    await page.getByLabel('Watchlist only').uncheck();
    await look(page, `market-${after}`);
    expect(failures.length === 0, `no page errors (${failures.join('; ')})`);
    log(`passed: ${checks.length} checks`);
    for (const check of checks) log(`  ✓ ${check}`);
  } catch (error) {
    await page.screenshot({ path: join(out, 'failure.png'), fullPage: true }).catch(() => {});
    log(`FAILED: ${error.message}`);
    log(`the page at failure: ${join(out, 'failure.png')}; coinfold's log: ${stack.logPath} and ${join(root, '.local/log/coinfold-demo.log')}`);
    process.exitCode = 1;
  } finally {
    await browser.close();
    stack.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
