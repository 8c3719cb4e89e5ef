/**
 * The key for a participant's vital-sign messages, derived from its media sender key of the same
 * generation: one key exchange serves both, and a reading and a frame never share an AES-GCM key
 * (each has its own SFrame counter, so sharing the key would reuse nonces).
 *
 *   data key = HKDF-SHA256(sender key, salt = "teleconsult e2ee data v1", info = "vital-signs", 16 bytes)
 */
const SALT = new TextEncoder().encode('teleconsult e2ee data v1');
const INFO = new TextEncoder().encode('vital-signs');

export async function deriveDataKey(
  senderKey: Uint8Array,
  subtle: SubtleCrypto = globalThis.crypto.subtle,
): Promise<Uint8Array<ArrayBuffer>> {
  const ikm = await subtle.importKey('raw', new Uint8Array(senderKey), 'HKDF', false, ['deriveBits']);
  const bits = await subtle.deriveBits({ name: 'HKDF', hash: 'SHA-256', salt: SALT, info: INFO }, ikm, 128);
  return new Uint8Array(bits);
}
