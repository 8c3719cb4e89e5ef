import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import type { TSchema } from '@sinclair/typebox';
import { Requests, RequestEnvelope, type Method } from './messages.js';

/** Compiled checkers for every request, built once at startup. */
export const envelopeCheck = TypeCompiler.Compile(RequestEnvelope);

export const paramChecks = Object.fromEntries(
  Object.entries(Requests).map(([method, spec]) => [method, TypeCompiler.Compile(spec.params as TSchema)]),
) as Record<Method, TypeCheck<TSchema>>;

export function isMethod(name: string): name is Method {
  return Object.prototype.hasOwnProperty.call(Requests, name);
}

/** The first schema violation as a short, non-personal description (path and rule). */
export function firstViolation(check: TypeCheck<TSchema>, value: unknown): string {
  const error = check.Errors(value).First();
  return error ? `${error.path || '/'}: ${error.message}`.slice(0, 160) : 'invalid';
}
