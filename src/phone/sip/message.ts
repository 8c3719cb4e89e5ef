/**
 * RFC 3261 message model, strict parser and serializer for the subset the gateway speaks.
 *
 * "When in doubt, be strict": a message that breaks a rule is refused with a reason. When the refused
 * message was a request whose Via, From, To, Call-ID and CSeq could still be read, the result carries
 * them so the caller can answer `400 Bad Request` (RFC 3261 8.2.6 needs exactly those headers).
 */

/** Hard limits: a message larger than these is refused before any further work. */
export const SIP_LIMITS = {
  maxMessageBytes: 64 * 1024,
  maxHeaders: 100,
  maxHeaderLineBytes: 8 * 1024,
  maxStartLineBytes: 2048,
} as const;

export interface SipHeader {
  /** Canonical name (compact forms expanded, known names in their usual case). */
  readonly name: string;
  readonly value: string;
}

interface SipMessageBase {
  readonly headers: SipHeader[];
  readonly body: Buffer;
}

export interface SipRequest extends SipMessageBase {
  readonly kind: 'request';
  readonly method: string;
  readonly uri: string;
}

export interface SipResponse extends SipMessageBase {
  readonly kind: 'response';
  readonly status: number;
  readonly reason: string;
}

export type SipMessage = SipRequest | SipResponse;

/** The headers a response to a request must copy (RFC 3261 8.2.6.2). */
export interface ResponseContext {
  readonly method: string;
  readonly vias: string[];
  readonly from: string;
  readonly to: string;
  readonly callId: string;
  readonly cseq: string;
}

export type ParseResult =
  | { readonly ok: true; readonly message: SipMessage }
  | { readonly ok: false; readonly reason: string; readonly respondTo?: ResponseContext };

const COMPACT_FORMS: Readonly<Record<string, string>> = {
  i: 'Call-ID',
  m: 'Contact',
  f: 'From',
  t: 'To',
  v: 'Via',
  l: 'Content-Length',
  c: 'Content-Type',
  k: 'Supported',
  s: 'Subject',
  e: 'Content-Encoding',
};

const CANONICAL_NAMES: Readonly<Record<string, string>> = Object.fromEntries(
  [
    'Via',
    'From',
    'To',
    'Call-ID',
    'CSeq',
    'Contact',
    'Max-Forwards',
    'Content-Length',
    'Content-Type',
    'Route',
    'Record-Route',
    'Allow',
    'Accept',
    'Supported',
    'User-Agent',
    'Server',
    'Expires',
    'WWW-Authenticate',
    'Proxy-Authenticate',
    'Authorization',
    'Proxy-Authorization',
    'Retry-After',
    'P-Asserted-Identity',
    'Subject',
    'Content-Encoding',
  ].map((name) => [name.toLowerCase(), name]),
);

