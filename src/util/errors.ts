/**
 * Errors and diagnostics shared by every module.
 *
 * Expected problems in user input are data (`Diagnostic`), collected and printed together.
 * Failures while doing work are thrown as `StowageError`s with a stable code; the CLI prints
 * their message and hint, never a stack trace.
 */

/** 1-based line and column, end exclusive on the column. */
export interface SourcePosition {
  line: number;
  column: number;
}

export interface SourceRange {
  start: SourcePosition;
  end: SourcePosition;
}

export type Severity = 'error' | 'warning' | 'info';

export interface Diagnostic {
  /** Path as the user should see it (relative to cwd where possible). */
  file?: string;
  range?: SourceRange;
  severity: Severity;
  /** Stable identifier, e.g. `spec/unknown-key`, `dockerfile/UndefinedVar`. */
  code: string;
  message: string;
  /** What to do about it. */
  hint?: string;
}

export interface StowageErrorOptions {
  hint?: string;
  cause?: unknown;
  file?: string;
  range?: SourceRange;
}

/** A failure the user can act on. `code` is stable and machine-readable. */
export class StowageError extends Error {
  readonly code: string;
  readonly hint: string | undefined;
  readonly file: string | undefined;
  readonly range: SourceRange | undefined;

  constructor(code: string, message: string, options: StowageErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StowageError';
    this.code = code;
    this.hint = options.hint;
    this.file = options.file;
    this.range = options.range;
  }
}

export function isStowageError(e: unknown): e is StowageError {
  return e instanceof StowageError;
}

/** Thrown when an AbortSignal fired; callers distinguish it from real failures. */
export function isAbortError(e: unknown): boolean {
  return e instanceof Error && (e.name === 'AbortError' || (e as { code?: string }).code === 'ABORT_ERR');
}

/** For exhaustive switches over unions. */
export function assertNever(x: never, what = 'value'): never {
  throw new Error(`unexpected ${what}: ${JSON.stringify(x)}`);
}

export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
