/**
 * Pure helpers that decide what a set of measurements says: GNU time's `-v` report, medians,
 * ratios and the summary of one tool's samples. No I/O here, so the numbers' meaning is easy to check.
 */

/** One timed run of one tool. */
export interface Sample {
  wallMs: number;
  /** User + system CPU time of the run and its children (GNU time); steadier than wall time on a busy machine. */
  cpuMs: number;
  /** Peak resident set of the largest process in the run (GNU time's "Maximum resident set size"). */
  maxRssKb: number;
  /** Bytes the client sent to the registry through the counting proxy (HTTP headers included). */
  bytesUp?: number;
  /** Bytes the registry sent back through the proxy. */
  bytesDown?: number;
  /** Requests in the registry's access log during the run. */
  requests?: number;
}

export interface Summary {
  runs: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
  medianCpuMs: number;
  medianMaxRssKb: number;
  medianBytesUp?: number;
  medianBytesDown?: number;
  medianRequests?: number;
  samplesMs: number[];
}

/** The middle value (mean of the two middle values for an even count); NaN for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function optionalMedian(samples: readonly Sample[], pick: (s: Sample) => number | undefined): number | undefined {
  const values = samples.map(pick).filter((v): v is number => v !== undefined);
  return values.length === samples.length && values.length > 0 ? median(values) : undefined;
}

export function summarize(samples: readonly Sample[]): Summary {
  const ms = samples.map((s) => s.wallMs);
  const out: Summary = {
    runs: samples.length,
    medianMs: median(ms),
    minMs: Math.min(...ms),
    maxMs: Math.max(...ms),
    medianCpuMs: median(samples.map((s) => s.cpuMs)),
    medianMaxRssKb: median(samples.map((s) => s.maxRssKb)),
    samplesMs: ms.map((v) => Math.round(v)),
  };
  const up = optionalMedian(samples, (s) => s.bytesUp);
  const down = optionalMedian(samples, (s) => s.bytesDown);
  const req = optionalMedian(samples, (s) => s.requests);
  if (up !== undefined) out.medianBytesUp = up;
  if (down !== undefined) out.medianBytesDown = down;
  if (req !== undefined) out.medianRequests = req;
  return out;
}

/** stowage / peer; below 1 means stowage took less time. undefined when either side is missing. */
export function ratio(stowageMs: number | undefined, peerMs: number | undefined): number | undefined {
  if (stowageMs === undefined || peerMs === undefined || !(peerMs > 0)) return undefined;
  return stowageMs / peerMs;
}

/**
 * GNU time's `-v` report → peak RSS and exit status. Wall time is measured by the harness itself
 * (time's own clock prints only centiseconds).
 */
export function parseGnuTimeVerbose(text: string): { maxRssKb: number; cpuMs: number; exitStatus: number | undefined } {
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(text);
  const user = /User time \(seconds\): ([\d.]+)/.exec(text);
  const sys = /System time \(seconds\): ([\d.]+)/.exec(text);
  const exit = /Exit status: (\d+)/.exec(text);
  return {
    maxRssKb: rss ? Number(rss[1]) : Number.NaN,
    cpuMs: user && sys ? Math.round((Number(user[1]) + Number(sys[1])) * 1000) : Number.NaN,
    exitStatus: exit ? Number(exit[1]) : undefined,
  };
}

export function formatMs(ms: number | undefined): string {
  if (ms === undefined || Number.isNaN(ms)) return '—';
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}

export function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined || Number.isNaN(bytes)) return '—';
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}

export function formatRss(kb: number | undefined): string {
  return kb === undefined || Number.isNaN(kb) ? '—' : formatBytes(kb * 1024);
}
