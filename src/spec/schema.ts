/**
 * The spec's JSON Schema (schema/stowage.schema.json) and its validation, with every ajv error
 * mapped back to the YAML node it is about.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type Ajv2020Module from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type { Diagnostic } from '../util/errors.js';
import { didYouMean } from '../util/levenshtein.js';
import type { DataPath, Located } from './yaml.js';


/** Absolute path of the schema file (the same relative place from src/spec and dist/spec). */
export function schemaPath(): string {
  return fileURLToPath(new URL('../../schema/stowage.schema.json', import.meta.url));
}

export function readSchemaText(): string {
  return readFileSync(schemaPath(), 'utf8');
}

export type SpecValidator = ValidateFunction;

/**
 * The validator precompiled by scripts/gen-validator.mjs at build time, when it was made from this
 * exact schema text: loading it costs a few milliseconds, compiling the schema with ajv ~0.5 s.
 */
function precompiledValidator(schemaText: string): SpecValidator | undefined {
  try {
    // `../spec/` rather than `./`: the same file from dist/spec/ and from the bundle's dist/cli/.
    const require = createRequire(import.meta.url);
    const mod = require('../spec/spec-validator.generated.cjs') as SpecValidator & { schemaSha256?: string };
    return mod.schemaSha256 === createHash('sha256').update(schemaText).digest('hex') ? mod : undefined;
  } catch {
    return undefined; // running from src/ (tests, tsx), or not built yet
  }
}

export function createSpecValidator(schemaText: string = readSchemaText()): SpecValidator {
  const ready = precompiledValidator(schemaText);
  if (ready) return ready;
  // ajv's compiler is loaded only on this slow path. It is CommonJS: the module is the class itself.
  const Ajv2020 = createRequire(import.meta.url)('ajv/dist/2020.js') as typeof Ajv2020Module.default;
  const ajv = new Ajv2020({ allErrors: true, verbose: true, strict: true, allowUnionTypes: true });
  return ajv.compile(JSON.parse(schemaText) as object);
}

export interface SchemaCheck {
  diagnostics: Diagnostic[];
  /**
   * The data with every invalid part removed, when that makes it valid, so semantic checks can
   * still run and report their errors in the same pass. Undefined when it cannot be repaired.
   */
  repaired?: unknown;
}

export function checkSchema(validate: SpecValidator, data: unknown, file: string, locate: (p: DataPath) => Located): SchemaCheck {
  if (validate(data)) return { diagnostics: [], repaired: data };
  const errors = validate.errors ?? [];
  const diagnostics = dedupe(errors.flatMap((e) => toDiagnostic(e, file, locate)));
  const repaired = repair(validate, data, errors);
  return { diagnostics, repaired };
}

function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

export function dottedPath(path: DataPath): string {
  return path.length === 0 ? 'the spec' : path.map(String).join('.');
}

function typeName(v: unknown): string {
  if (v === null) return 'nothing (null)';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  if (typeof v === 'string') return 'a string';
  if (typeof v === 'number') return Number.isInteger(v) ? 'an integer' : 'a number';
  return `a ${typeof v}`;
}

function expectedTypes(t: unknown): string {
  const names: Record<string, string> = { string: 'a string', number: 'a number', integer: 'an integer', boolean: 'true or false', object: 'a map', array: 'a list', null: 'nothing' };
  const list = (Array.isArray(t) ? t : [t]).map((x) => names[String(x)] ?? String(x));
  return list.length > 1 ? `${list.slice(0, -1).join(', ')} or ${list[list.length - 1]}` : list[0] ?? 'another type';
}

