#!/usr/bin/env bash
# Generates the phone gateway's spoken prompts with espeak-ng and sox:
# assets/prompts/<lang>/<name>.ulaw, 8 kHz mono G.711 mu-law, headerless (what the gateway sends as RTP).
# Re-runnable: every file is rewritten from the texts below. Needs: apt-get install espeak-ng sox.
set -euo pipefail

out_dir="$(cd "$(dirname "$0")/.." && pwd)/assets/prompts"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for tool in espeak-ng sox; do
  command -v "$tool" >/dev/null || { echo "make-prompts: $tool is missing (apt-get install espeak-ng sox)" >&2; exit 1; }
done

declare -A fr=(
  [welcome]="Bienvenue sur le service de téléconsultation. Entrez votre code, suivi de la touche dièse."
  [pin-invalid]="Ce code n'est pas reconnu. Entrez à nouveau votre code, suivi de la touche dièse."
  [pin-failed]="Ce code n'est pas reconnu. Nous ne pouvons pas donner suite à votre appel. Au revoir."
  [locked]="Trop de tentatives. Veuillez réessayer plus tard. Au revoir."
  [notice]="Vous allez rejoindre une téléconsultation par téléphone. Le son de votre appel n'est pas chiffré de bout en bout, et les autres participants en sont informés."
  [dial-out-intro]="Bonjour. Vous êtes appelé pour une téléconsultation."
  [consent]="Pour accepter, appuyez sur 1. Sinon, raccrochez."
  [waiting]="Merci. Veuillez patienter, le professionnel de santé va vous admettre."
  [admitted]="Vous êtes en consultation."
  [declined]="La consultation n'est pas disponible. Au revoir."
  [goodbye]="Au revoir."
)
declare -A en=(
  [welcome]="Welcome to the teleconsultation service. Enter your code, followed by the hash key."
  [pin-invalid]="This code is not recognised. Enter your code again, followed by the hash key."
  [pin-failed]="This code is not recognised. We cannot continue with your call. Goodbye."
  [locked]="Too many attempts. Please try again later. Goodbye."
  [notice]="You are about to join a teleconsultation by phone. The audio of your call is not end-to-end encrypted, and the other participants are told so."
  [dial-out-intro]="Hello. You are being called for a teleconsultation."
  [consent]="To accept, press 1. Otherwise, hang up."
  [waiting]="Thank you. Please wait, the health professional will admit you."
  [admitted]="You are now in the consultation."
  [declined]="The consultation is not available. Goodbye."
  [goodbye]="Goodbye."
)

generate() {
  local lang="$1" name="$2" text="$3"
  mkdir -p "$out_dir/$lang"
  espeak-ng -v "$lang" -s 150 -w "$work/$lang-$name.wav" "$text"
  # Resample to 8 kHz mono, leave 3 dB of headroom, encode mu-law without a header.
  sox -D -R "$work/$lang-$name.wav" -r 8000 -c 1 -e u-law -t raw "$out_dir/$lang/$name.ulaw" norm -3
}

for name in "${!fr[@]}"; do generate fr "$name" "${fr[$name]}"; done
for name in "${!en[@]}"; do generate en "$name" "${en[$name]}"; done
echo "make-prompts: wrote $(find "$out_dir" -name '*.ulaw' | wc -l) prompts to $out_dir"
