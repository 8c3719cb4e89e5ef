/**
 * Which consultation (room) ids the journal accepts: the room ids the REST API accepts
 * (`[A-Za-z0-9_.:-]`, here up to 128), less '.' and '..', so an id is always a plain file name.
 */
const PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

export function isConsultationId(value: unknown): value is string {
  return typeof value === 'string' && PATTERN.test(value) && value !== '.' && value !== '..';
}