/** RFC 3261 token characters (method names, header names). */
const TOKEN = /^[A-Za-z0-9.!%*_+`'~-]+$/;
const REQUEST_LINE = /^([A-Za-z0-9.!%*_+`'~-]+) ([a-zA-Z][a-zA-Z0-9+.-]*:[^\s]+) SIP\/2\.0$/;
const STATUS_LINE = /^SIP\/2\.0 ([1-6][0-9]{2}) ([^\r\n]*)$/;
/** Header values may hold UTF-8 text but no control characters besides horizontal tab. */
function hasControlCharacter(line: string): boolean {
  for (let i = 0; i < line.length; i++) {
    const code = line.charCodeAt(i);
    if ((code < 0x20 && code !== 0x09) || code === 0x7f) return true;
  }
  return false;
}
const CSEQ = /^([0-9]{1,10})\s+([A-Za-z0-9.!%*_+`'~-]+)$/;

export function canonicalHeaderName(name: string): string {
  const lower = name.toLowerCase();
  return COMPACT_FORMS[lower] ?? CANONICAL_NAMES[lower] ?? name;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Index just past the blank line ending the header section, or -1. */
export function findHeaderEnd(buf: Buffer, from = 0): number {
  const at = buf.indexOf('\r\n\r\n', from, 'latin1');
  return at < 0 ? -1 : at + 4;
}

/**
 * Parses one complete message. `framed` is true on stream transports: there Content-Length is mandatory
 * and must match exactly (the caller cut the buffer with it); on UDP a longer datagram is truncated to it.
 */
export function parseSipMessage(buf: Buffer, framed = false): ParseResult {
  if (buf.length > SIP_LIMITS.maxMessageBytes) return { ok: false, reason: 'message too large' };
  const headerEnd = findHeaderEnd(buf);
  if (headerEnd < 0) return { ok: false, reason: 'no end of headers' };
  let head: string;
  try {
    head = utf8.decode(buf.subarray(0, headerEnd - 4));
  } catch {
    return { ok: false, reason: 'header section is not UTF-8' };
  }
  const lines = head.split('\r\n');
  const startLine = lines[0] ?? '';
  if (startLine.length > SIP_LIMITS.maxStartLineBytes) return { ok: false, reason: 'start line too long' };

  const headers: SipHeader[] = [];
  let headerError: string | undefined;
  // A bad line marks the message refused, but later lines are still read so a 400 can be built.
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (line.length > SIP_LIMITS.maxHeaderLineBytes) {
      headerError ??= 'header line too long';
      continue;
    }
    if (hasControlCharacter(line)) {
      headerError ??= 'control character in header';
      continue;
    }
    if (line.startsWith(' ') || line.startsWith('\t')) {
      // Line folding (RFC 3261 7.3.1): continues the previous header's value.
      const previous = headers.pop();
      if (!previous) {
        headerError ??= 'continuation line without header';
        continue;
      }
      headers.push({ name: previous.name, value: `${previous.value} ${line.trim()}` });
      continue;
    }
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon).trimEnd() : '';
    if (!TOKEN.test(name)) {
      headerError ??= 'malformed header line';
      continue;
    }
    if (headers.length >= SIP_LIMITS.maxHeaders) {
      headerError = 'too many headers';
      break;
    }
    headers.push({ name: canonicalHeaderName(name), value: line.slice(colon + 1).trim() });
  }

  const request = REQUEST_LINE.exec(startLine);
  const status = request ? null : STATUS_LINE.exec(startLine);
  if (!request && !status) {
    // Not a response and not a valid request line: if the headers a response needs can be read, it
    // was meant as a request (its method as in CSeq) and is answered 400 like any other bad request.
    const method = startLine.startsWith('SIP/')
      ? undefined
      : CSEQ.exec(headerValue(headers, 'CSeq') ?? '')?.[2];
    const context = method ? responseContextOf(method, headers) : undefined;
    return context
      ? { ok: false, reason: 'malformed start line', respondTo: context }
      : { ok: false, reason: 'malformed start line' };
  }

  const respondTo = request ? responseContextOf(request[1] ?? '', headers) : undefined;
  const fail = (reason: string): ParseResult =>
    respondTo ? { ok: false, reason, respondTo } : { ok: false, reason };

  if (headerError) return fail(headerError);
  for (const required of ['Via', 'From', 'To', 'Call-ID', 'CSeq']) {
    if (!headers.some((h) => h.name === required && h.value.length > 0)) return fail(`missing ${required}`);
  }
  const cseq = CSEQ.exec(headerValue(headers, 'CSeq') ?? '');
  if (!cseq) return fail('malformed CSeq');
  if (request && cseq[2] !== request[1]) return fail('CSeq method does not match request method');
  for (const single of ['From', 'To', 'Call-ID', 'CSeq', 'Content-Length', 'Content-Type', 'Max-Forwards']) {
    if (headers.filter((h) => h.name === single).length > 1) return fail(`duplicated ${single}`);
  }

  const lengthHeader = headerValue(headers, 'Content-Length');
  let body = buf.subarray(headerEnd);
  if (lengthHeader === undefined) {
    if (framed) return fail('missing Content-Length on a stream transport');
  } else {
    if (!/^[0-9]{1,6}$/.test(lengthHeader)) return fail('malformed Content-Length');
    const length = Number(lengthHeader);
    if (length > body.length) return fail('Content-Length larger than the body');
    if (framed && length !== body.length) return fail('Content-Length does not match the body');
    body = body.subarray(0, length);
  }

  const message: SipMessage = request
    ? { kind: 'request', method: request[1] ?? '', uri: request[2] ?? '', headers, body: Buffer.from(body) }
    : {
        kind: 'response',
        status: Number(status?.[1]),
        reason: status?.[2] ?? '',
        headers,
        body: Buffer.from(body),
      };
  return { ok: true, message };
}

function responseContextOf(method: string, headers: SipHeader[]): ResponseContext | undefined {
  if (method === 'ACK') return undefined; // ACK is never answered.
  const vias = headerValues(headers, 'Via');
  const from = headerValue(headers, 'From');
  const to = headerValue(headers, 'To');
  const callId = headerValue(headers, 'Call-ID');
  const cseq = headerValue(headers, 'CSeq');
  if (vias.length === 0 || !from || !to || !callId || !cseq) return undefined;
  if (!vias.every((via) => /^SIP\/2\.0\/[A-Za-z]+ \S/.test(via))) return undefined;
  return { method, vias, from, to, callId, cseq };
}

export function headerValue(headers: readonly SipHeader[], name: string): string | undefined {
  return headers.find((h) => h.name === name)?.value;
}

/** All values of a header, splitting comma-separated lists (for Via, Route, Record-Route). */
export function headerValues(headers: readonly SipHeader[], name: string): string[] {
  return headers.filter((h) => h.name === name).flatMap((h) => splitHeaderList(h.value));
}

/** Splits a comma-separated header list, keeping commas inside quotes and angle brackets. */
export function splitHeaderList(value: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const char = value[i];
    if (char === '"' && value[i - 1] !== '\\') quoted = !quoted;
    else if (!quoted && char === '<') depth++;
    else if (!quoted && char === '>') depth = Math.max(0, depth - 1);
    else if (!quoted && depth === 0 && char === ',') {
      parts.push(value.slice(start, i).trim());
      start = i + 1;
    }
  }
  parts.push(value.slice(start).trim());
  return parts.filter((part) => part.length > 0);
}

export function serializeSipMessage(message: SipMessage): Buffer {
  const startLine =
    message.kind === 'request'
      ? `${message.method} ${message.uri} SIP/2.0`
      : `SIP/2.0 ${message.status} ${message.reason}`;
  const lines = [startLine];
  for (const header of message.headers) {
    if (header.name === 'Content-Length') continue;
    if (/[\r\n]/.test(header.value)) throw new Error(`header ${header.name} contains a line break`);
    lines.push(`${header.name}: ${header.value}`);
  }
  lines.push(`Content-Length: ${message.body.length}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8'), message.body]);
}

/** A `;name=value` parameter of a header value (outside the angle-bracketed URI). */
export function headerParam(value: string, param: string): string | undefined {
  const close = value.lastIndexOf('>');
  const params = close >= 0 ? value.slice(close + 1) : value;
  for (const piece of params.split(';').slice(1)) {
    const [name, ...rest] = piece.split('=');
    if (name?.trim().toLowerCase() === param.toLowerCase()) return rest.join('=').trim() || '';
  }
  return undefined;
}

/** The URI inside a name-addr (`"x" <sip:a@b>;tag=1`) or an addr-spec (`sip:a@b;tag=1`). */
export function uriOf(value: string): string {
  const open = value.indexOf('<');
  const close = value.indexOf('>', open);
  if (open >= 0 && close > open) return value.slice(open + 1, close);
  return value.split(';')[0]?.trim() ?? '';
}

/** The user part of a SIP URI (`sip:+33612345678@trunk` gives `+33612345678`). */
export function uriUser(uri: string): string | undefined {
  const match = /^(?:sips?|tel):([^@;>]+)(@|$|;)/.exec(uri);
  return match?.[2] === '@' || uri.startsWith('tel:') ? match?.[1] : undefined;
}

export interface SipUriTarget {
  readonly host: string;
  readonly port: number | undefined;
  readonly transport: 'udp' | 'tcp' | 'tls' | undefined;
  readonly secure: boolean;
}

/** Host, port and transport parameter of a SIP URI; undefined when it is not one. */
export function parseSipUri(uri: string): SipUriTarget | undefined {
  const match = /^(sips?):(?:[^@]+@)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::([0-9]{1,5}))?((?:;[^?]*)?)/.exec(
    uri,
  );
  if (!match) return undefined;
  const secure = match[1] === 'sips';
  const transportParam = /;transport=([a-z]+)/i.exec(match[4] ?? '')?.[1]?.toLowerCase();
  const transport =
    transportParam === 'udp' || transportParam === 'tcp' || transportParam === 'tls'
      ? transportParam
      : secure
        ? 'tls'
        : undefined;
  const port = match[3] ? Number(match[3]) : undefined;
  if (port !== undefined && (port < 1 || port > 65535)) return undefined;
  return { host: (match[2] ?? '').replace(/^\[|\]$/g, ''), port, transport, secure };
}

/** Builds a response to a request (or to the context of a refused one), copying the mandatory headers. */
export function buildResponse(
  request: SipRequest | ResponseContext,
  status: number,
  reason: string,
  options: { toTag?: string; headers?: SipHeader[]; body?: Buffer } = {},
): SipResponse {
  const context = 'kind' in request ? contextOfRequest(request) : request;
  let to = context.to;
  if (options.toTag && headerParam(to, 'tag') === undefined) to = `${to};tag=${options.toTag}`;
  const headers: SipHeader[] = [
    ...context.vias.map((value) => ({ name: 'Via', value })),
    { name: 'From', value: context.from },
    { name: 'To', value: to },
    { name: 'Call-ID', value: context.callId },
    { name: 'CSeq', value: context.cseq },
    ...(options.headers ?? []),
  ];
  return { kind: 'response', status, reason, headers, body: options.body ?? Buffer.alloc(0) };
}

function contextOfRequest(request: SipRequest): ResponseContext {
  return {
    method: request.method,
    vias: headerValues(request.headers, 'Via'),
    from: headerValue(request.headers, 'From') ?? '',
    to: headerValue(request.headers, 'To') ?? '',
    callId: headerValue(request.headers, 'Call-ID') ?? '',
    cseq: headerValue(request.headers, 'CSeq') ?? '',
  };
}

export function cseqOf(message: SipMessage): { seq: number; method: string } {
  const match = CSEQ.exec(headerValue(message.headers, 'CSeq') ?? '');
  return { seq: Number(match?.[1] ?? 0), method: match?.[2] ?? '' };
}

/** The branch of the top Via (the transaction key, RFC 3261 17.2.3). */
export function topViaBranch(message: SipMessage): string | undefined {
  const top = headerValues(message.headers, 'Via')[0];
  return top ? headerParam(top, 'branch') : undefined;
}
