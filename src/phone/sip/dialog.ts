import { randomBytes } from 'node:crypto';
import { headerParam, type SipHeader, type SipRequest } from './message.js';
import { newBranch } from './transactions.js';
import type { SipPeer } from './transport.js';

/** The state of one SIP dialog (RFC 3261 12): enough to send in-dialog requests and match incoming ones. */
export interface Dialog {
  readonly sipCallId: string;
  readonly localTag: string;
  remoteTag: string;
  /** Our From/To header value including our tag. */
  readonly localHeader: string;
  /** The peer's From/To header value including its tag. */
  remoteHeader: string;
  /** Request-URI of in-dialog requests (the peer's Contact). */
  remoteTarget: string;
  /** Route headers of in-dialog requests (from Record-Route). */
  routeSet: string[];
  localSeq: number;
  /** Where in-dialog requests go: the connection or address the dialog was set up over. */
  readonly peer: SipPeer;
}

export function newTag(): string {
  return randomBytes(8).toString('hex');
}

export function newSipCallId(host: string): string {
  return `${randomBytes(16).toString('hex')}@${host}`;
}

/** Identity of this gateway in the headers it writes. */
export interface LocalEndpoint {
  readonly host: string;
  readonly portFor: (transport: SipPeer['transport']) => number;
}

export function viaHeader(
  local: LocalEndpoint,
  transport: SipPeer['transport'],
  branch = newBranch(),
): SipHeader {
  return {
    name: 'Via',
    value: `SIP/2.0/${transport.toUpperCase()} ${hostPort(local.host, local.portFor(transport))};branch=${branch};rport`,
  };
}

/**
 * Our Contact. Over TLS it says `;transport=tls`; the `sips:` scheme only when the request it
 * answers (or sends) has a SIPS Request-URI (RFC 3261 8.1.1.8, 12.1.1): peers built on libre
 * (baresip) cannot route a `sips:` target and drop the call at the ACK.
 */
export function contactHeader(
  local: LocalEndpoint,
  transport: SipPeer['transport'],
  user = 'gateway',
  sips = false,
): SipHeader {
  const param = transport === 'udp' ? '' : `;transport=${transport}`;
  const scheme = sips && transport === 'tls' ? 'sips' : 'sip';
  return {
    name: 'Contact',
    value: `<${scheme}:${user}@${hostPort(local.host, local.portFor(transport))}${param}>`,
  };
}

export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export const ALLOW_HEADER: SipHeader = { name: 'Allow', value: 'INVITE, ACK, BYE, CANCEL, OPTIONS, INFO' };

/** Builds an in-dialog request (BYE, INFO, re-INVITE) with the next local CSeq. */
export function dialogRequest(
  dialog: Dialog,
  local: LocalEndpoint,
  method: string,
  extra: { headers?: SipHeader[]; body?: Buffer; cseq?: number; branch?: string } = {},
): SipRequest {
  const seq = extra.cseq ?? ++dialog.localSeq;
  return {
    kind: 'request',
    method,
    uri: dialog.remoteTarget,
    headers: [
      viaHeader(local, dialog.peer.transport, extra.branch),
      { name: 'Max-Forwards', value: '70' },
      { name: 'From', value: dialog.localHeader },
      { name: 'To', value: dialog.remoteHeader },
      { name: 'Call-ID', value: dialog.sipCallId },
      { name: 'CSeq', value: `${seq} ${method}` },
      ...dialog.routeSet.map((value) => ({ name: 'Route', value })),
      ...(extra.headers ?? []),
    ],
    body: extra.body ?? Buffer.alloc(0),
  };
}

/** Whether a request belongs to this dialog (its tags match ours, RFC 3261 12.2.2). */
export function matchesDialog(dialog: Dialog, from: string | undefined, to: string | undefined): boolean {
  return (
    from !== undefined &&
    to !== undefined &&
    headerParam(from, 'tag') === dialog.remoteTag &&
    headerParam(to, 'tag') === dialog.localTag
  );
}
