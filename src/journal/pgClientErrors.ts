import type pg from 'pg';

const guarded = new WeakSet<pg.Pool>();

/**
 * Gives every client of the pool an error listener for its whole life.
 *
 * pg reports a dead connection as an `error` event on the client. The pool listens only while the
 * client is idle; a checkout listens only once its `await pool.connect()` has resumed. An error
 * read in the same chunk as the message that completed the checkout (a backend terminated just as
 * it became ready) falls between the two, finds no listener, and would crash the process. Such a
 * client is already marked unusable by pg, so the next query on it fails and the caller discards it.
 */
export function keepClientErrorsHandled(pool: pg.Pool): void {
  if (guarded.has(pool)) return;
  guarded.add(pool);
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
  });
}