function toDiagnostic(e: ErrorObject, file: string, locate: (p: DataPath) => Located): Diagnostic[] {
  const path = parsePointer(e.instancePath);
  const where = dottedPath(path);
  const at = (p: DataPath, preferKey = false) => {
    const l = locate(p);
    return preferKey && l.keyRange ? l.keyRange : l.range;
  };
  const propertyName = (e as ErrorObject & { propertyName?: string }).propertyName;
  const base = { file, severity: 'error' as const };
  switch (e.keyword) {
    case 'if':
    case 'propertyNames':
      return []; // reported through the nested error
    case 'additionalProperties': {
      const key = String((e.params as { additionalProperty: string }).additionalProperty);
      const known = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      const guess = didYouMean(key, known);
      return [{
        ...base, range: at([...path, key], true), code: 'spec/unknown-key',
        message: `unknown key '${key}' in ${where}`,
        hint: guess ? `did you mean '${guess}'?` : known.length > 0 ? `allowed keys: ${known.join(', ')}` : key === '<<' ? 'YAML merge keys are not supported; use `extends`' : undefined,
      }];
    }
    case 'required': {
      const missing = String((e.params as { missingProperty: string }).missingProperty);
      return [{ ...base, range: at(path, true), code: 'spec/missing-key', message: `${where} is missing the required key '${missing}'`, hint: missing === 'version' ? 'add `version: 1` at the top' : undefined }];
    }
    case 'type':
      return [{ ...base, range: at(path), code: 'spec/type', message: `${where} must be ${expectedTypes((e.params as { type: unknown }).type)}, not ${typeName(e.data)}` }];
    case 'const':
      return [{ ...base, range: at(path), code: 'spec/invalid-value', message: `${where} must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}`, hint: path[0] === 'version' ? 'this version of stowage reads spec version 1' : undefined }];
    case 'enum': {
      const allowed = ((e.params as { allowedValues: unknown[] }).allowedValues ?? []).map(String);
      const guess = typeof e.data === 'string' ? didYouMean(e.data, allowed) : undefined;
      return [{ ...base, range: at(path), code: 'spec/invalid-value', message: `${where} must be one of ${allowed.join(', ')}`, hint: guess ? `did you mean '${guess}'?` : undefined }];
    }
    case 'pattern': {
      if (propertyName !== undefined) {
        return [{ ...base, range: at([...path, propertyName], true), code: 'spec/invalid-name', message: `'${propertyName}' is not a valid name in ${where}`, hint: `names must match ${(e.params as { pattern: string }).pattern}` }];
      }
      const desc = (e.parentSchema as { description?: string } | undefined)?.description;
      return [{ ...base, range: at(path), code: 'spec/invalid-value', message: `${where}: '${String(e.data)}' is not valid`, hint: desc }];
    }
    case 'minLength':
      return [{ ...base, range: at(path), code: 'spec/invalid-value', message: `${where} must not be empty` }];
    case 'minItems':
      return [{ ...base, range: at(path), code: 'spec/invalid-value', message: `${where} must not be empty` }];
    case 'minProperties':
    case 'maxProperties': {
      const isSecret = path[path.length - 2] === 'secrets';
      return [{ ...base, range: at(path), code: 'spec/invalid-value', message: isSecret ? `${where} must have exactly one of 'env' or 'file'` : `${where} ${e.message ?? 'is invalid'}` }];
    }
    case 'minimum':
    case 'maximum':
      return [{ ...base, range: at(path), code: 'spec/invalid-value', message: `${where} ${e.message ?? 'is out of range'}` }];
    default:
      return [{ ...base, range: at(path), code: 'spec/invalid-value', message: `${where} ${e.message ?? 'is invalid'}` }];
  }
}

function dedupe(diags: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return diags.filter((d) => {
    const k = `${d.range?.start.line}:${d.range?.start.column}:${d.code}:${d.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Removes every part an error is about; returns the data if that leaves it valid. */
function repair(validate: SpecValidator, data: unknown, errors: ErrorObject[]): unknown {
  const copy = structuredClone(data);
  for (const e of errors) {
    const path = parsePointer(e.instancePath);
    const propertyName = (e as ErrorObject & { propertyName?: string }).propertyName;
    if (e.keyword === 'required') return undefined;
    if (e.keyword === 'additionalProperties') path.push(String((e.params as { additionalProperty: string }).additionalProperty));
    else if (propertyName !== undefined) path.push(propertyName);
    if (path.length === 0) return undefined;
    removeAt(copy, path);
  }
  compact(copy);
  return validate(copy) ? copy : undefined;
}

function removeAt(root: unknown, path: string[]): void {
  let node = root;
  for (let i = 0; i < path.length - 1; i++) {
    if (node === null || typeof node !== 'object') return;
    node = (node as Record<string, unknown>)[path[i]!];
  }
  const last = path[path.length - 1]!;
  if (Array.isArray(node)) {
    // Keep indices stable for the other errors: replace instead of splicing, then drop holes below.
    if (/^\d+$/.test(last)) node[Number(last)] = REMOVED;
  } else if (node !== null && typeof node === 'object') {
    delete (node as Record<string, unknown>)[last];
  }
}

const REMOVED = Symbol('removed');

function compact(node: unknown): void {
  if (Array.isArray(node)) {
    for (let i = node.length - 1; i >= 0; i--) {
      if (node[i] === REMOVED) node.splice(i, 1);
      else compact(node[i]);
    }
  } else if (node !== null && typeof node === 'object') {
    for (const v of Object.values(node)) compact(v);
  }
}
