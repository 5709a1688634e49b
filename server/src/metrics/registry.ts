/**
 * A small Prometheus registry: counters, gauges and histograms with fixed label names, rendered in
 * the text exposition format (version 0.0.4) that every Prometheus-compatible scraper reads.
 *
 * Hand-written rather than `prom-client`: Baton needs three metric kinds and one output format, and
 * this is ~150 lines with no default process metrics, no global registry and no dependency. Updates
 * are a Map lookup and an addition, cheap enough for the Lease stream's hot path.
 */

type LabelValues<L extends string> = { readonly [K in L]: string };

interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  /** Called before each render, e.g. to read a gauge's value from somewhere. */
  collect?(): Promise<void> | void;
  lines(): string[];
}

/** `\`, `"` and newlines escaped, as label values must be. */
function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatNumber(value: number): string {
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  if (Number.isNaN(value)) return 'NaN';
  return String(value);
}

function labelText(names: readonly string[], values: readonly string[], extra = ''): string {
  const parts = names.map((name, i) => `${name}="${escapeLabel(values[i])}"`);
  if (extra) parts.push(extra);
  return parts.length ? `{${parts.join(',')}}` : '';
}

/** Series are keyed by their label values in label-name order. */
abstract class Series<L extends string, S> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  protected readonly series = new Map<string, { values: string[]; state: S }>();

  constructor(name: string, help: string, labelNames: readonly L[]) {
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
  }

  protected entry(labels: LabelValues<L> | undefined, init: () => S): { values: string[]; state: S } {
    const values = this.labelNames.map((name) => (labels as Record<string, string>)[name] ?? '');
    const key = values.join('\u0000');
    let entry = this.series.get(key);
    if (!entry) this.series.set(key, (entry = { values, state: init() }));
    return entry;
  }

  /** Forgets every series (a gauge refilled from scratch on each collect). */
  reset(): void {
    this.series.clear();
  }
}

/** A value that only goes up (jobs enqueued, RPCs answered). */
export class Counter<L extends string = never> extends Series<L, { value: number }> implements Family {
  readonly type = 'counter';

  inc(labels?: LabelValues<L>, by = 1): void {
    this.entry(labels, () => ({ value: 0 })).state.value += by;
  }

  /** The current value of one series (for tests and logs). */
  get(labels?: LabelValues<L>): number {
    return this.entry(labels, () => ({ value: 0 })).state.value;
  }

  lines(): string[] {
    return [...this.series.values()].map(({ values, state }) => `${this.name}${labelText(this.labelNames, values)} ${formatNumber(state.value)}`);
  }
}

/** A value that goes up and down, set directly or read at scrape time by `collect`. */
export class Gauge<L extends string = never> extends Series<L, { value: number }> implements Family {
  readonly type = 'gauge';
  readonly collect?: () => Promise<void> | void;

  constructor(name: string, help: string, labelNames: readonly L[], collect?: (gauge: Gauge<L>) => Promise<void> | void) {
    super(name, help, labelNames);
    if (collect) this.collect = () => collect(this);
  }

  set(labels: LabelValues<L> | undefined, value: number): void {
    this.entry(labels, () => ({ value: 0 })).state.value = value;
  }

  lines(): string[] {
    return [...this.series.values()].map(({ values, state }) => `${this.name}${labelText(this.labelNames, values)} ${formatNumber(state.value)}`);
  }
}

/** A distribution in cumulative buckets (latencies, durations), in seconds by convention. */
export class Histogram<L extends string = never> extends Series<L, { counts: number[]; sum: number; count: number }> implements Family {
  readonly type = 'histogram';
  readonly buckets: readonly number[];

  constructor(name: string, help: string, labelNames: readonly L[], buckets: readonly number[]) {
    super(name, help, labelNames);
    this.buckets = [...buckets].sort((a, b) => a - b);
  }

  observe(labels: LabelValues<L> | undefined, value: number): void {
    const { state } = this.entry(labels, () => ({ counts: new Array(this.buckets.length).fill(0), sum: 0, count: 0 }));
    // Counts per bucket are kept non-cumulative; rendering adds them up.
    const index = this.buckets.findIndex((bound) => value <= bound);
    if (index >= 0) state.counts[index]++;
    state.sum += value;
    state.count++;
  }

  lines(): string[] {
    const out: string[] = [];
    for (const { values, state } of this.series.values()) {
      let cumulative = 0;
      this.buckets.forEach((bound, i) => {
        cumulative += state.counts[i];
        out.push(`${this.name}_bucket${labelText(this.labelNames, values, `le="${formatNumber(bound)}"`)} ${cumulative}`);
      });
      out.push(`${this.name}_bucket${labelText(this.labelNames, values, 'le="+Inf"')} ${state.count}`);
      out.push(`${this.name}_sum${labelText(this.labelNames, values)} ${formatNumber(state.sum)}`);
      out.push(`${this.name}_count${labelText(this.labelNames, values)} ${state.count}`);
    }
    return out;
  }
}

/** The metrics one broker exposes, in registration order. */
export class Registry {
  readonly #families: Family[] = [];

  counter<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return this.#add(new Counter<L>(name, help, labelNames));
  }

  gauge<L extends string = never>(name: string, help: string, labelNames: readonly L[] = [], collect?: (gauge: Gauge<L>) => Promise<void> | void): Gauge<L> {
    return this.#add(new Gauge<L>(name, help, labelNames, collect));
  }

  histogram<L extends string = never>(name: string, help: string, labelNames: readonly L[], buckets: readonly number[]): Histogram<L> {
    return this.#add(new Histogram<L>(name, help, labelNames, buckets));
  }

  #add<F extends Family>(family: F): F {
    if (this.#families.some((f) => f.name === family.name)) throw new Error(`metric ${family.name} registered twice`);
    this.#families.push(family);
    return family;
  }

  /**
   * Runs every collector, then renders the text format. A collector that fails leaves its family
   * as it was (stale but present) rather than failing the whole scrape.
   */
  async render(onCollectError?: (name: string, error: unknown) => void): Promise<string> {
    await Promise.all(
      this.#families.map(async (family) => {
        try {
          await family.collect?.();
        } catch (error) {
          onCollectError?.(family.name, error);
        }
      }),
    );
    const out: string[] = [];
    for (const family of this.#families) {
      out.push(`# HELP ${family.name} ${family.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`);
      out.push(`# TYPE ${family.name} ${family.type}`);
      out.push(...family.lines());
    }
    return out.join('\n') + '\n';
  }
}

/** The content type of the text format, for the HTTP response. */
export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
