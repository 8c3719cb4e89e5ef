import { Type, type Static } from '@sinclair/typebox';

/**
 * The one description of every configuration key: its type, bounds and default. `config/default.json`
 * is generated from these defaults and documented in the README.
 */
const NullableString = (description?: string) =>
  Type.Union([Type.String({ minLength: 1 }), Type.Null()], { default: null, description });
const Section = <T extends Parameters<typeof Type.Object>[0]>(properties: T) =>
  Type.Object(properties, { default: {}, additionalProperties: false });

export const ConfigSchema = Type.Object(
  {
    server: Section({
      listenHost: Type.String({
        default: '127.0.0.1',
        description: 'Address the HTTP/WebSocket server binds.',
      }),
      port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
      publicUrl: Type.Union([Type.String({ format: 'uri' }), Type.Null()], {
        default: null,
        description:
          'Base URL clients use (links in invitations); derived from the listen address when null.',
      }),
      tlsCertFile: NullableString(),
      tlsKeyFile: NullableString(),
      shutdownDeadlineS: Type.Integer({ minimum: 0, maximum: 86400, default: 30 }),
      demoPage: Type.Boolean({
        default: true,
        description: 'Serve the try-it page at / with a demo endpoint that creates consultations.',
      }),
    }),
    media: Section({
      workers: Type.Integer({ minimum: 0, maximum: 256, default: 0, description: '0 means one per core.' }),
      workerLogLevel: Type.Union(
        [Type.Literal('debug'), Type.Literal('warn'), Type.Literal('error'), Type.Literal('none')],
        {
          default: 'error',
        },
      ),
      listenIp: Type.String({ default: '127.0.0.1', description: 'Address media sockets bind.' }),
      announcedAddress: Type.Union([Type.String(), Type.Null()], {
        default: null,
        description: 'Public address put in ICE candidates (behind NAT or in Kubernetes).',
      }),
      webRtcServerPort: Type.Integer({
        minimum: 0,
        maximum: 65535,
        default: 40000,
        description:
          'First UDP+TCP port of the per-worker WebRtcServer (worker i listens on port+i); 0 disables it.',
      }),
      rtcMinPort: Type.Integer({
        minimum: 1024,
        maximum: 65535,
        default: 40100,
        description:
          'Port range for transports that do not use the WebRtcServer (plain transports for the phone gateway).',
      }),
      rtcMaxPort: Type.Integer({ minimum: 1024, maximum: 65535, default: 49999 }),
      dtlsCertFile: NullableString(),
      dtlsKeyFile: NullableString(),
      initialOutgoingBitrate: Type.Integer({ minimum: 100000, maximum: 100000000, default: 1000000 }),
      maxIncomingBitrate: Type.Integer({ minimum: 100000, maximum: 100000000, default: 3000000 }),
    }),
    auth: Section({
      tokenSecret: NullableString(),
      jwksFile: NullableString(),
      jwksUrl: NullableString(),
      tokenIssuer: NullableString(),
      tokenAudience: Type.String({ default: 'teleconsult-sfu' }),
      maxTokenLifetimeS: Type.Integer({ minimum: 10, maximum: 86400, default: 600 }),
      apiKeys: Type.Array(Type.String({ minLength: 16 }), { default: [] }),
      resumeGraceS: Type.Integer({ minimum: 0, maximum: 3600, default: 30 }),
    }),
    limits: Section({
      wsMaxPayloadBytes: Type.Integer({ minimum: 1024, maximum: 16777216, default: 65536 }),
      messagesPerSecond: Type.Integer({ minimum: 1, maximum: 100000, default: 100 }),
      connectionsPerAddress: Type.Integer({ minimum: 1, maximum: 1000000, default: 50 }),
      authTimeoutMs: Type.Integer({ minimum: 100, maximum: 600000, default: 10000 }),
      maxRooms: Type.Integer({ minimum: 1, maximum: 1000000, default: 10000 }),
      maxParticipantsPerRoom: Type.Integer({ minimum: 2, maximum: 1000, default: 8 }),
      maxTransportsPerParticipant: Type.Integer({ minimum: 1, maximum: 16, default: 4 }),
      maxProducersPerParticipant: Type.Integer({ minimum: 1, maximum: 64, default: 8 }),
      maxConsumersPerParticipant: Type.Integer({ minimum: 1, maximum: 1000, default: 64 }),
    }),
    log: Section({
      level: Type.Union(
        ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
        { default: 'info' },
      ),
    }),
    journal: Section({
      dir: Type.String({ default: './data', description: 'Where journals and the webhook outbox live.' }),
      retentionDays: Type.Integer({ minimum: 1, maximum: 3650, default: 30 }),
    }),
    webhooks: Section({
      url: NullableString(),
      secret: NullableString(),
    }),
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;
