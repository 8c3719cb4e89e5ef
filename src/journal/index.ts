/** Public surface of the consultation journal. */
export { JournalStore as FileJournalStore, JOURNAL_EXPORT_FORMAT } from './journalStore.js';
export { PgJournalStore } from './pgJournalStore.js';
/** Either store: what the room code, the REST layer and the webhooks use. */
export type { JournalStorage as JournalStore } from './storage.js';
export type { JournalExport, JournalIncident, JournalStoreOptions } from './journalStore.js';
export { JournalError, isJournalError } from './errors.js';
export type { JournalCorruption, JournalErrorCode } from './errors.js';
export {
  JournalEventSchemas,
  JOURNAL_EVENT_TYPES,
  IncidentKind,
  IdentityStatus,
  ConsentReference,
  ProfessionalIdentity,
  isJournalEventType,
} from './events.js';
export type { JournalEventType, JournalEventData } from './events.js';
export { verifyChain, genesisHash, recordHash, parseRecord } from './chain.js';
export type { JournalRecord, ChainVerification } from './chain.js';
export { verifyJournalDirectory, verifyJournalFile } from './verifyFiles.js';
export type { JournalFileReport } from './verifyFiles.js';
export { isConsultationId } from './consultationId.js';
