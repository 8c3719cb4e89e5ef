import fs from 'node:fs/promises';
import path from 'node:path';
import type { ServerResponse } from 'node:http';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
};

export interface StaticOptions {
  /** Answer a HEAD request: the GET's headers, no body. */
  headOnly?: boolean;
  /** Extra response headers (CORS). */
  headers?: Record<string, string>;
}

/** Serves a file from under `root`, refusing anything that resolves outside it. */
export async function serveStatic(
  res: ServerResponse,
  root: string,
  relative: string,
  options: StaticOptions = {},
): Promise<boolean> {
  const resolved = path.resolve(root, `.${path.posix.normalize(`/${relative}`)}`);
  if (!resolved.startsWith(path.resolve(root) + path.sep)) return false;
  try {
    const body = await fs.readFile(resolved);
    res.writeHead(200, {
      'Content-Type': TYPES[path.extname(resolved)] ?? 'application/octet-stream',
      'Content-Length': body.length,
      'Cache-Control': 'no-cache',
      'X-Content-Type-Options': 'nosniff',
      ...options.headers,
    });
    res.end(options.headOnly ? undefined : body);
    return true;
  } catch {
    return false;
  }
}
