import {
  CreateInvitationBody,
  CreateRoomBody,
  DialOutBody,
  ErrorView,
  InvitationView,
  PhoneCallView,
  RoomView,
} from './schemas.js';
import { ConsentTextInput } from '../consent/consentRegistry.js';

const json = (schema: unknown) => ({ content: { 'application/json': { schema } } });
const errors = {
  '400': { description: 'Invalid body (MESSAGE_INVALID)', ...json(ErrorView) },
  '401': { description: 'Missing or invalid API key (API_KEY_INVALID)', ...json(ErrorView) },
  '404': { description: 'No such room or participant (NOT_FOUND)', ...json(ErrorView) },
};
const roomIdParam = { name: 'roomId', in: 'path', required: true, schema: { type: 'string' } };
const callIdParam = { name: 'callId', in: 'path', required: true, schema: { type: 'string' } };
const phoneErrors = {
  ...errors,
  '403': {
    description: 'The room does not allow phone participants (FORBIDDEN_FOR_ROLE)',
    ...json(ErrorView),
  },
  '404': {
    description: 'No such room (an ended room included), call, or the phone gateway is disabled (NOT_FOUND)',
    ...json(ErrorView),
  },
};

/** The OpenAPI 3.1 document served at /openapi.json, built from the same schemas that validate. */
export function openApiDocument(version: string) {
  return {
    openapi: '3.1.0',
    info: {
      title: 'teleconsult-sfu platform API',
      version,
      description:
        'Rooms, invitations and participants for platform backends. Authenticate with `Authorization: Bearer <API key>`.',
    },
    components: {
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' } },
    },
    security: [{ apiKey: [] }],
    paths: {
      '/v1/rooms': {
        post: {
          summary: 'Create a consultation room',
          requestBody: { required: false, ...json(CreateRoomBody) },
          responses: {
            '201': { description: 'Created', ...json(RoomView) },
            ...errors,
            '409': {
              description:
                'ROOM_ID_TAKEN: the roomId names a consultation that already has a journal (ended, open, or moved aside as corrupt); ids are never reused',
              ...json(ErrorView),
            },
          },
        },
        get: {
          summary: 'List rooms',
          responses: {
            '200': { description: 'Rooms', ...json({ type: 'array', items: RoomView }) },
            ...errors,
          },
        },
      },
      '/v1/rooms/{roomId}': {
        parameters: [roomIdParam],
        get: {
          summary: 'Get a room',
          responses: { '200': { description: 'Room', ...json(RoomView) }, ...errors },
        },
        delete: { summary: 'End a room', responses: { '204': { description: 'Ended' }, ...errors } },
      },
      '/v1/rooms/{roomId}/invitations': {
        parameters: [roomIdParam],
        post: {
          summary: 'Issue a single-use join token and link for one invitee',
          description:
            "The answer also carries `accessCode`, an 8-digit single-use code: typed in the join page instead of the link, or keyed in as the PIN when dialling in by phone (the caller then joins with this invitation's role).",
          requestBody: { required: true, ...json(CreateInvitationBody) },
          responses: { '201': { description: 'Invitation', ...json(InvitationView) }, ...errors },
        },
      },
      '/v1/rooms/{roomId}/phone-calls': {
        parameters: [roomIdParam],
        post: {
          summary: 'Call a phone into the room (dial-out, phone-audio fallback)',
          description:
            "The server calls `to` through the SIP trunk. The person called joins with `role` (default patient): after the spoken notice, a patient consents by pressing 1; other roles are not asked. Then the waiting room and admission apply as for everyone. The answer states the call's state (`ringing`); follow it with GET or the phone.call.answered / phone.call.failed / phone.call.ended webhooks. A phone participant is not end-to-end encrypted; the others are told.",
          requestBody: { required: true, ...json(DialOutBody) },
          responses: { '201': { description: 'Calling', ...json(PhoneCallView) }, ...phoneErrors },
        },
      },
      '/v1/rooms/{roomId}/phone-calls/{callId}': {
        parameters: [roomIdParam, callIdParam],
        get: {
          summary: "A phone call's state (in progress, or among the last 1024 ended)",
          responses: { '200': { description: 'Call', ...json(PhoneCallView) }, ...phoneErrors },
        },
        delete: {
          summary: 'Hang up: CANCEL while it rings (state failed, reason cancelled), BYE after (state ended)',
          responses: { '200': { description: 'Final state', ...json(PhoneCallView) }, ...phoneErrors },
        },
      },
      '/v1/rooms/{roomId}/participants': {
        parameters: [roomIdParam],
        get: {
          summary: 'List participants',
          responses: { '200': { description: 'Participants' }, ...errors },
        },
      },
      '/v1/rooms/{roomId}/participants/{participantId}': {
        parameters: [
          roomIdParam,
          { name: 'participantId', in: 'path', required: true, schema: { type: 'string' } },
        ],
        delete: {
          summary: 'Remove a participant',
          responses: { '204': { description: 'Removed' }, ...errors },
        },
      },
      '/v1/rooms/{roomId}/journal': {
        parameters: [roomIdParam],
        get: {
          summary:
            'Export the consultation journal (hash-chained records and their verification); available after the room ended',
          responses: {
            '200': {
              description:
                'Journal export; verification.ok is false (with line and reason) when a line does not parse, hash or chain, and quarantined is true when the server moved the journal aside',
            },
            ...errors,
          },
        },
      },
      '/v1/consent-texts': {
        get: {
          summary: 'List registered consent texts',
          responses: { '200': { description: 'Consent texts' }, ...errors },
        },
        post: {
          summary:
            'Register a versioned consent text for a purpose (teleconsultation, third-party, secondary-use)',
          requestBody: { required: true, ...json(ConsentTextInput) },
          responses: { '201': { description: 'Registered, with its SHA-256 hash' }, ...errors },
        },
      },
      '/admin/drain': {
        post: {
          summary: 'Stop taking new rooms and joins; readiness turns false',
          responses: { '202': { description: 'Draining' }, ...errors },
        },
      },
    },
  };
}
