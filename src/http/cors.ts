/**
 * CORS for the SDK bundle: a platform's front end on its own origin imports the SDK (an ES module,
 * so the browser checks `Access-Control-Allow-Origin`) from the media server.
 */
export function sdkCorsHeaders(
  allowedOrigins: readonly string[],
  requestOrigin: string | undefined,
): Record<string, string> {
  // The answer depends on the Origin header whenever a list is configured: caches must know it.
  if (allowedOrigins.length === 0) return {};
  if (allowedOrigins.includes('*')) return { 'Access-Control-Allow-Origin': '*' };
  const vary = { Vary: 'Origin' };
  if (requestOrigin === undefined || !allowedOrigins.includes(requestOrigin)) return vary;
  return { ...vary, 'Access-Control-Allow-Origin': requestOrigin };
}
