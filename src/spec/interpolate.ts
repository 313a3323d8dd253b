/**
 * `${{ vars.X }}`, `${{ matrix.X }}` and `${{ image.name }}` in string fields. Nothing else: no
 * operators, no functions, no defaults — a spec stays data.
 */
import { didYouMean } from '../util/levenshtein.js';

export interface InterpolationScope {
  vars: Record<string, string>;
  /** Undefined when the image has no matrix. */
  matrix?: Record<string, string>;
  /** Undefined where no image is in scope (e.g. `cache.repo`). */
  imageName?: string;
}

export interface InterpolationProblem {
  /** The exact text of the offending expression, to point at it inside the scalar. */
  expression: string;
  message: string;
  hint?: string;
}

export type InterpolationResult = { ok: true; value: string } | { ok: false; problems: InterpolationProblem[] };

const EXPR = /\$\{\{([^}]*)\}\}/g;

export function hasExpression(text: string): boolean {
  return text.includes('${{');
}

export function interpolate(text: string, scope: InterpolationScope): InterpolationResult {
  if (!hasExpression(text)) return { ok: true, value: text };
  const problems: InterpolationProblem[] = [];
  const value = text.replace(EXPR, (whole, inner: string) => {
    const expr = inner.trim();
    const m = /^([A-Za-z_]+)\.([A-Za-z0-9_.-]+)$/.exec(expr);
    if (!m) {
      problems.push({ expression: whole, message: `'${whole}' is not an expression stowage understands`, hint: 'write ${{ vars.NAME }}, ${{ matrix.AXIS }} or ${{ image.name }}' });
      return whole;
    }
    const [, ns, name] = m as unknown as [string, string, string];
    switch (ns) {
      case 'vars': {
        const v = scope.vars[name];
        if (v !== undefined) return v;
        const guess = didYouMean(name, Object.keys(scope.vars));
        problems.push({ expression: whole, message: `unknown variable 'vars.${name}'`, hint: guess ? `did you mean 'vars.${guess}'?` : 'declare it under `vars:`' });
        return whole;
      }
      case 'matrix': {
        if (!scope.matrix) {
          problems.push({ expression: whole, message: `'matrix.${name}' is used${scope.imageName ? ` by image '${scope.imageName}'` : ''}, which has no matrix`, hint: 'add a `matrix:` to the image or remove the expression' });
          return whole;
        }
        const v = scope.matrix[name];
        if (v !== undefined) return v;
        const guess = didYouMean(name, Object.keys(scope.matrix));
        problems.push({ expression: whole, message: `unknown matrix axis 'matrix.${name}'`, hint: guess ? `did you mean 'matrix.${guess}'?` : `axes: ${Object.keys(scope.matrix).join(', ')}` });
        return whole;
      }
      case 'image': {
        if (name === 'name' && scope.imageName !== undefined) return scope.imageName;
        problems.push({ expression: whole, message: name === 'name' ? "'image.name' is not available here" : `unknown field 'image.${name}'`, hint: name === 'name' ? undefined : 'only ${{ image.name }} is available' });
        return whole;
      }
      default: {
        const guess = didYouMean(ns, ['vars', 'matrix', 'image']);
        problems.push({ expression: whole, message: `unknown namespace '${ns}' in '${whole}'`, hint: guess ? `did you mean '${guess}.${name}'?` : 'use vars.NAME, matrix.AXIS or image.name' });
        return whole;
      }
    }
  });
  // A `${{` that never closes is a mistake, not literal text.
  if (text.replace(EXPR, '').includes('${{')) {
    problems.push({ expression: '${{', message: "unterminated '${{' (missing '}}')" });
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, value };
}
