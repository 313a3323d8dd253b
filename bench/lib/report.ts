/**
 * The results file and its markdown table. Pure: rows and metadata in, text out.
 */
import { medianOf, type Side, type WorkloadRow } from './context.js';
import { formatBytes, formatMs, formatRss, ratio } from './stats.js';

export interface BenchMeta {
  date: string;
  commit: string;
  /** Uncommitted changes in src/ when the bench ran (the numbers then belong to no commit). */
  dirty: boolean;
  quick: boolean;
  runs: number;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; kernel: string; tmpfs: boolean };
  versions: Record<string, string>;
  durationSeconds?: number;
}

export interface BenchResults {
  meta: BenchMeta;
  rows: WorkloadRow[];
}

function cellTime(side: Side | undefined): string {
  if (!side) return '—';
  if (side.status === 'unavailable') return 'unavailable';
  return formatMs(side.summary.medianMs);
}

function cellCpu(side: Side | undefined): string {
  return side?.status === 'ok' ? formatMs(side.summary.medianCpuMs) : '—';
}

function cellRss(side: Side | undefined): string {
  return side?.status === 'ok' ? formatRss(side.summary.medianMaxRssKb) : '—';
}

function cellWire(side: Side | undefined, direction: 'up' | 'down'): string {
  if (side?.status !== 'ok') return '—';
  return formatBytes(direction === 'up' ? side.summary.medianBytesUp : side.summary.medianBytesDown);
}

function cellRequests(side: Side | undefined): string {
  return side?.status === 'ok' && side.summary.medianRequests !== undefined ? String(side.summary.medianRequests) : '—';
}

function pair(a: string, b: string): string {
  return a === '—' && b === '—' ? '—' : `${a} / ${b}`;
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function renderMarkdown(results: BenchResults): string {
  const { meta, rows } = results;
  const lines: string[] = [];
  lines.push(
    `stowage ${meta.commit}${meta.dirty ? ' (+uncommitted changes)' : ''}, ${meta.date}, ${meta.quick ? 'quick' : 'full'} run, ` +
      `wall-clock median of ${meta.runs} run(s) each, interleaved (CPU = user+sys of the tool and its children); ${meta.machine.cpus} × ${meta.machine.cpuModel}, ${meta.machine.memoryGiB} GiB, ` +
      `Linux ${meta.machine.kernel}, work dirs on ${meta.machine.tmpfs ? 'tmpfs' : 'disk'}.`,
  );
  lines.push('');
  lines.push('| workload | stowage | peer | peer median | stowage/peer | CPU stowage / peer | peak RSS stowage / peer | bytes on the wire stowage / peer | requests stowage / peer | baseline (no builder) |');
  lines.push('|---|---:|---|---:|---:|---:|---:|---:|---:|---|');
  for (const row of rows) {
    const r = ratio(medianOf(row.stowage), medianOf(row.peer));
    const direction = row.wire ?? 'up';
    const base =
      row.yardstick === undefined ? '—' : row.yardstick.status === 'ok' ? `${row.yardstick.tool}: ${formatMs(row.yardstick.summary.medianMs)}` : `${row.yardstick.tool}: unavailable`;
    lines.push(
      '| ' +
        [
          row.title,
          cellTime(row.stowage),
          row.peer ? row.peer.tool : '—',
          cellTime(row.peer),
          r === undefined ? '—' : `${r.toFixed(2)}×`,
          pair(cellCpu(row.stowage), cellCpu(row.peer)),
          pair(cellRss(row.stowage), cellRss(row.peer)),
          direction === 'down' ? `${pair(cellWire(row.stowage, 'down'), cellWire(row.peer, 'down'))} (down)` : pair(cellWire(row.stowage, 'up'), cellWire(row.peer, 'up')),
          pair(cellRequests(row.stowage), cellRequests(row.peer)),
          base,
        ]
          .map(escapeCell)
          .join(' | ') +
        ' |',
    );
  }
  const notes: string[] = [];
  for (const row of rows) {
    for (const side of [row.stowage, row.peer, row.yardstick]) {
      if (side?.status === 'unavailable') notes.push(`- ${row.title} — ${side.tool} unavailable: ${side.reason}`);
    }
    for (const n of row.notes) notes.push(`- ${row.title}: ${n}`);
  }
  if (notes.length > 0) {
    lines.push('');
    lines.push(...notes.map(escapeCell));
  }
  return lines.join('\n') + '\n';
}
