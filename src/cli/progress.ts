/**
 * Progress output for `stowage build`: a live view on a terminal, plain prefixed lines in CI or
 * when piped, or one JSON event per line (`--progress=json`) for other tools. Output lines of RUN
 * steps are shown in plain mode and kept as a tail in the live view.
 */
import type { BuildEvent } from '../engine/instructions/types.js';

export type ProgressMode = 'tty' | 'plain' | 'json';

export type ImageStatus = 'succeeded' | 'failed' | 'skipped' | 'not-started';

export interface SummaryRow {
  image: string;
  status: ImageStatus;
  digest?: string;
  size?: number;
  seconds?: number;
  layers?: number;
  /** Steps restored from the step cache. */
  cacheHits?: number;
  /** The image was unchanged since a cached build and reused whole. */
  reused?: boolean;
  error?: string;
}

export interface ProgressReporter {
  info(message: string): void;
  warn(message: string): void;
  imageStart(image: string): void;
  event(image: string, event: BuildEvent): void;
  phase(image: string, text: string): void;
  /** Blob bytes this image's push sent (called per piece; the live view shows the running total). */
  bytesSent(image: string, bytes: number): void;
  imageDone(row: SummaryRow): void;
  /** Ends the live view; prints the summary table. */
  finish(rows: readonly SummaryRow[]): void;
}

export interface ProgressOptions {
  mode: ProgressMode;
  out: NodeJS.WritableStream;
  now?: () => number;
}

export function chooseProgressMode(flag: string | undefined, env: Record<string, string | undefined>, isTTY: boolean): ProgressMode {
  if (flag === 'json' || flag === 'plain' || flag === 'tty') return flag;
  if (env.CI === 'true' || env.CI === '1' || !isTTY) return 'plain';
  return 'tty';
}

