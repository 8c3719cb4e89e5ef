/**
 * Join links carry the single-use join token in the URL fragment (`#token=...`): browsers never
 * send a fragment to any server, so the token stays out of proxies, access logs and `Referer`
 * headers, where a query string (`?token=`) would be kept. The page reads it from
 * `location.hash` and should then remove it from the address bar.
 */

/** `base` (the platform's consultation page) with the token, and optional fields, in its fragment. */
export function buildJoinLink(base: string, token: string, fields: Record<string, string> = {}): string {
  const url = new URL(base);
  const fragment = new URLSearchParams({ ...fields, token });
  url.hash = fragment.toString();
  return url.toString();
}

/** The fields of a join link's fragment (`location.hash`, with or without the leading '#'). */
export function readJoinFragment(hash: string): { token: string | undefined; fields: Map<string, string> } {
  const params = new URLSearchParams(hash.startsWith('#') ? hash.slice(1) : hash);
  const fields = new Map(params);
  const token = fields.get('token');
  fields.delete('token');
  return { token: token === '' ? undefined : token, fields };
}
