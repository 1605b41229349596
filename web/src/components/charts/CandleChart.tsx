// A coin's candles with TradingView's lightweight-charts: candles and volume, SMA/EMA/
// Bollinger overlays, an RSI pane and a MACD pane; the open candle moves live. Only the
// coin page imports this file, so the chart library stays out of the first bundle.
import { useEffect, useMemo, useRef, useState } from 'react';
import { useClient } from 'urql';
import { usePaged } from '../../api/paged';
import {
  CandlestickSeries,
  ColorType,
  HistogramSeries,
  LineSeries,
  LineStyle,
  createChart,
  type DeepPartial,
  type ChartOptions,
  type IChartApi,
  type IPriceLine,
  type ISeriesApi,
} from 'lightweight-charts';
import { graphql } from '../../gql';
import { chartColors, useTheme, type Theme } from '../../theme';
import { problemOf } from '../../api/errors';
import { ErrorNote } from '../ErrorNote';
import { alpha, candleOf, INTERVALS, parseLiveCandle, precisionFor, quoteRank, toBars, toLines, volumeOf, type Bar, type IndicatorLines, type Interval } from './candleData';

const CoinCandles = graphql(`
  query CoinCandles($coin: String!, $interval: String!, $first: Int!, $after: String) {
    candles(coin: $coin, interval: $interval, first: $first, after: $after) {
      pageInfo {
        hasNextPage
        endCursor
      }
      nodes {
        openTime
        open
        high
        low
        close
        volume
      }
    }
  }
`);

const CoinIndicators = graphql(`
  query CoinIndicators($coin: String!, $interval: String!, $first: Int!, $after: String) {
    indicators(coin: $coin, interval: $interval, first: $first, after: $after) {
      pageInfo {
        hasNextPage
        endCursor
      }
      nodes {
        openTime
        sma20
        ema20
        rsi14
        macd
        macdSignal
        macdHistogram
        bollingerMid
        bollingerUpper
        bollingerLower
      }
    }
  }
`);

const CoinLiveCandles = graphql(`
  subscription CoinLiveCandles($coin: String!, $interval: String!) {
    candles(coin: $coin, interval: $interval)
  }
`);

/**
 * The most candles (and indicator points) one chart loads, in pages of 100: 500, or
 * `?candles=N` (100 to 1000) in the page's address (the benchmark draws 1,000).
 */
function candleCount(): number {
  const asked = Math.floor(Number(new URLSearchParams(window.location.search).get("candles")));
  return Number.isFinite(asked) && asked >= 100 ? Math.min(asked, 1000) : 500;
}
/** How many of the newest candles are in view at first. */
const IN_VIEW = 150;

function palette(theme: Theme) {
  const c = chartColors(theme);
  return {
    ...c,
    sma: c.line,
    ema: c.accent,
    bollinger: c.muted,
    volumeUp: alpha(c.up, 0.4),
    volumeDown: alpha(c.down, 0.4),
    histUp: alpha(c.up, 0.7),
    histDown: alpha(c.down, 0.7),
  };
}
type Palette = ReturnType<typeof palette>;

function chartOptions(c: Palette): DeepPartial<ChartOptions> {
  return {
    layout: {
      background: { type: ColorType.Solid, color: c.background },
      textColor: c.text,
      panes: { separatorColor: c.grid, separatorHoverColor: alpha(c.muted, 0.3) },
    },
    grid: { vertLines: { color: c.grid }, horzLines: { color: c.grid } },
    rightPriceScale: { borderColor: c.grid },
    timeScale: { borderColor: c.grid, timeVisible: true, secondsVisible: false },
  };
}

interface Handles {
  chart: IChartApi;
  candles: ISeriesApi<'Candlestick'>;
  volume: ISeriesApi<'Histogram'>;
  sma: ISeriesApi<'Line'>;
  ema: ISeriesApi<'Line'>;
  bbUpper: ISeriesApi<'Line'>;
  bbMid: ISeriesApi<'Line'>;
  bbLower: ISeriesApi<'Line'>;
  rsi: ISeriesApi<'Line'>;
  rsiBands: IPriceLine[];
  macd: ISeriesApi<'Line'>;
  signal: ISeriesApi<'Line'>;
  histogram: ISeriesApi<'Histogram'>;
}

