import { randomBytes } from 'node:crypto';
import type { SipRequest, SipResponse } from './message.js';
import { cseqOf, topViaBranch } from './message.js';
import { peerKey, type SipPeer } from './transport.js';

/** RFC 3261 timer values (17.1.1.1): T1 the round-trip estimate, T2 the cap on retransmit intervals. */
export const T1_MS = 500;
export const T2_MS = 4000;
/** 64*T1: how long a transaction lives (Timers B, F, H, J). */
export const TRANSACTION_TIMEOUT_MS = 64 * T1_MS;

/** Transactions remembered at once; a flood of distinct branches evicts the oldest. */
const MAX_SERVER_TRANSACTIONS = 4096;

export function newBranch(): string {
  return `z9hG4bK${randomBytes(10).toString('hex')}`;
}

/**
 * Server side: remembers the last response sent for each request (keyed by top Via branch and method)
 * so that a retransmitted request gets the same answer again instead of being processed twice.
 */
export class ServerTransactions {
  private readonly entries = new Map<string, { response: SipResponse | undefined; expires: number }>();

  private static key(request: SipRequest): string | undefined {
    const branch = topViaBranch(request);
    if (!branch?.startsWith('z9hG4bK')) return undefined; // RFC 2543 peers: no transaction matching.
    const method = request.method === 'ACK' ? 'INVITE' : request.method;
    return `${branch}|${method}`;
  }

  /** 'retransmission' with the response to resend (if any), or 'new' after registering it. */
  receive(
    request: SipRequest,
  ): { kind: 'new' } | { kind: 'retransmission'; response: SipResponse | undefined } {
    const key = ServerTransactions.key(request);
    if (!key) return { kind: 'new' };
    this.sweep();
    const existing = this.entries.get(key);
    if (existing) return { kind: 'retransmission', response: existing.response };
    if (request.method !== 'ACK') {
      this.entries.set(key, { response: undefined, expires: Date.now() + TRANSACTION_TIMEOUT_MS });
      if (this.entries.size > MAX_SERVER_TRANSACTIONS) {
        const oldest = this.entries.keys().next().value;
        if (oldest !== undefined) this.entries.delete(oldest);
      }
    }
    return { kind: 'new' };
  }

  /** Whether a matching INVITE transaction exists (for CANCEL and ACK of non-2xx). */
  has(request: SipRequest, method: string): boolean {
    const branch = topViaBranch(request);
    return branch !== undefined && this.entries.has(`${branch}|${method}`);
  }

  responded(request: SipRequest, response: SipResponse): void {
    const key = ServerTransactions.key(request);
    const entry = key ? this.entries.get(key) : undefined;
    if (entry) entry.response = response;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [key, entry] of this.entries) {
      if (entry.expires > now) break; // Insertion order is expiry order.
      this.entries.delete(key);
    }
  }

  clear(): void {
    this.entries.clear();
  }
}

export interface ClientTransactionHandlers {
  onProvisional?: (response: SipResponse) => void;
}

interface PendingClientTransaction {
  readonly method: string;
  /** Where it was sent (transport, address, port), to fail it when that connection fails. */
  readonly peer: string;
  readonly resolve: (response: SipResponse | undefined) => void;
  readonly handlers: ClientTransactionHandlers;
  timer: NodeJS.Timeout | undefined;
  readonly deadline: NodeJS.Timeout;
  interval: number;
}

/**
 * Client side: sends a request, retransmits it over UDP (Timers A/E, doubling; non-INVITE capped at
 * T2; INVITE stops at the first provisional response) and resolves with the final response, or with
 * undefined at the timeout (Timers B/F). Non-2xx final responses to INVITE are ACKed by the caller.
 */
export class ClientTransactions {
  private readonly pending = new Map<string, PendingClientTransaction>();

  constructor(private readonly send: (request: SipRequest, peer: SipPeer) => boolean) {}

  request(
    request: SipRequest,
    peer: SipPeer,
    handlers: ClientTransactionHandlers = {},
    timeoutMs = TRANSACTION_TIMEOUT_MS,
  ): Promise<SipResponse | undefined> {
    const branch = topViaBranch(request);
    if (!branch) throw new Error('request without branch');
    // A CANCEL shares its INVITE's branch (RFC 3261 9.1): the method is part of the key.
    const key = `${branch}|${request.method}`;
    return new Promise((resolve) => {
      const entry: PendingClientTransaction = {
        method: request.method,
        peer: peerKey(peer),
        resolve,
        handlers,
        timer: undefined,
        interval: T1_MS,
        deadline: setTimeout(() => this.finish(key, undefined), timeoutMs),
      };
      this.finish(key, undefined); // A request reusing a pending key supersedes it.
      this.pending.set(key, entry);
      if (!this.send(request, peer)) {
        this.finish(key, undefined);
        return;
      }
      if (peer.transport === 'udp') {
        const retransmit = () => {
          if (this.pending.get(key) !== entry) return;
          this.send(request, peer);
          entry.interval =
            request.method === 'INVITE' ? entry.interval * 2 : Math.min(entry.interval * 2, T2_MS);
          entry.timer = setTimeout(retransmit, entry.interval);
        };
        entry.timer = setTimeout(retransmit, entry.interval);
      }
    });
  }

  /** Routes a response to its transaction; false when none matches (a stray or late response). */
  receive(response: SipResponse): boolean {
    const branch = topViaBranch(response);
    const key = `${branch}|${cseqOf(response).method}`;
    const entry = branch ? this.pending.get(key) : undefined;
    if (!branch || !entry) return false;
    if (response.status < 200) {
      if (entry.method === 'INVITE') {
        clearTimeout(entry.timer);
        entry.timer = undefined;
      }
      entry.handlers.onProvisional?.(response);
      return true;
    }
    this.finish(key, response);
    return true;
  }

  private finish(key: string, response: SipResponse | undefined): void {
    const entry = this.pending.get(key);
    if (!entry) return;
    this.pending.delete(key);
    clearTimeout(entry.timer);
    clearTimeout(entry.deadline);
    entry.resolve(response);
  }

  /**
   * Ends the transactions sent to a peer whose connection failed (RFC 3261 8.1.3.1: a transport
   * error); their promises resolve with undefined at once instead of at their timeout.
   */
  failPeer(peer: SipPeer): void {
    const failed = peerKey(peer);
    for (const [key, entry] of [...this.pending]) if (entry.peer === failed) this.finish(key, undefined);
  }

  /** Ends every pending transaction (shutdown); their promises resolve with undefined. */
  clear(): void {
    for (const key of [...this.pending.keys()]) this.finish(key, undefined);
  }
}
