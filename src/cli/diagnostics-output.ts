/**
 * Renderers for diagnostics: human (with a code frame), JSON, SARIF 2.1.0 and GitHub Actions
 * workflow commands. Pure: sources are read through the `readSource` port.
 */
import type { Diagnostic, Severity } from '../util/errors.js';
import { assertNever } from '../util/errors.js';

export interface HumanOptions {
  color: boolean;
  /** Source text of a file, for the code frame; undefined when it cannot be read. */
  readSource: (file: string) => string | undefined;
}

const ANSI = { red: '\x1b[31m', yellow: '\x1b[33m', blue: '\x1b[34m', bold: '\x1b[1m', dim: '\x1b[2m', reset: '\x1b[0m' };

function severityColor(s: Severity): string {
  switch (s) {
    case 'error':
      return ANSI.red;
    case 'warning':
      return ANSI.yellow;
    case 'info':
      return ANSI.blue;
    default:
      return assertNever(s, 'severity');
  }
}

function where(d: Diagnostic): string {
  if (!d.file) return '';
  return d.range ? `${d.file}:${d.range.start.line}:${d.range.start.column}: ` : `${d.file}: `;
}

export function renderHuman(diags: readonly Diagnostic[], options: HumanOptions): string {
  const paint = (code: string, s: string) => (options.color ? `${code}${s}${ANSI.reset}` : s);
  const sources = new Map<string, string[] | undefined>();
  const linesOf = (file: string) => {
    if (!sources.has(file)) sources.set(file, options.readSource(file)?.split(/\r?\n/));
    return sources.get(file);
  };
  const out: string[] = [];
  for (const d of diags) {
    out.push(`${paint(ANSI.bold, where(d))}${paint(severityColor(d.severity), `${d.severity}[${d.code}]`)}: ${d.message}`);
    const lines = d.file && d.range ? linesOf(d.file) : undefined;
    if (lines && d.range) {
      const { start, end } = d.range;
      const text = lines[start.line - 1];
      if (text !== undefined) {
        const gutter = String(start.line);
        const pad = ' '.repeat(gutter.length);
        const endCol = end.line === start.line ? Math.max(end.column, start.column + 1) : text.length + 1;
        const width = Math.max(1, Math.min(endCol, text.length + 1) - start.column);
        // Keep tabs so the caret lines up with the source as the terminal shows it.
        const lead = text.slice(0, start.column - 1).replace(/[^\t]/g, ' ');
        out.push(`${pad} ${paint(ANSI.dim, '|')}`);
        out.push(`${paint(ANSI.dim, `${gutter} |`)} ${text}`);
        out.push(`${pad} ${paint(ANSI.dim, '|')} ${lead}${paint(severityColor(d.severity), '^'.repeat(width))}`);
      }
    }
    if (d.hint) out.push(`  ${paint(ANSI.bold, 'hint:')} ${d.hint}`);
  }
  const errors = diags.filter((d) => d.severity === 'error').length;
  const warnings = diags.filter((d) => d.severity === 'warning').length;
  if (diags.length > 0) out.push(`${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}`);
  return out.length > 0 ? `${out.join('\n')}\n` : '';
}

export interface JsonDiagnostic {
  file: string | null;
  line: number | null;
  column: number | null;
  endLine: number | null;
  endColumn: number | null;
  severity: Severity;
  code: string;
  message: string;
  hint: string | null;
}

export function renderJson(diags: readonly Diagnostic[]): string {
  const list: JsonDiagnostic[] = diags.map((d) => ({
    file: d.file ?? null,
    line: d.range?.start.line ?? null,
    column: d.range?.start.column ?? null,
    endLine: d.range?.end.line ?? null,
    endColumn: d.range?.end.column ?? null,
    severity: d.severity,
    code: d.code,
    message: d.message,
    hint: d.hint ?? null,
  }));
  return `${JSON.stringify({ diagnostics: list }, null, 2)}\n`;
}

function sarifLevel(s: Severity): 'error' | 'warning' | 'note' {
  switch (s) {
    case 'error':
      return 'error';
    case 'warning':
      return 'warning';
    case 'info':
      return 'note';
    default:
      return assertNever(s, 'severity');
  }
}

export function renderSarif(diags: readonly Diagnostic[], options: { toolVersion: string }): string {
  const ruleIds = [...new Set(diags.map((d) => d.code))].sort();
  const ruleIndex = new Map(ruleIds.map((id, i) => [id, i]));
  const results = diags.map((d) => {
    const message = d.hint ? `${d.message}\nhint: ${d.hint}` : d.message;
    const result: Record<string, unknown> = { ruleId: d.code, ruleIndex: ruleIndex.get(d.code), level: sarifLevel(d.severity), message: { text: message } };
    if (d.file) {
      const physicalLocation: Record<string, unknown> = { artifactLocation: { uri: toUri(d.file) } };
      if (d.range) {
        physicalLocation.region = {
          startLine: d.range.start.line,
          startColumn: d.range.start.column,
          endLine: d.range.end.line,
          endColumn: Math.max(d.range.end.column, d.range.end.line === d.range.start.line ? d.range.start.column + 1 : 1),
        };
      }
      result.locations = [{ physicalLocation }];
    }
    return result;
  });
  const log = {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [{
      tool: { driver: { name: 'stowage', version: options.toolVersion, informationUri: 'https://github.com/stowage/stowage', rules: ruleIds.map((id) => ({ id, shortDescription: { text: id } })) } },
      // Columns come from JS string offsets, i.e. UTF-16 code units.
      columnKind: 'utf16CodeUnits',
      results,
    }],
  };
  return `${JSON.stringify(log, null, 2)}\n`;
}

/** Relative paths stay relative URI references (resolved against the checkout); absolute become file:. */
function toUri(file: string): string {
  const enc = file.split(/[\\/]/).map(encodeURIComponent).join('/');
  return file.startsWith('/') ? `file://${enc}` : enc;
}

// GitHub workflow commands: data escapes %, CR, LF; property values additionally ':' and ','.
function escapeData(s: string): string {
  return s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}
function escapeProperty(s: string): string {
  return escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

export function renderGithub(diags: readonly Diagnostic[]): string {
  const out: string[] = [];
  for (const d of diags) {
    const command = d.severity === 'error' ? 'error' : d.severity === 'warning' ? 'warning' : 'notice';
    const props: string[] = [];
    if (d.file) props.push(`file=${escapeProperty(d.file)}`);
    if (d.range) {
      props.push(`line=${d.range.start.line}`, `col=${d.range.start.column}`, `endLine=${d.range.end.line}`, `endColumn=${d.range.end.column}`);
    }
    props.push(`title=${escapeProperty(d.code)}`);
    const message = d.hint ? `${d.message}\nhint: ${d.hint}` : d.message;
    out.push(`::${command} ${props.join(',')}::${escapeData(message)}`);
  }
  return out.length > 0 ? `${out.join('\n')}\n` : '';
}
