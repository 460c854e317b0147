#!/usr/bin/env bash
# Regenerates the fixture keys used by the unit tests in core/src/jwt/.
# Run once by hand; the outputs are committed so tests never shell out.
# Each key: <name>.pem (PKCS#8 private key) and <name>.jwk.json (public JWK).
set -euo pipefail
cd "$(dirname "$0")"

b64url_hex() { python3 -c 'import sys,base64; print(base64.urlsafe_b64encode(bytes.fromhex(sys.argv[1])).decode().rstrip("="))' "$1"; }

rsa() { # name bits kid
  openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:$2" -out "$1.pem" 2>/dev/null
  local n e
  n=$(openssl pkey -in "$1.pem" -noout -text | awk '/^modulus:/{f=1;next} /^publicExponent/{f=0} f' | tr -d ' :\n' | sed 's/^00//')
  e=$(printf '%06x' "$(openssl pkey -in "$1.pem" -noout -text | awk '/^publicExponent/{print $2}')")
  printf '{"kty":"RSA","kid":"%s","use":"sig","n":"%s","e":"%s"}\n' "$3" "$(b64url_hex "$n")" "$(b64url_hex "$e")" > "$1.jwk.json"
}

ec() { # name curve crv kid coordbytes
  openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:$2" -pkeyopt ec_param_enc:named_curve -out "$1.pem" 2>/dev/null
  local pub x y
  pub=$(openssl pkey -in "$1.pem" -noout -text | awk '/^pub:/{f=1;next} /^ASN1 OID/{f=0} f' | tr -d ' :\n')
  pub=${pub:2}  # drop the 04 uncompressed-point prefix
  x=${pub:0:$(($5*2))}; y=${pub:$(($5*2))}
  printf '{"kty":"EC","kid":"%s","crv":"%s","x":"%s","y":"%s"}\n' "$4" "$3" "$(b64url_hex "$x")" "$(b64url_hex "$y")" > "$1.jwk.json"
}

rsa rsa2048 2048 rsa-2048
rsa rsa2048b 2048 rsa-2048-b
rsa rsa1024 1024 rsa-1024
rsa rsa3072 3072 rsa-3072
rsa rsa2560 2560 rsa-2560
ec p256 P-256 P-256 ec-p256 32
ec p384 P-384 P-384 ec-p384 48
ec p521 P-521 P-521 ec-p521 66

openssl genpkey -algorithm ED25519 -out ed25519.pem
x=$(openssl pkey -in ed25519.pem -pubout -outform DER | tail -c 32 | od -An -tx1 | tr -d ' \n')
printf '{"kty":"OKP","kid":"ed25519","crv":"Ed25519","x":"%s"}\n' "$(b64url_hex "$x")" > ed25519.jwk.json
