import type { TeleconsultErrorCode } from './errors.js';

/** Languages the SDK's display messages come in. French is the default: users are in France. */
export type Locale = 'fr' | 'en';

/**
 * Display messages by error code. Typed against every code, so a code added to the server's
 * catalogue without a translation here fails the build. Messages carry no personal data.
 */
const MESSAGES: Record<TeleconsultErrorCode, { fr: string; en: string }> = {
  MESSAGE_MALFORMED: {
    fr: 'Le message envoyé au serveur est illisible.',
    en: 'The message sent to the server is not valid JSON.',
  },
  MESSAGE_INVALID: {
    fr: 'Le message envoyé au serveur ne respecte pas le protocole.',
    en: 'The message does not match the protocol schema.',
  },
  MESSAGE_TOO_LARGE: {
    fr: 'Le message envoyé est trop volumineux.',
    en: 'The message exceeds the size limit.',
  },
  METHOD_UNKNOWN: {
    fr: "Cette opération n'existe pas dans cette version du protocole.",
    en: 'The method is not part of this protocol version.',
  },
  PROTOCOL_VERSION_UNSUPPORTED: {
    fr: "Cette version de l'application n'est plus prise en charge ; veuillez la mettre à jour.",
    en: 'This protocol version is not supported; please update the application.',
  },
  RATE_LIMITED: { fr: 'Trop de demandes ; veuillez patienter.', en: 'Too many requests; please slow down.' },
  TOO_MANY_CONNECTIONS: {
    fr: 'Trop de connexions depuis ce réseau.',
    en: 'Too many connections from this network.',
  },
  AUTH_REQUIRED: { fr: "Vous n'avez pas encore rejoint la consultation.", en: 'Join the room first.' },
  AUTH_TIMEOUT: {
    fr: "La connexion n'a pas été authentifiée à temps.",
    en: 'No join request arrived in time.',
  },
  ALREADY_JOINED: {
    fr: 'Vous avez déjà rejoint la consultation.',
    en: 'This connection has already joined a room.',
  },
  ACCESS_DENIED: {
    fr: "Ce lien de consultation n'est pas valide, a expiré ou a déjà été utilisé.",
    en: 'This consultation link is invalid, expired or already used.',
  },
  RESUME_REJECTED: {
    fr: 'La connexion a été perdue trop longtemps ; veuillez rejoindre la consultation à nouveau.',
    en: 'The connection was lost for too long; please join the consultation again.',
  },
  API_KEY_INVALID: { fr: "La clé d'API est absente ou invalide.", en: 'The API key is missing or invalid.' },
  NOT_FOUND: { fr: 'Élément introuvable.', en: 'No such resource.' },
  ROOM_FULL: { fr: 'La consultation est complète.', en: 'The consultation is full.' },
  ROOM_CLOSED: { fr: 'La consultation est terminée.', en: 'The consultation has ended.' },
  ROOM_ID_TAKEN: {
    fr: 'Cet identifiant de consultation a déjà servi ; utilisez-en un nouveau.',
    en: 'This consultation id has already been used; use a new one.',
  },
  ROOM_LIMIT_REACHED: {
    fr: 'Le service est saturé ; veuillez réessayer dans quelques minutes.',
    en: 'The service is at capacity; please try again in a few minutes.',
  },
  NOT_ADMITTED: {
    fr: "Vous êtes en salle d'attente : le praticien va vous admettre.",
    en: 'You are in the waiting room: the practitioner will admit you.',
  },
  FORBIDDEN_FOR_ROLE: {
    fr: 'Votre rôle ne permet pas cette opération.',
    en: 'Your role does not allow this operation.',
  },
  INVALID_STATE: {
    fr: "Cette opération n'est pas possible pour le moment.",
    en: 'The operation is not allowed in the current state.',
  },
  CONSENT_REQUIRED: {
    fr: "Le consentement du patient est nécessaire avant l'admission.",
    en: "The patient's consent is required before admission.",
  },
  LIMIT_EXCEEDED: { fr: 'Limite de flux atteinte.', en: 'A per-participant media limit is reached.' },
  DATA_RATE_EXCEEDED: {
    fr: 'Canal de données fermé par le serveur : trop de messages.',
    en: 'A data channel sent too many messages and was closed by the server.',
  },
  TRANSPORT_NOT_FOUND: { fr: 'Connexion média introuvable.', en: 'No such media transport.' },
  PRODUCER_NOT_FOUND: { fr: 'Flux introuvable.', en: 'No such published stream.' },
  CONSUMER_NOT_FOUND: { fr: 'Flux reçu introuvable.', en: 'No such received stream.' },
  DATA_PRODUCER_NOT_FOUND: { fr: 'Canal de données introuvable.', en: 'No such data channel.' },
  CANNOT_CONSUME: {
    fr: 'Votre navigateur ne peut pas décoder ce flux.',
    en: 'Your browser cannot decode this stream.',
  },
  DTLS_PARAMETERS_INVALID: {
    fr: 'Paramètres de chiffrement invalides.',
    en: 'The DTLS parameters are invalid.',
  },
  RTP_PARAMETERS_INVALID: { fr: 'Paramètres média invalides.', en: 'The RTP parameters are invalid.' },
  E2EE_REQUIRED: {
    fr: 'Cette consultation exige un chiffrement de bout en bout que votre navigateur ne prend pas en charge.',
    en: 'This consultation requires end-to-end encryption, which your browser does not support.',
  },
  SERVER_DRAINING: {
    fr: 'Le serveur est en maintenance ; veuillez réessayer.',
    en: 'The server is under maintenance; please try again.',
  },
  ROOM_ELSEWHERE: {
    fr: 'La consultation se trouve sur un autre serveur ; connexion en cours.',
    en: 'The consultation is hosted by another server; connecting there.',
  },
  MEDIA_UNAVAILABLE: {
    fr: 'Le service vidéo est momentanément indisponible.',
    en: 'The video service is temporarily unavailable.',
  },
  CLUSTER_UNAVAILABLE: {
    fr: 'Le service est momentanément indisponible ; veuillez réessayer.',
    en: 'The service is temporarily unavailable; please try again.',
  },
  INTERNAL: { fr: 'Une erreur interne est survenue.', en: 'An internal error occurred.' },
  REQUEST_TIMEOUT: {
    fr: 'Le serveur ne répond pas ; vérifiez votre connexion.',
    en: 'The server did not answer in time; check your connection.',
  },
  CONNECTION_FAILED: {
    fr: 'Impossible de joindre le serveur de consultation.',
    en: 'Cannot reach the consultation server.',
  },
  CONNECTION_LOST: {
    fr: 'La connexion au serveur a été perdue.',
    en: 'The connection to the server was lost.',
  },
  NOT_CONNECTED: {
    fr: "Vous n'êtes plus connecté à la consultation.",
    en: 'You are no longer connected to the consultation.',
  },
  ACCESS_CODE_INVALID: {
    fr: "Le code d'accès se compose de 8 chiffres ; vérifiez-le.",
    en: 'An access code has 8 digits; please check it.',
  },
  DECLINED: {
    fr: "Le praticien n'a pas admis votre participation.",
    en: 'The practitioner declined your admission.',
  },
  REMOVED: { fr: 'Vous avez été retiré de la consultation.', en: 'You were removed from the consultation.' },
  SESSION_REPLACED: {
    fr: 'La consultation a été ouverte dans une autre fenêtre.',
    en: 'The consultation was opened in another window.',
  },
  DEVICE_NOT_SUPPORTED: {
    fr: 'Ce navigateur ne permet pas la vidéo ; utilisez une version récente de Chrome, Firefox, Edge ou Safari.',
    en: 'This browser cannot do video calls; use a recent Chrome, Firefox, Edge or Safari.',
  },
  MEDIA_PERMISSION_DENIED: {
    fr: "L'accès à la caméra ou au micro a été refusé ; autorisez-le dans les réglages du navigateur.",
    en: 'Access to the camera or microphone was denied; allow it in the browser settings.',
  },
  MEDIA_DEVICE_NOT_FOUND: {
    fr: 'Aucune caméra ou aucun micro correspondant n’a été trouvé.',
    en: 'No matching camera or microphone was found.',
  },
  MEDIA_DEVICE_ERROR: {
    fr: 'La caméra ou le micro est indisponible (peut-être utilisé par une autre application).',
    en: 'The camera or microphone is unavailable (perhaps in use by another application).',
  },
  WEBRTC_ERROR: { fr: 'Erreur de la connexion audio-vidéo.', en: 'The audio/video connection failed.' },
  UNEXPECTED_RESPONSE: {
    fr: 'Réponse inattendue du serveur.',
    en: 'The server sent an unexpected response.',
  },
  E2EE_KEY_MISSING: {
    fr: 'Le chiffrement de bout en bout n’est pas encore prêt ; rien n’a été envoyé.',
    en: 'End-to-end encryption is not ready yet; nothing was sent.',
  },
  VITAL_SIGN_INVALID: {
    fr: 'Mesure refusée : elle ne respecte pas le format attendu.',
    en: 'Reading refused: it does not match the expected format.',
  },
  VITAL_SIGN_RATE_LIMITED: {
    fr: 'Trop de mesures envoyées ; mesure ignorée.',
    en: 'Too many readings; this one was dropped.',
  },
  VITAL_SIGN_NOT_ENCRYPTED: {
    fr: 'Mesure reçue sans chiffrement de bout en bout ; ignorée.',
    en: 'A reading arrived without end-to-end encryption; dropped.',
  },
  VITAL_SIGN_UNREADABLE: {
    fr: 'Mesure chiffrée illisible (clé manquante ou incorrecte) ; ignorée.',
    en: 'An encrypted reading could not be read (missing or wrong key); dropped.',
  },
  VITAL_SIGN_OUT_OF_ORDER: {
    fr: 'Mesure reçue en double ou dans le désordre ; ignorée.',
    en: 'A reading arrived twice or out of order; dropped.',
  },
  UNKNOWN: { fr: 'Une erreur inconnue est survenue.', en: 'An unknown error occurred.' },
};

export function messageFor(code: TeleconsultErrorCode, locale: Locale): string {
  const entry = hasMessage(code) ? MESSAGES[code] : MESSAGES.UNKNOWN;
  return entry[locale] ?? entry.fr;
}

export function hasMessage(code: string): code is TeleconsultErrorCode {
  return Object.prototype.hasOwnProperty.call(MESSAGES, code);
}
