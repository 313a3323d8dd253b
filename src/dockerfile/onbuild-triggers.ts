import { StowageError } from '../util/errors.js';
import { parseDockerfile } from './parse.js';
import type { Instruction } from './types.js';

/**
 * Triggers are stored as Dockerfile text (heredocs re-attached); parsed as the body of a stage so
 * every instruction gets the same parsing and validation as if written in the child.
 */
export function parseTriggers(triggers: readonly string[], from: string): Instruction[] {
  if (triggers.length === 0) return [];
  const file = `ONBUILD triggers of ${from}`;
  const text = `FROM scratch\n${triggers.map((t) => (t.endsWith('\n') ? t : `${t}\n`)).join('')}`;
  const parsed = parseDockerfile(text, { file });
  const errors = parsed.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0 || !parsed.dockerfile) {
    throw new StowageError('build/bad-onbuild', `${file}: ${errors[0]?.message ?? 'cannot parse'}`, {
      hint: 'the base image carries an ONBUILD trigger stowage cannot parse; rebuild the base without it',
    });
  }
  return parsed.dockerfile.stages[0]?.instructions ?? [];
}
