// A small Prometheus registry: labelled counters, fixed-bucket histograms and
// values read at scrape time, rendered in the text exposition format 0.0.4.
// Hand-written rather than prom-client: a few dozen lines, no dependency in
// the single binary, and nothing of prom-client's Node process collectors.

export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export type Labels = Record<string, string>;

export interface Sample {
  labels?: Labels;
  value: number;
}

export interface Counter<L extends string> {
  inc(labels: Record<L, string>, by?: number): void;
}

export interface Histogram {
  observe(value: number): void;
}

interface Family {
  name: string;
  help: string;
  type: "counter" | "gauge" | "histogram";
  samples(): (Sample & { suffix?: string })[];
}

export interface Registry {
  /** `initial`: label sets shown as 0 before anything happened, so rate() works from the first scrape. */
  counter<L extends string>(name: string, help: string, labelNames: readonly L[], initial?: Record<L, string>[]): Counter<L>;
  /** `buckets`: upper bounds, ascending; +Inf is added. */
  histogram(name: string, help: string, buckets: readonly number[]): Histogram;
  /** A value kept elsewhere (a gauge, or a count such as the resolver's), read at each scrape. */
  collected(name: string, help: string, type: "counter" | "gauge", read: () => number | Sample[]): void;
  render(): string;
}

export function createRegistry(): Registry {
  const families: Family[] = [];
  const add = (family: Family) => {
    if (families.some((f) => f.name === family.name)) throw new Error(`metric ${family.name} is registered twice`);
    families.push(family);
  };

  return {
    counter<L extends string>(name: string, help: string, labelNames: readonly L[], initial: Record<L, string>[] = []) {
      const series = new Map<string, { labels: Labels; value: number }>();
      const inc = (labels: Record<L, string>, by = 1) => {
        const key = labelNames.map((n) => labels[n]).join("\0");
        const found = series.get(key);
        if (found) found.value += by;
        else series.set(key, { labels: { ...labels }, value: by });
      };
      for (const labels of initial) inc(labels, 0);
      add({ name, help, type: "counter", samples: () => [...series.values()] });
      return { inc };
    },

    histogram(name, help, buckets) {
      const counts = buckets.map(() => 0);
      let sum = 0;
      let count = 0;
      add({
        name,
        help,
        type: "histogram",
        samples: () => [
          ...buckets.map((le, i) => ({ suffix: "_bucket", labels: { le: String(le) }, value: counts[i]! })),
          { suffix: "_bucket", labels: { le: "+Inf" }, value: count },
          { suffix: "_sum", value: sum },
          { suffix: "_count", value: count },
        ],
      });
      return {
        observe(value) {
          sum += value;
          count++;
          buckets.forEach((le, i) => {
            if (value <= le) counts[i]!++;
          });
        },
      };
    },

    collected(name, help, type, read) {
      add({ name, help, type, samples: () => [read()].flat().map((s) => (typeof s === "number" ? { value: s } : s)) });
    },

    render() {
      const lines = families.flatMap((f) => [
        `# HELP ${f.name} ${f.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`,
        `# TYPE ${f.name} ${f.type}`,
        ...f.samples().map((s) => `${f.name}${s.suffix ?? ""}${labelText(s.labels)} ${numberText(s.value)}`),
      ]);
      return lines.join("\n") + "\n";
    },
  };
}

function labelText(labels: Labels | undefined): string {
  const entries = Object.entries(labels ?? {});
  if (entries.length === 0) return "";
  const escape = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
  return `{${entries.map(([k, v]) => `${k}="${escape(v)}"`).join(",")}}`;
}

function numberText(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (!Number.isFinite(value)) return value > 0 ? "+Inf" : "-Inf";
  return String(value);
}
