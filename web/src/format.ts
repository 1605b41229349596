// Display only: amounts arrive as exact decimal strings and are never computed with
// here; they are rounded for the eye.

export function parseDecimal(value: string | null | undefined): number | undefined {
  if (value === null || value === undefined || value === '') return undefined;
  const number = Number(value);
  return Number.isFinite(number) ? number : undefined;
}

/** A price: more digits for small ones (DOGE at 0.0812 keeps its 4 digits). */
export function price(value: string | null | undefined, currency = 'USD'): string {
  const number = parseDecimal(value);
  if (number === undefined) return '—';
  const digits = Math.abs(number) >= 1000 ? 2 : Math.abs(number) >= 1 ? 2 : Math.abs(number) >= 0.01 ? 4 : 6;
  return `${new Intl.NumberFormat('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(number)} ${currency}`;
}

export function money(value: string | null | undefined, currency = 'USD'): string {
  const number = parseDecimal(value);
  if (number === undefined) return '—';
  return `${new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(number)} ${currency}`;
}

export function quantity(value: string | null | undefined): string {
  const number = parseDecimal(value);
  if (number === undefined) return '—';
  return new Intl.NumberFormat('en-US', { maximumFractionDigits: 8 }).format(number);
}

/** 1.2 B, 340 M: for volumes and market caps. */
export function compact(value: string | null | undefined): string {
  const number = parseDecimal(value);
  if (number === undefined) return '—';
  return new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 2 }).format(number);
}

/** A signed percentage: +2.31 %. */
export function percent(value: string | number | null | undefined): string {
  const number = typeof value === 'number' ? value : parseDecimal(value);
  if (number === undefined || !Number.isFinite(number)) return '—';
  const sign = number > 0 ? '+' : '';
  return `${sign}${number.toFixed(2)} %`;
}

/** Which way a signed figure points, for colour. */
export function direction(value: string | number | null | undefined): 'up' | 'down' | 'flat' {
  const number = typeof value === 'number' ? value : parseDecimal(value);
  if (number === undefined || number === 0) return 'flat';
  return number > 0 ? 'up' : 'down';
}

/** A UTC time as people read it, with its zone said. */
export function utc(value: string | null | undefined): string {
  if (!value) return '—';
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return '—';
  return `${date.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}
