import { StowageError } from '../../util/errors.js';

/** Errors from helpers that know no Dockerfile position get the instruction's. */
export function withLocation(e: unknown, where: { file: string; range: StowageError['range'] }): unknown {
  if (e instanceof StowageError && e.file === undefined) {
    const range = e.range ?? where.range;
    return new StowageError(e.code, e.message, { file: where.file, ...(range ? { range } : {}), ...(e.hint ? { hint: e.hint } : {}), cause: e });
  }
  return e;
}