function paint(h: Handles, c: Palette) {
  h.chart.applyOptions(chartOptions(c));
  h.candles.applyOptions({ upColor: c.up, downColor: c.down, wickUpColor: c.up, wickDownColor: c.down, borderVisible: false });
  h.sma.applyOptions({ color: c.sma });
  h.ema.applyOptions({ color: c.ema });
  for (const line of [h.bbUpper, h.bbMid, h.bbLower]) line.applyOptions({ color: c.bollinger });
  h.rsi.applyOptions({ color: c.accent });
  for (const band of h.rsiBands) band.applyOptions({ color: c.muted });
  h.macd.applyOptions({ color: c.accent });
  h.signal.applyOptions({ color: c.line });
}

function histogramOf(points: IndicatorLines['histogram'], c: Palette) {
  return points.map((p) => ({ time: p.time, value: p.value, color: p.value >= 0 ? c.histUp : c.histDown }));
}

const NO_LINES: IndicatorLines = { sma: [], ema: [], bbUpper: [], bbMid: [], bbLower: [], rsi: [], macd: [], signal: [], histogram: [] };

export interface Overlays {
  sma: boolean;
  ema: boolean;
  bollinger: boolean;
}

export function CandleChart({ coin, quote }: { coin: string; quote?: string }) {
  const [interval, setChartInterval] = useState<Interval>('1h');
  const [overlays, setOverlays] = useState<Overlays>({ sma: true, ema: false, bollinger: false });
  const theme = useTheme();
  const colors = useMemo(() => palette(theme), [theme]);
  const client = useClient();

  const container = useRef<HTMLDivElement>(null);
  const [handles, setHandles] = useState<Handles>();
  const [count, setCount] = useState(0);
  const colorsRef = useRef(colors);
  const barsRef = useRef<Bar[]>([]);
  const histogramRef = useRef<IndicatorLines['histogram']>([]);
  const loadedRef = useRef(false);
  const pendingRef = useRef<Bar[]>([]);
  const applyRef = useRef<(bar: Bar) => void>(undefined);
  const markedRef = useRef(false);

  const [total] = useState(candleCount);
  const [generation, setGeneration] = useState(0);
  const candles = usePaged(CoinCandles, { coin, interval }, (d) => d.candles, total);
  const indicators = usePaged(CoinIndicators, { coin, interval }, (d) => d.indicators, total, generation);
  const refetchRef = useRef(() => setGeneration((g) => g + 1));

  const bars = useMemo(() => (candles.nodes ? toBars(candles.nodes) : undefined), [candles.nodes]);
  const lines = useMemo(() => (indicators.nodes ? toLines(indicators.nodes) : undefined), [indicators.nodes]);

  // The chart, once per mount.
  useEffect(() => {
    const el = container.current;
    if (!el) return;
    const c = colorsRef.current;
    const chart = createChart(el, { autoSize: true, ...chartOptions(c) });
    const candleSeries = chart.addSeries(CandlestickSeries, { upColor: c.up, downColor: c.down, wickUpColor: c.up, wickDownColor: c.down, borderVisible: false }, 0);
    candleSeries.priceScale().applyOptions({ scaleMargins: { top: 0.06, bottom: 0.26 } });
    const volume = chart.addSeries(HistogramSeries, { priceScaleId: 'volume', priceFormat: { type: 'volume' }, lastValueVisible: false, priceLineVisible: false }, 0);
    chart.priceScale('volume', 0).applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    const line = (color: string, pane: number, title = '', visible = true) =>
      chart.addSeries(LineSeries, { color, lineWidth: 1, priceLineVisible: false, lastValueVisible: title !== '', crosshairMarkerVisible: false, title, visible }, pane);
    const rsi = chart.addSeries(
      LineSeries,
      { color: c.accent, lineWidth: 1, priceLineVisible: false, title: 'RSI 14', autoscaleInfoProvider: () => ({ priceRange: { minValue: 0, maxValue: 100 } }) },
      1,
    );
    const rsiBands = [70, 30].map((price) => rsi.createPriceLine({ price, color: c.muted, lineWidth: 1, lineStyle: LineStyle.Dashed, axisLabelVisible: false, title: '' }));
    const histogram = chart.addSeries(HistogramSeries, { priceLineVisible: false, lastValueVisible: false }, 2);
    const next: Handles = {
      chart,
      candles: candleSeries,
      volume,
      sma: line(c.sma, 0),
      ema: line(c.ema, 0, '', false),
      bbUpper: line(c.bollinger, 0, '', false),
      bbMid: line(c.bollinger, 0, '', false),
      bbLower: line(c.bollinger, 0, '', false),
      rsi,
      rsiBands,
      histogram,
      macd: line(c.accent, 2, 'MACD'),
      signal: line(c.line, 2, 'Signal'),
    };
    const panes = chart.panes();
    panes[0]?.setStretchFactor(3);
    panes[1]?.setStretchFactor(1);
    panes[2]?.setStretchFactor(1);
    setHandles(next);
    return () => {
      setHandles(undefined);
      chart.remove();
    };
  }, []);

  // Colours follow the theme.
  useEffect(() => {
    colorsRef.current = colors;
    if (!handles) return;
    paint(handles, colors);
    handles.volume.setData(barsRef.current.map((b) => volumeOf(b, colors.volumeUp, colors.volumeDown)));
    handles.histogram.setData(histogramOf(histogramRef.current, colors));
  }, [handles, colors]);

  // The candles loaded.
  useEffect(() => {
    if (!handles) return;
    const c = colorsRef.current;
    const list = bars ?? [];
    barsRef.current = [...list];
    loadedRef.current = bars !== undefined;
    if (bars && !markedRef.current) performance.mark('candles-data');
    handles.candles.setData(list.map(candleOf));
    handles.volume.setData(list.map((b) => volumeOf(b, c.volumeUp, c.volumeDown)));
    const precision = precisionFor(list[list.length - 1]?.close);
    handles.candles.applyOptions({ priceFormat: { type: 'price', precision, minMove: 10 ** -precision } });
    setCount(list.length);
    if (!bars) return;
    const pending = pendingRef.current;
    pendingRef.current = [];
    for (const bar of pending) applyRef.current?.(bar);
    const shown = barsRef.current.length;
    if (shown > IN_VIEW) handles.chart.timeScale().setVisibleLogicalRange({ from: shown - IN_VIEW, to: shown + 2 });
    else handles.chart.timeScale().fitContent();
    if (!markedRef.current) {
      markedRef.current = true;
      requestAnimationFrame(() => performance.mark('candles-rendered'));
    }
  }, [handles, bars]);

  // The indicators loaded.
  useEffect(() => {
    if (!handles) return;
    const l = lines ?? NO_LINES;
    handles.sma.setData(l.sma);
    handles.ema.setData(l.ema);
    handles.bbUpper.setData(l.bbUpper);
    handles.bbMid.setData(l.bbMid);
    handles.bbLower.setData(l.bbLower);
    handles.rsi.setData(l.rsi);
    handles.macd.setData(l.macd);
    handles.signal.setData(l.signal);
    histogramRef.current = l.histogram;
    handles.histogram.setData(histogramOf(l.histogram, colorsRef.current));
  }, [handles, lines]);

  useEffect(() => {
    if (!handles) return;
    handles.sma.applyOptions({ visible: overlays.sma });
    handles.ema.applyOptions({ visible: overlays.ema });
    for (const line of [handles.bbUpper, handles.bbMid, handles.bbLower]) line.applyOptions({ visible: overlays.bollinger });
  }, [handles, overlays]);

  // The open candle, live: every change the API sends moves the last candle or adds one.
  useEffect(() => {
    if (!handles) return;
    let best = quote ? quoteRank(quote) : Number.POSITIVE_INFINITY;
    pendingRef.current = [];
    const apply = (bar: Bar) => {
      const list = barsRef.current;
      const last = list[list.length - 1];
      if (last && bar.time < last.time) return;
      const c = colorsRef.current;
      handles.candles.update(candleOf(bar));
      handles.volume.update(volumeOf(bar, c.volumeUp, c.volumeDown));
      if (last && bar.time === last.time) {
        list[list.length - 1] = bar;
      } else {
        list.push(bar);
        setCount(list.length);
        // The candle before closed: its indicators are in now.
        if (last) {
          // The closed candle's indicators are folded a moment later: read again then.
          for (const ms of [1_500, 5_000]) setTimeout(() => refetchRef.current(), ms);
        }
      }
    };
    applyRef.current = apply;
    const subscription = client.subscription(CoinLiveCandles, { coin, interval }).subscribe((result) => {
      const live = parseLiveCandle(result.data?.candles);
      if (!live || live.coin !== coin || live.interval !== interval) return;
      const rank = quoteRank(live.quote);
      if (rank > best) return;
      best = rank;
      if (loadedRef.current) apply(live.bar);
      else pendingRef.current.push(live.bar);
    });
    return () => {
      subscription.unsubscribe();
      if (applyRef.current === apply) applyRef.current = undefined;
    };
  }, [client, handles, coin, interval, quote]);

  const toggle = (key: keyof Overlays) => (event: React.ChangeEvent<HTMLInputElement>) => setOverlays((o) => ({ ...o, [key]: event.target.checked }));
  const problem = problemOf(candles.error);
  const last = barsRef.current[barsRef.current.length - 1];

  return (
    <section className="card stack" aria-labelledby="chart-title">
      <div className="row between">
        <h2 id="chart-title">
          {coin} price <span className="muted">({interval} candles, UTC)</span>
        </h2>
        <div className="tabs" role="group" aria-label="Candle interval">
          {INTERVALS.map((i) => (
            <button key={i} type="button" aria-pressed={interval === i} onClick={() => setChartInterval(i)}>
              {i}
            </button>
          ))}
        </div>
      </div>
      <fieldset className="overlays row">
        <legend className="sr-only">Overlays</legend>
        <label className="check">
          <input type="checkbox" checked={overlays.sma} onChange={toggle('sma')} />
          <span className="swatch" style={{ background: colors.sma }} aria-hidden="true" /> SMA 20
        </label>
        <label className="check">
          <input type="checkbox" checked={overlays.ema} onChange={toggle('ema')} />
          <span className="swatch" style={{ background: colors.ema }} aria-hidden="true" /> EMA 20
        </label>
        <label className="check">
          <input type="checkbox" checked={overlays.bollinger} onChange={toggle('bollinger')} />
          <span className="swatch" style={{ background: colors.bollinger }} aria-hidden="true" /> Bollinger bands (20, 2)
        </label>
        <span className="muted panes-note">Below: RSI 14 (30/70 dashed), then MACD (12, 26, 9) with its signal and histogram.</span>
      </fieldset>
      <ErrorNote problem={problem} />
      <div className="candle-frame">
        <div ref={container} className="candle-chart" data-testid="candle-chart" data-candles={count} data-interval={interval} />
        {!bars && !problem && candles.fetching && <p className="chart-note muted">Loading candles…</p>}
        {bars && count === 0 && (
          <p className="chart-note muted" data-testid="no-candles">
            No candles yet for {coin} at {interval}: they appear here as prices arrive.
          </p>
        )}
      </div>
      <p className="sr-only">
        {count > 0 && last ? `${count} candles of ${interval}; the latest closes at ${last.close}.` : ''}
      </p>
    </section>
  );
}
