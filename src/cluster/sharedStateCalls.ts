import { SfuError, isSfuError } from '../errors/catalogue.js';

/**
 * Wraps an object whose every method talks to Redis (the room directory, the shared invitations)
 * so that a failure to reach Redis surfaces as CLUSTER_UNAVAILABLE (503) instead of an internal
 * error: with the shared state gone, a join token's single use, a room's placement or a resume
 * cannot be checked, and the caller is told to retry rather than served unchecked.
 */
export function sharedStateCalls<T extends object>(target: T, onFailure: (error: unknown) => void): T {
  const unavailable = (error: unknown): never => {
    if (isSfuError(error)) throw error;
    onFailure(error);
    throw new SfuError('CLUSTER_UNAVAILABLE');
  };
  return new Proxy(target, {
    get(object, property, receiver) {
      const value: unknown = Reflect.get(object, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]): unknown => {
        let result: unknown;
        try {
          result = (value as (...a: unknown[]) => unknown).apply(object, args);
        } catch (error) {
          return unavailable(error);
        }
        return result instanceof Promise ? result.catch(unavailable) : result;
      };
    },
  });
}
