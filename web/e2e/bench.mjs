// The dashboard's figures (BENCHMARKS.md), in headless chromium on this machine against
// `coinfold demo`: the first page's load, a 1,000-candle chart's render, and the first
// page's JavaScript (gzip). Each beside a ceiling measured in the same run. Prints a
// table; never asserts. `--quick`: fewer repetitions (CI's smoke run).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, chromiumPath, root, startStack } from './stack.mjs';

const quick = process.argv.includes('--quick');
const runs = quick ? 2 : 7;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (ms) => `${ms.toFixed(0)} ms`;

/** The JavaScript the first page loads: index.html's entry and its preloads. */
function firstPageBundle() {
  const dist = join(root, 'web/dist');
  const html = readFileSync(join(dist, 'index.html'), 'utf8');
  const files = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+\.js)"/g)].map((m) => m[1]);
  let raw = 0;
  let gzip = 0;
  for (const file of files) {
    const bytes = readFileSync(join(dist, file));
    raw += bytes.length;
    gzip += gzipSync(bytes, { level: 9 }).length;
  }
  return { files, raw, gzip };
}

async function main() {
  const bundle = firstPageBundle();
  const stack = await startStack({ database: 'coinfold_web_bench', speed: 1 });
  const browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_ARGS });
  const loads = [];
  const statics = [];
  const renders = [];
  const totals = [];
  const fetches = [];
  try {
    for (let i = 0; i < runs; i += 1) {
      // Each run a new context: nothing cached.
      const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
      const page = await context.newPage();
      await page.goto(`${stack.base}/favicon.svg`);
      statics.push(await page.evaluate(() => performance.getEntriesByType('navigation')[0].responseEnd));
      await page.goto(stack.base);
      await page.waitForFunction(() => [...document.querySelectorAll('[data-testid^="price-"]')].some((e) => /\d/.test(e.textContent ?? '')), null, { timeout: 60_000 });
      loads.push(await page.evaluate(() => performance.now()));

      await page.goto(`${stack.base}/coin/BTC?candles=1000`);
      await page.waitForFunction(() => performance.getEntriesByName('candles-rendered').length > 0, null, { timeout: 60_000 });
      const figures = await page.evaluate(() => {
        const data = performance.getEntriesByName('candles-data')[0]?.startTime ?? 0;
        const rendered = performance.getEntriesByName('candles-rendered')[0]?.startTime ?? 0;
        const candles = Number(document.querySelector('[data-testid="candle-chart"]')?.getAttribute('data-candles'));
        return { render: rendered - data, total: rendered, candles };
      });
      if (figures.candles < 1000) console.error(`[bench web] only ${figures.candles} candles drawn`);
      renders.push(figures.render);
      totals.push(figures.total);
      // The ceiling of the chart's data: the same ten pages fetched from the page with no rendering.
      fetches.push(
        await page.evaluate(async () => {
          const started = performance.now();
          let after = null;
          for (let p = 0; p < 10; p += 1) {
            const response = await fetch('/graphql', {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({
                query: 'query($after:String){candles(coin:"BTC",interval:"1h",first:100,after:$after){pageInfo{endCursor hasNextPage} nodes{openTime open high low close volume}}}',
                variables: { after },
              }),
            });
            const body = await response.json();
            after = body.data.candles.pageInfo.endCursor;
            if (!body.data.candles.pageInfo.hasNextPage) break;
          }
          return performance.now() - started;
        }),
      );
      await context.close();
    }
  } finally {
    await browser.close();
    stack.stop();
  }
  const rows = [
    ['web load', `the market page, navigation → live price table (${runs} cold loads, median)`, fmt(median(loads)), `a static file of the same server: ${fmt(median(statics))}`, '< 3 s', median(loads) < 3000 ? 'yes' : 'no'],
    ['web chart', '1,000 1h candles: setData → painted frame (median)', fmt(median(renders)), '—', '< 500 ms', median(renders) < 500 ? 'yes' : 'no'],
    ['web chart', 'navigation → 1,000 candles painted (ten pages of 100 read first)', fmt(median(totals)), `the ten pages fetched alone: ${fmt(median(fetches))}`, '—', '—'],
    ['web bundle', `the first page's JavaScript (${bundle.files.length} files)`, `${(bundle.gzip / 1024).toFixed(1)} kB gzip`, `${(bundle.raw / 1024).toFixed(1)} kB raw`, '< 400 kB gzip', bundle.gzip < 400 * 1024 ? 'yes' : 'no'],
  ];
  console.log('| scenario | what | coinfold | ceiling | goal | met |');
  console.log('|---|---|---|---|---|---|');
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
