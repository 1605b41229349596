// The candle chart's data, as lightweight-charts wants it: ascending, one point per
// time, times in UTC seconds. Only types come from lightweight-charts here, so this
// file adds nothing to a bundle that imports it.
import type { CandlestickData, HistogramData, LineData, UTCTimestamp } from 'lightweight-charts';

export const INTERVALS = ['1m', '5m', '1h', '1d'] as const;
export type Interval = (typeof INTERVALS)[number];

export interface RawCandle {
  openTime: string;
  open: string;
  high: string;
  low: string;
  close: string;
  volume: string;
}

export interface RawIndicator {
  openTime: string;
  sma20?: number | null;
  ema20?: number | null;
  rsi14?: number | null;
  macd?: number | null;
  macdSignal?: number | null;
  macdHistogram?: number | null;
  bollingerMid?: number | null;
  bollingerUpper?: number | null;
  bollingerLower?: number | null;
}

/** A candle ready to draw, with its volume. */
export interface Bar {
  time: UTCTimestamp;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

/** An ISO time in UTC as the chart's seconds; undefined when it does not parse. */
export function toTime(iso: string): UTCTimestamp | undefined {
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? (Math.floor(ms / 1000) as UTCTimestamp) : undefined;
}

function num(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value !== 'string' || value === '') return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

export function toBar(candle: RawCandle): Bar | undefined {
  const time = toTime(candle.openTime);
  const open = num(candle.open);
  const high = num(candle.high);
  const low = num(candle.low);
  const close = num(candle.close);
  if (time === undefined || open === undefined || high === undefined || low === undefined || close === undefined) return undefined;
  return { time, open, high, low, close, volume: num(candle.volume) ?? 0 };
}

/** The API's newest-first candles, oldest first and one per time. */
export function toBars(newestFirst: readonly RawCandle[]): Bar[] {
  const bars: Bar[] = [];
  for (let i = newestFirst.length - 1; i >= 0; i--) {
    const candle = newestFirst[i];
    const bar = candle && toBar(candle);
    if (!bar) continue;
    const last = bars[bars.length - 1];
    if (last && bar.time <= last.time) {
      if (bar.time === last.time) bars[bars.length - 1] = bar;
      continue;
    }
    bars.push(bar);
  }
  return bars;
}

export function candleOf(bar: Bar): CandlestickData<UTCTimestamp> {
  return { time: bar.time, open: bar.open, high: bar.high, low: bar.low, close: bar.close };
}

export function volumeOf(bar: Bar, up: string, down: string): HistogramData<UTCTimestamp> {
  return { time: bar.time, value: bar.volume, color: bar.close >= bar.open ? up : down };
}

/**
 * A candle the live subscription sent: `{coin, quote, interval, candle: {open_time,
 * open, high, low, close, volume, trades}}` (decimals as strings).
 */
export interface LiveCandle {
  coin: string;
  quote: string;
  interval: string;
  bar: Bar;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function parseLiveCandle(payload: unknown): LiveCandle | undefined {
  if (!isRecord(payload) || !isRecord(payload.candle)) return undefined;
  const { coin, quote, interval, candle } = payload;
  if (typeof coin !== 'string' || typeof quote !== 'string' || typeof interval !== 'string') return undefined;
  const openTime = candle.open_time ?? candle.openTime;
  if (typeof openTime !== 'string') return undefined;
  const time = toTime(openTime);
  const open = num(candle.open);
  const high = num(candle.high);
  const low = num(candle.low);
  const close = num(candle.close);
  if (time === undefined || open === undefined || high === undefined || low === undefined || close === undefined) return undefined;
  return { coin, quote, interval, bar: { time, open, high, low, close, volume: num(candle.volume) ?? 0 } };
}

/** Which dollar quote the API reads a series in: USD first, then USDT, then USDC. */
export function quoteRank(quote: string): number {
  const rank = ['USD', 'USDT', 'USDC'].indexOf(quote);
  return rank < 0 ? Number.POSITIVE_INFINITY : rank;
}

export interface IndicatorLines {
  sma: LineData<UTCTimestamp>[];
  ema: LineData<UTCTimestamp>[];
  bbUpper: LineData<UTCTimestamp>[];
  bbMid: LineData<UTCTimestamp>[];
  bbLower: LineData<UTCTimestamp>[];
  rsi: LineData<UTCTimestamp>[];
  macd: LineData<UTCTimestamp>[];
  signal: LineData<UTCTimestamp>[];
  histogram: { time: UTCTimestamp; value: number }[];
}

/** The API's newest-first indicator points as lines, oldest first (nulls left out). */
export function toLines(newestFirst: readonly RawIndicator[]): IndicatorLines {
  const lines: IndicatorLines = { sma: [], ema: [], bbUpper: [], bbMid: [], bbLower: [], rsi: [], macd: [], signal: [], histogram: [] };
  let previous: number | undefined;
  for (let i = newestFirst.length - 1; i >= 0; i--) {
    const point = newestFirst[i];
    if (!point) continue;
    const time = toTime(point.openTime);
    if (time === undefined || (previous !== undefined && time <= previous)) continue;
    previous = time;
    const push = (line: { time: UTCTimestamp; value: number }[], value: number | null | undefined) => {
      if (typeof value === 'number' && Number.isFinite(value)) line.push({ time, value });
    };
    push(lines.sma, point.sma20);
    push(lines.ema, point.ema20);
    push(lines.bbUpper, point.bollingerUpper);
    push(lines.bbMid, point.bollingerMid);
    push(lines.bbLower, point.bollingerLower);
    push(lines.rsi, point.rsi14);
    push(lines.macd, point.macd);
    push(lines.signal, point.macdSignal);
    push(lines.histogram, point.macdHistogram);
  }
  return lines;
}

/** Digits a price needs: 2 for dollars, more for coins worth cents. */
export function precisionFor(price: number | undefined): number {
  if (price === undefined) return 2;
  const abs = Math.abs(price);
  return abs >= 1 ? 2 : abs >= 0.01 ? 4 : abs >= 0.0001 ? 6 : 8;
}

/** A colour at some opacity, from `#rrggbb`. */
export function alpha(hex: string, opacity: number): string {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
  if (!m) return hex;
  const [r, g, b] = [m[1], m[2], m[3]].map((h) => parseInt(h ?? '0', 16));
  return `rgba(${r}, ${g}, ${b}, ${opacity})`;
}
