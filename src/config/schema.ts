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
      port: Type.Integer({
        minimum: 0,
        maximum: 65535,
        default: 8080,
        description: 'HTTP/WebSocket port (0 picks a free port).',
      }),
      publicUrl: Type.Union([Type.String({ format: 'uri' }), Type.Null()], {
        default: null,
        description:
          'Base URL clients use (links in invitations); derived from the listen address when null.',
      }),
      joinBaseUrl: Type.Union(
        [Type.String({ pattern: '^https?://[^\\s#]+$', maxLength: 2000 }), Type.Null()],
        {
          default: null,
          description:
            'Front-end page that invitation links (joinUrl) open, e.g. https://care.example.fr/consultation; the join token goes in the URL fragment (#token=...), which browsers never send to servers. The try-it page at publicUrl when null.',
        },
      ),
      sdkCorsOrigins: Type.Array(Type.String({ minLength: 1, pattern: '^(\\*|https?://[^/]+)$' }), {
        default: [],
        maxItems: 64,
        description:
          "Origins (scheme://host[:port]) whose pages may import the SDK bundle at /sdk/ from this server (CORS); '*' for any. Empty: same origin only.",
      }),
      tlsCertFile: NullableString(
        'PEM certificate for HTTPS/WSS; plain HTTP when null (TLS at the ingress).',
      ),
      tlsKeyFile: NullableString('PEM private key for tlsCertFile.'),
      shutdownDeadlineS: Type.Integer({
        minimum: 0,
        maximum: 86400,
        default: 30,
        description: 'On SIGTERM, how long ongoing consultations may continue before rooms are closed.',
      }),
      demoPage: Type.Union([Type.Boolean(), Type.Literal('auto')], {
        default: 'auto',
        description:
          "Serve the try-it page at / with an unauthenticated demo endpoint that creates consultations; 'auto' serves it only when listenHost is a loopback address.",
      }),
    }),
    media: Section({
      workers: Type.Integer({ minimum: 0, maximum: 256, default: 0, description: '0 means one per core.' }),
      workerLogLevel: Type.Union(
        [Type.Literal('debug'), Type.Literal('warn'), Type.Literal('error'), Type.Literal('none')],
        {
          default: 'error',
          description: 'Log level of the mediasoup worker processes.',
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
      rtcMaxPort: Type.Integer({
        minimum: 1024,
        maximum: 65535,
        default: 49999,
        description: 'Last port of that range.',
      }),
      udpReceiveBufferBytes: Type.Integer({
        minimum: 0,
        maximum: 1073741824,
        default: 4194304,
        description:
          "Receive buffer of each worker UDP socket (a WebRtcServer socket carries all of its worker's transports); the kernel caps it at net.core.rmem_max; 0 keeps the kernel default.",
      }),
      iceConsentTimeoutS: Type.Union([Type.Literal(0), Type.Integer({ minimum: 10, maximum: 60 })], {
        default: 30,
        description:
          "Seconds without an ICE consent check (RFC 7675) from a peer before its transport's ICE state turns 'disconnected' and the worker stops sending to it; mediasoup accepts 10 to 60; 0 disables the check.",
      }),
      dtlsCertFile: NullableString('PEM certificate for DTLS; the worker generates one when null.'),
      dtlsKeyFile: NullableString('PEM private key for dtlsCertFile.'),
      initialOutgoingBitrate: Type.Integer({
        minimum: 100000,
        maximum: 100000000,
        default: 1000000,
        description: 'Starting send-bandwidth estimate per transport, bit/s.',
      }),
      maxIncomingBitrate: Type.Integer({
        minimum: 100000,
        maximum: 100000000,
        default: 3000000,
        description: 'Cap on what one participant may send, bit/s.',
      }),
    }),
    auth: Section({
      tokenSecret: NullableString(
        'HS256 shared secret for join tokens; a per-process random one when null (tokens then only come from this server).',
      ),
      jwksFile: NullableString('JWKS file with the platform public keys (RS256/ES256 join tokens).'),
      jwksUrl: NullableString('JWKS URL with the platform public keys.'),
      tokenIssuer: NullableString('Required `iss` of join tokens, when set.'),
      tokenAudience: Type.String({
        default: 'teleconsult-sfu',
        description: 'Required `aud` of join tokens.',
      }),
      maxTokenLifetimeS: Type.Integer({
        minimum: 10,
        maximum: 86400,
        default: 600,
        description: 'Join tokens living longer than this (exp - iat) are refused.',
      }),
      apiKeys: Type.Array(Type.String({ minLength: 16 }), {
        default: [],
        description: 'REST API keys (Bearer); one is generated per process when empty.',
      }),
      resumeGraceS: Type.Integer({
        minimum: 0,
        maximum: 3600,
        default: 30,
        description: 'How long a disconnected participant is kept for a resume.',
      }),
    }),
    limits: Section({
      wsMaxPayloadBytes: Type.Integer({
        minimum: 1024,
        maximum: 16777216,
        default: 65536,
        description: 'Largest signalling message accepted.',
      }),
      messagesPerSecond: Type.Integer({
        minimum: 1,
        maximum: 100000,
        default: 100,
        description: 'Sustained signalling messages per connection (bursts to twice that).',
      }),
      connectionsPerAddress: Type.Integer({
        minimum: 1,
        maximum: 1000000,
        default: 50,
        description: 'Open WebSockets per remote address.',
      }),
      authTimeoutMs: Type.Integer({
        minimum: 100,
        maximum: 600000,
        default: 10000,
        description: 'A connection that has not joined by then is cut.',
      }),
      maxRooms: Type.Integer({
        minimum: 1,
        maximum: 1000000,
        default: 10000,
        description: 'Rooms this process hosts at most.',
      }),
      maxParticipantsPerRoom: Type.Integer({
        minimum: 2,
        maximum: 1000,
        default: 8,
        description: "Upper bound on any room's maxParticipants option.",
      }),
      maxTransportsPerParticipant: Type.Integer({
        minimum: 1,
        maximum: 16,
        default: 4,
        description: 'WebRTC transports one participant may hold.',
      }),
      maxProducersPerParticipant: Type.Integer({
        minimum: 1,
        maximum: 64,
        default: 8,
        description: 'Producers (and data producers) one participant may hold.',
      }),
      maxConsumersPerParticipant: Type.Integer({
        minimum: 1,
        maximum: 1000,
        default: 64,
        description: 'Consumers one participant may hold.',
      }),
    }),
    dataChannels: Section({
      maxMessageBytes: Type.Integer({
        minimum: 1024,
        maximum: 262144,
        default: 16384,
        description:
          'Largest data-channel message a transport accepts (SCTP maxReceiveMessageSize: the worker drops a larger one). A vital-sign reading, encrypted, is well under 1 KiB.',
      }),
      sendQueueBytes: Type.Integer({
        minimum: 16384,
        maximum: 2000000,
        default: 262144,
        description:
          'Bytes the worker queues per data stream towards a slow receiver (SCTP per-stream send queue); beyond, messages to it are dropped.',
      }),
      checkIntervalMs: Type.Integer({
        minimum: 50,
        maximum: 5000,
        default: 250,
        description:
          "How often the server reads every data producer's counters to apply the rate limits below (one worker request per data producer per check; no per-message work in Node).",
      }),
      floodCloseS: Type.Number({
        minimum: 0.5,
        maximum: 600,
        default: 3,
        description:
          'A data producer held back by its rate limit for this long without slowing down is closed (DATA_RATE_EXCEEDED).',
      }),
      vitalSignsMessagesPerSecond: Type.Number({
        minimum: 0.1,
        maximum: 10000,
        default: 10,
        description:
          "Sustained readings per second of a vital-signs channel (token bucket); the receiving SDK's own limit, twice the sending SDK's 5/s.",
      }),
      vitalSignsMessageBurst: Type.Integer({
        minimum: 1,
        maximum: 100000,
        default: 20,
        description: 'Readings a vital-signs channel may send at once (bucket size).',
      }),
      vitalSignsBytesPerSecond: Type.Integer({
        minimum: 1024,
        maximum: 100000000,
        default: 16384,
        description: 'Sustained bytes per second of a vital-signs channel.',
      }),
      vitalSignsByteBurst: Type.Integer({
        minimum: 1024,
        maximum: 100000000,
        default: 32768,
        description: 'Bytes a vital-signs channel may send at once.',
      }),
      applicationMessagesPerSecond: Type.Number({
        minimum: 0.1,
        maximum: 10000,
        default: 50,
        description:
          'Sustained messages per second of any other data channel (an application channel from publishData, the connect-ahead warm-up channel).',
      }),
      applicationMessageBurst: Type.Integer({
        minimum: 1,
        maximum: 100000,
        default: 100,
        description: 'Messages such a channel may send at once.',
      }),
      applicationBytesPerSecond: Type.Integer({
        minimum: 1024,
        maximum: 100000000,
        default: 262144,
        description: 'Sustained bytes per second of such a channel.',
      }),
      applicationByteBurst: Type.Integer({
        minimum: 1024,
        maximum: 100000000,
        default: 524288,
        description: 'Bytes such a channel may send at once.',
      }),
    }),
    log: Section({
      level: Type.Union(
        ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
        { default: 'info', description: 'Server log level (JSON lines on stdout).' },
      ),
    }),
    journal: Section({
      dir: Type.String({ default: './data', description: 'Where journals and the webhook outbox live.' }),
      retentionDays: Type.Integer({
        minimum: 1,
        maximum: 3650,
        default: 30,
        description: 'Journals of consultations ended longer ago are deleted.',
      }),
      signingKey: NullableString(
        'Ed25519 private key (PKCS#8 PEM) that signs journal checkpoints; give it from a secret (SFU_JOURNAL__SIGNING_KEY). Takes precedence over signingKeyFile.',
      ),
      signingKeyFile: NullableString(
        'File holding that key (must exist). When both are null: <dir>/keys/journal-signing.pem, generated on first start and kept (files store only: with PostgreSQL every node needs the same key, so one of the two is required).',
      ),
      checkpointEvery: Type.Integer({
        minimum: 1,
        maximum: 10000,
        default: 64,
        description: 'A signed checkpoint is written after this many records, and after consultation.ended.',
      }),
      store: Type.Union([Type.Literal('auto'), Type.Literal('files'), Type.Literal('postgres')], {
        default: 'auto',
        description:
          'Where journals and the webhook outbox live: files under dir (one node), or PostgreSQL at postgresUrl (shared by a cluster). auto: postgres when cluster.enabled and postgresUrl is set, files otherwise.',
      }),
      postgresUrl: NullableString(
        'PostgreSQL URL (postgresql://user:password@host:port/db) of the journal database; give it from a secret (SFU_JOURNAL__POSTGRES_URL).',
      ),
      postgresPoolSize: Type.Integer({
        minimum: 1,
        maximum: 100,
        default: 10,
        description: 'Connections this node opens to the journal database.',
      }),
      previousPublicKeys: Type.Array(Type.String({ pattern: '^[A-Za-z0-9_-]{43}$' }), {
        default: [],
        maxItems: 32,
        description:
          'Retired signing keys (raw Ed25519 public keys, base64url) whose checkpoints still verify; published at /.well-known/teleconsult-journal-keys.json with the current key.',
      }),
    }),
    webhooks: Section({
      url: NullableString('Platform endpoint that receives signed webhooks; none are sent when null.'),
      secret: NullableString('HMAC-SHA256 key for the Webhook-Signature header.'),
    }),
    quality: Section({
      enabled: Type.Boolean({
        default: true,
        description: 'Adapt video layers to each receiver, degrade to audio only, and push network quality.',
      }),
      sampleIntervalMs: Type.Integer({
        minimum: 200,
        maximum: 60000,
        default: 1000,
        description:
          "How often a room decides each receiver's layers and media mode from the pushed bandwidth estimate.",
      }),
      statsIntervalMs: Type.Integer({
        minimum: 200,
        maximum: 600000,
        default: 5000,
        description:
          'How often round-trip time, loss, jitter and layer bitrates are fetched per participant (one stats request per transport); every sampleIntervalMs while its link looks weak.',
      }),
      reportIntervalMs: Type.Integer({
        minimum: 500,
        maximum: 600000,
        default: 2000,
        description:
          'How often qualityUpdate is pushed to a participant and to the practitioners when a figure changed (at least every 5 intervals).',
      }),
      layerKbps: Type.Array(Type.Number({ minimum: 1, maximum: 100000 }), {
        minItems: 1,
        maxItems: 4,
        default: [150, 500, 1500],
        description: 'Bitrate of each simulcast layer, lowest first, while the real one is not yet measured.',
      }),
      layerHeights: Type.Array(Type.Integer({ minimum: 1, maximum: 8192 }), {
        minItems: 1,
        maxItems: 4,
        default: [180, 360, 720],
        description: 'Picture height of each simulcast layer, lowest first (render size to layer).',
      }),
      audioKbps: Type.Number({
        minimum: 0,
        maximum: 1000,
        default: 64,
        description: 'Bandwidth kept for each received audio stream (Opus and packet overhead).',
      }),
      upHeadroom: Type.Number({
        minimum: 1,
        maximum: 4,
        default: 1.25,
        description: 'A higher layer (or video after audio only) needs estimate >= its bitrate x this.',
      }),
      downDwellMs: Type.Integer({
        minimum: 0,
        maximum: 60000,
        default: 1000,
        description: 'How long the estimate must stay too low before a layer goes down or video pauses.',
      }),
      upDwellMs: Type.Integer({
        minimum: 0,
        maximum: 600000,
        default: 4000,
        description: 'How long the estimate must carry a higher layer before it is forwarded.',
      }),
      audioOnlyUpDwellMs: Type.Integer({
        minimum: 0,
        maximum: 600000,
        default: 8000,
        description: 'How long the estimate must carry the lowest video layer before video resumes.',
      }),
      keyframeMinIntervalMs: Type.Integer({
        minimum: 0,
        maximum: 60000,
        default: 1000,
        description: 'At most one keyframe request per sender stream in this interval.',
      }),
      uplinkLossDown: Type.Number({
        minimum: 0,
        maximum: 1,
        default: 0.08,
        description: 'Sender loss ratio above which the sender is advised to drop its top layer.',
      }),
      uplinkLossUp: Type.Number({
        minimum: 0,
        maximum: 1,
        default: 0.02,
        description: 'Sender loss ratio below which (for audioOnlyUpDwellMs) a dropped layer comes back.',
      }),
      uplinkJitterDownMs: Type.Number({
        minimum: 0,
        maximum: 10000,
        default: 80,
        description: 'Sender jitter above which the sender is advised to drop its top layer.',
      }),
      scoreRttMs: Type.Array(Type.Number({ minimum: 0 }), {
        minItems: 5,
        maxItems: 5,
        default: [150, 300, 500, 800, 1500],
        description: 'Round-trip times under which the score may be 5, 4, 3, 2, 1 (else 0).',
      }),
      scoreLossRatio: Type.Array(Type.Number({ minimum: 0, maximum: 1 }), {
        minItems: 5,
        maxItems: 5,
        default: [0.01, 0.03, 0.06, 0.12, 0.25],
        description: 'Loss ratios under which the score may be 5, 4, 3, 2, 1 (else 0).',
      }),
      scoreJitterMs: Type.Array(Type.Number({ minimum: 0 }), {
        minItems: 5,
        maxItems: 5,
        default: [20, 40, 70, 120, 250],
        description: 'Jitters under which the score may be 5, 4, 3, 2, 1 (else 0).',
      }),
      poorScore: Type.Integer({
        minimum: 0,
        maximum: 4,
        default: 1,
        description: 'A score at or below this is poor.',
      }),
      poorForMs: Type.Integer({
        minimum: 0,
        maximum: 3600000,
        default: 10000,
        description: "Poor this long: a 'network-poor' incident and suggestPhoneFallback.",
      }),
      recoveredForMs: Type.Integer({
        minimum: 0,
        maximum: 3600000,
        default: 15000,
        description: 'Better than poor this long: suggestPhoneFallback clears, a new incident may follow.',
      }),
    }),
    cluster: Section({
      enabled: Type.Boolean({
        default: false,
        description:
          'Cluster mode: rooms spread over several nodes sharing a Redis; off, one node with no Redis (docs/cluster.md).',
      }),
      redisUrl: NullableString(
        'Redis URL (redis://[:password@]host:port/db) shared by the nodes of a cluster.',
      ),
      nodeId: NullableString(
        "This node's id in the cluster (the pod name under Helm); the host name when null.",
      ),
      nodeUrl: Type.Union([Type.String({ pattern: '^https?://[^/]+$' }), Type.Null()], {
        default: null,
        description:
          'Base URL (scheme://host[:port]) at which clients reach this very node, the redirect target; server.publicUrl when null.',
      }),
      keyPrefix: Type.String({
        minLength: 1,
        maxLength: 64,
        default: 'tcsfu:',
        description: 'Prefix of every Redis key, so several clusters may share one Redis.',
      }),
      heartbeatMs: Type.Integer({
        minimum: 100,
        maximum: 60000,
        default: 2000,
        description: 'How often a node renews its registration and load in Redis.',
      }),
      nodeTtlMs: Type.Integer({
        minimum: 300,
        maximum: 600000,
        default: 10000,
        description: 'A node silent this long is dead: its rooms move to live nodes.',
      }),
      spanConsumersPerRouter: Type.Integer({
        minimum: 0,
        maximum: 100000,
        default: 0,
        description:
          "Within a node: once a room's router carries this many consumers, new receivers get theirs from a piped router on another worker; 0 never spans.",
      }),
    }),
    turn: Section({
      urls: Type.Array(Type.String({ minLength: 5, maxLength: 256, pattern: '^turns?:' }), {
        maxItems: 8,
        default: [],
        description: 'TURN server URLs handed to clients with each join; none when empty.',
      }),
      sharedSecret: NullableString(
        "coturn's static-auth-secret: credentials are derived from it (REST API scheme); no TURN when null.",
      ),
      credentialTtlS: Type.Integer({
        minimum: 60,
        maximum: 172800,
        default: 3600,
        description: 'Lifetime of the TURN credentials; must outlive the longest consultation.',
      }),
    }),
    phone: Section({
      enabled: Type.Boolean({ default: false, description: 'Run the SIP gateway (phone-audio fallback).' }),
      sipListenHost: Type.String({ default: '127.0.0.1', description: 'Address the SIP sockets bind.' }),
      sipUdpPort: Type.Union([Type.Integer({ minimum: 0, maximum: 65535 }), Type.Null()], {
        default: 5060,
        description: 'SIP over UDP; null disables it, 0 picks a free port.',
      }),
      sipTcpPort: Type.Union([Type.Integer({ minimum: 0, maximum: 65535 }), Type.Null()], {
        default: 5060,
        description: 'SIP over TCP; null disables it, 0 picks a free port.',
      }),
      sipTlsPort: Type.Union([Type.Integer({ minimum: 0, maximum: 65535 }), Type.Null()], {
        default: null,
        description: 'SIP over TLS (needs sipTlsCertFile and sipTlsKeyFile); null disables it.',
      }),
      sipTlsCertFile: NullableString('PEM certificate for SIP over TLS.'),
      sipTlsKeyFile: NullableString('PEM private key for SIP over TLS.'),
      sipTlsCaFile: NullableString(
        "PEM certificates trusted when the gateway connects over TLS (dial-out, registration) in place of the system's CAs; the peer's certificate must also name the host or address dialled.",
      ),
      sipPublicHost: NullableString(
        'Host put in Via and Contact (public name or address); sipListenHost when null.',
      ),
      sipMaxConnections: Type.Integer({
        minimum: 1,
        maximum: 100000,
        default: 256,
        description: 'SIP connections over TCP and TLS open at once; more are closed at once.',
      }),
      rtpListenHost: Type.String({
        default: '127.0.0.1',
        description: 'Address the phone-facing RTP sockets bind.',
      }),
      rtpAnnouncedAddress: NullableString('Address written in SDP for phone RTP; rtpListenHost when null.'),
      rtpMinPort: Type.Integer({
        minimum: 0,
        maximum: 65535,
        default: 50000,
        description: 'First phone-facing RTP port (0 and 0: any free port).',
      }),
      rtpMaxPort: Type.Integer({
        minimum: 0,
        maximum: 65535,
        default: 50999,
        description: 'Last phone-facing RTP port.',
      }),
      rtpSymmetric: Type.Boolean({
        default: false,
        description:
          "Symmetric RTP (latching): the first RTP packet fixes the address the phone's media is accepted from and sent to, whatever its SDP says (trunks behind NAT), and moves with that stream (same SSRC) when a NAT rebinds it after 500 ms of silence from the old address; when false, only the SDP address.",
      }),
      srtp: Type.Union([Type.Literal('off'), Type.Literal('offered'), Type.Literal('required')], {
        default: 'offered',
        description:
          "SRTP towards the trunk (SDES, AES_CM_128_HMAC_SHA1_80, only over SIP TLS): 'offered' accepts RTP/SAVP offers that come over TLS and offers SRTP when dialling out over TLS (plain RTP again after a 488), 'required' also refuses plain RTP offers (488) and dials out only over TLS with SRTP, 'off' refuses RTP/SAVP and offers plain RTP.",
      }),
      mediaTimeoutS: Type.Integer({
        minimum: 10,
        maximum: 3600,
        default: 60,
        description: 'A call without RTP from the phone for this long is ended.',
      }),
      trunkAllowedSources: Type.Array(Type.String({ minLength: 2, maxLength: 64 }), {
        default: [],
        maxItems: 256,
        description: "Source IPs trusted to send SIP requests (the operator's SBC or trunk).",
      }),
      outboundProxy: NullableString('Where dial-out INVITEs go (sip:host:port;transport=udp).'),
      authUsername: NullableString('Username for digest challenges (dial-out, registration).'),
      authPassword: NullableString('Password for digest challenges (needs authUsername).'),
      fromUser: Type.String({
        default: 'teleconsult',
        minLength: 1,
        maxLength: 64,
        pattern: '^[A-Za-z0-9+._-]+$',
        description: 'Caller ID user part of dial-out calls.',
      }),
      registrar: NullableString('Registrar URI (needs aor); trunk-by-address only when null.'),
      aor: NullableString('Address of record to register (needs registrar).'),
      registrationExpiresS: Type.Integer({
        minimum: 60,
        maximum: 86400,
        default: 600,
        description: 'REGISTER expiry.',
      }),
      pinMaxAttemptsPerCall: Type.Integer({
        minimum: 1,
        maximum: 10,
        default: 3,
        description: 'Wrong PINs (invitation access codes) in one call before hang-up.',
      }),
      pinDigitTimeoutS: Type.Integer({
        minimum: 2,
        maximum: 60,
        default: 10,
        description: 'Silence that ends a PIN entry (a partial PIN then counts as an attempt).',
      }),
      pinCallerMaxFailures: Type.Integer({
        minimum: 1,
        maximum: 1000,
        default: 6,
        description:
          'Wrong PINs from one caller number within pinCallerWindowS before that number is locked out (anonymous callers: global budget only).',
      }),
      pinCallerWindowS: Type.Integer({
        minimum: 10,
        maximum: 86400,
        default: 900,
        description: 'Sliding window of pinCallerMaxFailures.',
      }),
      pinCallerLockoutS: Type.Integer({
        minimum: 10,
        maximum: 86400,
        default: 900,
        description: 'How long a caller number stays locked out.',
      }),
      pinGlobalAttemptsPerMinute: Type.Integer({
        minimum: 1,
        maximum: 6000,
        default: 60,
        description:
          'PIN checks per minute from all callers together; beyond it callers wait their turn (first come, first served) and sfu_sip_pin_budget_exhausted turns 1.',
      }),
      pinGlobalBurst: Type.Integer({
        minimum: 1,
        maximum: 1000,
        default: 10,
        description: 'PIN checks allowed at once above the steady rate before callers wait.',
      }),
      language: Type.Union([Type.Literal('fr'), Type.Literal('en')], {
        default: 'fr',
        description: 'Language of the prompts.',
      }),
      noticeVersion: Type.String({
        default: 'phone-notice-1',
        minLength: 1,
        maxLength: 32,
        description: 'Version of the spoken notice a phone consent refers to.',
      }),
      maxCalls: Type.Integer({
        minimum: 1,
        maximum: 10000,
        default: 50,
        description: 'Concurrent phone calls; further INVITEs get 486 and dial-out requests fail.',
      }),
      consentTimeoutS: Type.Integer({
        minimum: 5,
        maximum: 300,
        default: 30,
        description: 'Time to press 1 after the consent question before the call ends.',
      }),
      ringTimeoutS: Type.Integer({
        minimum: 5,
        maximum: 600,
        default: 60,
        description: 'How long a dial-out call may ring before it is cancelled.',
      }),
    }),
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;