export function formatBytes(n: number | undefined): string {
  if (n === undefined) return '-';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function renderSummaryTable(rows: readonly SummaryRow[]): string {
  const header = ['IMAGE', 'STATUS', 'DIGEST', 'SIZE', 'TIME', 'CACHE'];
  const body = rows.map((r) => [
    r.image,
    r.status,
    r.digest ? r.digest.slice(0, 'sha256:'.length + 12) : '-',
    formatBytes(r.size),
    r.seconds === undefined ? '-' : `${r.seconds.toFixed(1)}s`,
    cacheCell(r),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), ...body.map(line)].join('\n') + '\n';
}

/** `reused` (nothing ran), `N hit(s)` (steps restored from the step cache) or `-`. */
function cacheCell(r: SummaryRow): string {
  if (r.reused) return `reused${r.cacheHits ? ` (${r.cacheHits} steps)` : ''}`;
  if (r.cacheHits) return `${r.cacheHits} hit${r.cacheHits === 1 ? '' : 's'}`;
  return '-';
}

function oneLine(s: string, max = 80): string {
  const flat = s.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 3)}...` : flat;
}

export function createProgress(options: ProgressOptions): ProgressReporter {
  switch (options.mode) {
    case 'json':
      return jsonProgress(options);
    case 'plain':
      return plainProgress(options);
    case 'tty':
      return ttyProgress(options);
  }
}

function jsonProgress({ out, now = Date.now }: ProgressOptions): ProgressReporter {
  const emit = (o: Record<string, unknown>) => out.write(`${JSON.stringify({ time: new Date(now()).toISOString(), ...o })}\n`);
  return {
    info: (message) => emit({ type: 'info', message }),
    warn: (message) => emit({ type: 'warning', message }),
    imageStart: (image) => emit({ type: 'image-start', image }),
    event: (image, e) => {
      if (e.type === 'output') emit({ type: 'output', image, stage: e.stage, line: e.line, stream: e.stream, text: e.chunk.toString('utf8') });
      else if (e.type === 'warning') emit({ type: 'warning', image, message: e.diagnostic.message, code: e.diagnostic.code });
      else emit({ ...e, image });
    },
    phase: (image, text) => emit({ type: 'phase', image, text }),
    // Per-chunk events would drown the stream; the total is in the metadata file's push report.
    bytesSent: () => {},
    imageDone: (row) => emit({ type: 'image-done', ...row }),
    finish: (rows) => emit({ type: 'summary', images: rows }),
  };
}

function plainProgress({ out }: ProgressOptions): ProgressReporter {
  const partial = new Map<string, string>();
  const writeLines = (image: string, text: string) => {
    const buffered = (partial.get(image) ?? '') + text;
    const lines = buffered.split('\n');
    partial.set(image, lines.pop() ?? '');
    for (const l of lines) out.write(`[${image}]   | ${l}\n`);
  };
  return {
    info: (m) => out.write(`stowage: ${m}\n`),
    warn: (m) => out.write(`stowage: warning: ${m}\n`),
    imageStart: (image) => out.write(`[${image}] started\n`),
    event: (image, e) => {
      switch (e.type) {
        case 'stage-start':
          out.write(`[${image}] stage ${e.name ?? e.stage} FROM ${e.base}\n`);
          break;
        case 'step-start':
          out.write(`[${image}] ${e.line}: ${oneLine(e.text)}\n`);
          break;
        case 'output':
          writeLines(image, e.chunk.toString('utf8'));
          break;
        case 'warning':
          out.write(`[${image}] warning: ${e.diagnostic.file ?? ''}${e.diagnostic.range ? `:${e.diagnostic.range.start.line}` : ''} ${e.diagnostic.message}\n`);
          break;
        case 'cache-hit':
          out.write(`[${image}] ${e.line}: CACHED\n`);
          break;
        case 'step-done':
        case 'stage-done':
          break;
      }
    },
    phase: (image, text) => out.write(`[${image}] ${text}\n`),
    bytesSent: () => {},
    imageDone: (row) =>
      out.write(`[${image(row)}] ${row.status}${row.digest ? ` ${row.digest}` : ''}${row.error ? `: ${row.error}` : ''}${row.seconds !== undefined ? ` (${row.seconds.toFixed(1)}s)` : ''}\n`),
    finish: (rows) => out.write(`\n${renderSummaryTable(rows)}`),
  };
}

function image(row: SummaryRow): string {
  return row.image;
}

/** One line per image, redrawn in place at most 10 times a second. */
function ttyProgress({ out, now = Date.now }: ProgressOptions): ProgressReporter {
  const order: string[] = [];
  const state = new Map<string, { text: string; start: number; layers: number; sent: number; done?: SummaryRow }>();
  const logs: string[] = [];
  let drawn = 0;
  let timer: NodeJS.Timeout | undefined;
  const columns = (): number => (out as NodeJS.WriteStream).columns ?? 100;
  const draw = () => {
    const lines: string[] = [];
    for (const name of order) {
      const s = state.get(name)!;
      const secs = ((s.done?.seconds ?? (now() - s.start) / 1000)).toFixed(1);
      const mark = s.done ? (s.done.status === 'succeeded' ? '✔' : s.done.status === 'failed' ? '✘' : '-') : '•';
      const sent = s.sent > 0 ? `  ${formatBytes(s.sent)} sent` : '';
      lines.push(`${mark} ${name}  ${secs}s  ${s.layers} layer(s)${sent}  ${s.done ? s.done.status : s.text}`.slice(0, columns() - 1));
    }
    let chunk = drawn > 0 ? `\x1b[${drawn}F\x1b[J` : '';
    for (const l of logs.splice(0)) chunk += `${l}\n`;
    chunk += lines.map((l) => `${l}\n`).join('');
    out.write(chunk);
    drawn = lines.length;
  };
  const schedule = () => {
    timer ??= setTimeout(() => {
      timer = undefined;
      draw();
    }, 100);
  };
  const ensure = (name: string) => {
    if (!state.has(name)) {
      order.push(name);
      state.set(name, { text: 'waiting', start: now(), layers: 0, sent: 0 });
    }
    return state.get(name)!;
  };
  return {
    info: (m) => {
      logs.push(`stowage: ${m}`);
      schedule();
    },
    warn: (m) => {
      logs.push(`stowage: warning: ${m}`);
      schedule();
    },
    imageStart: (name) => {
      const s = ensure(name);
      s.start = now();
      s.text = 'starting';
      schedule();
    },
    event: (name, e) => {
      const s = ensure(name);
      if (e.type === 'step-start') s.text = `${e.line}: ${oneLine(e.text, 60)}`;
      if (e.type === 'step-done' && e.layer) s.layers++;
      if (e.type === 'warning') logs.push(`[${name}] warning: ${e.diagnostic.message}`);
      schedule();
    },
    phase: (name, text) => {
      ensure(name).text = text;
      schedule();
    },
    bytesSent: (name, bytes) => {
      ensure(name).sent += bytes;
      schedule();
    },
    imageDone: (row) => {
      ensure(row.image).done = row;
      if (row.error) logs.push(`[${row.image}] ${row.status}: ${row.error}`);
      schedule();
    },
    finish: (rows) => {
      if (timer) clearTimeout(timer);
      timer = undefined;
      draw();
      out.write(`\n${renderSummaryTable(rows)}`);
    },
  };
}
