#!/usr/bin/env bash
# Regenerates ecdsa-vectors.txt: ECDSA signatures made and checked by the
# openssl CLI with the fixture keys p256.pem, p384.pem and p521.pem, for the
# tests that hold the wasm and the native path to OpenSSL's answers.
# Run by hand; the output is committed so tests never shell out.
#
# One vector per line: ALG MESSAGE_HEX SIGNATURE_DER_HEX VERDICT, where
# VERDICT is what `openssl dgst -verify` said ("ok" or "fail"). OpenSSL signs
# with a random nonce and leaves s as it comes, so about half the good
# signatures are high-S. Each curve gets good signatures over several
# messages, and each signature is also listed against the next message, which
# OpenSSL refuses.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=ecdsa-vectors.txt
: > "$out"

hex() { od -An -v -tx1 "$1" | tr -d ' \n'; }
b64url() { printf '%s' "$1" | base64 -w0 | tr '+/' '-_' | tr -d '='; }

vectors() { # alg key digest
  local alg=$1 key=$2 digest=$3 i next verdict
  openssl pkey -in "$key" -pubout -out "$work/pub.pem"
  for i in $(seq 0 15); do
    printf '%s.%s' "$(b64url "{\"alg\":\"$alg\"}")" "$(b64url "{\"sub\":\"user-$i\",\"n\":$((i * 7919))}")" > "$work/msg$i"
  done
  for i in $(seq 0 15); do
    openssl dgst "-$digest" -sign "$key" -out "$work/sig" "$work/msg$i"
    next=$(( (i + 1) % 16 ))
    for m in "$i" "$next"; do
      if openssl dgst "-$digest" -verify "$work/pub.pem" -signature "$work/sig" "$work/msg$m" >/dev/null; then
        verdict=ok
      else
        verdict=fail
      fi
      printf '%s %s %s %s\n' "$alg" "$(hex "$work/msg$m")" "$(hex "$work/sig")" "$verdict" >> "$out"
    done
  done
}

vectors ES256 p256.pem sha256
vectors ES384 p384.pem sha384
vectors ES512 p521.pem sha512
