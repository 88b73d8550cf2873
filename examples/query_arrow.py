#!/usr/bin/env python3
"""Query a provider's connector under an agreement and read the Arrow answer
with pyarrow: the wire protocol without the Rust client.

The consumer's identity comes from its connector home (made by
`dataspace init`, credential from the authority): the Ed25519 key signs a
short-lived request token per call, sent with the membership credential.

    pip install pyarrow cryptography
    python3 examples/query_arrow.py --home SME_HOME --provider URL \
        --agreement AGREEMENT_ID "SELECT part, avg(defects_ppm) FROM supplier_quality GROUP BY part"

`dataspace demo --serve` prints a ready-made command line.
"""

import argparse
import base64
import json
import secrets
import sys
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pyarrow as pa
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def canonical(value) -> bytes:
    """Canonical JSON as the connector signs it: sorted members, no spaces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def key_id(jwk: dict) -> str:
    """RFC 7638 thumbprint of an Ed25519 JWK."""
    import hashlib

    members = {"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"]}
    return b64url(hashlib.sha256(canonical(members)).digest())


def load_private_key(der: bytes, jwk: dict) -> Ed25519PrivateKey:
    """The Ed25519 key of a PKCS#8 (v1 or v2, as ring writes it) document:
    its 32-byte seed is the OCTET STRING inside the privateKey OCTET STRING."""
    marker = bytes([0x04, 0x22, 0x04, 0x20])
    at = der.find(marker)
    if at < 0 or len(der) < at + 4 + 32:
        raise SystemExit("error: keys/private.pk8 is not an Ed25519 PKCS#8 key")
    key = Ed25519PrivateKey.from_private_bytes(der[at + 4 : at + 36])
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    if b64url(public) != jwk["x"]:
        raise SystemExit("error: keys/private.pk8 does not match keys/public.jwk.json")
    return key


def verified_claims(jws: str, jwk: dict) -> dict:
    """The claims of `jws` after checking its EdDSA signature with `jwk`."""
    header, payload, signature = jws.split(".")
    if json.loads(unb64url(header)).get("alg") != "EdDSA":
        raise SystemExit("error: the provider's credential is not EdDSA-signed")
    key = Ed25519PublicKey.from_public_bytes(unb64url(jwk["x"]))
    key.verify(unb64url(signature), f"{header}.{payload}".encode())
    return json.loads(unb64url(payload))


class Consumer:
    def __init__(self, home: Path):
        config = tomllib.loads((home / "config.toml").read_text())
        self.id = config["id"]
        self.jwk = json.loads((home / "keys/public.jwk.json").read_text())
        self.key = load_private_key((home / "keys/private.pk8").read_bytes(), self.jwk)
        self.credential = (home / "credential.jws").read_text().strip()
        self.authority = json.loads((home / "authority.json").read_text())

    def token(self, audience: str) -> str:
        """A request token: single use (random jti), valid for one minute."""
        now = int(time.time())
        header = {"alg": "EdDSA", "kid": key_id(self.jwk), "typ": "request+jws"}
        claims = {
            "iss": self.id,
            "sub": self.id,
            "aud": audience,
            "iat": now,
            "exp": now + 60,
            "jti": secrets.token_hex(16),
        }
        signing_input = f"{b64url(canonical(header))}.{b64url(canonical(claims))}"
        return f"{signing_input}.{b64url(self.key.sign(signing_input.encode()))}"

    def call(self, method: str, url: str, audience: str, body=None):
        request = urllib.request.Request(
            url,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "authorization": f"Bearer {self.token(audience)}",
                "x-dataspace-credential": self.credential,
                "content-type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as reply:
                return reply.read(), reply.headers
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")
            try:
                detail = json.loads(detail).get("error", detail)
            except ValueError:
                pass
            raise SystemExit(f"error: {method} {url} answered {e.code}: {detail}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", required=True, type=Path, help="the consumer's connector home")
    parser.add_argument("--provider", required=True, help="the provider connector's URL")
    parser.add_argument("--agreement", required=True, help="the agreement id")
    parser.add_argument("sql", help="one SELECT over the agreed dataset")
    args = parser.parse_args()

    consumer = Consumer(args.home)
    base = args.provider.rstrip("/")
    # Who the provider is, from its credential, checked against our authority.
    with urllib.request.urlopen(f"{base}/identity", timeout=30) as reply:
        identity = json.loads(reply.read())
    provider = verified_claims(identity["credential"], consumer.authority["jwk"])
    if provider["iss"] != consumer.authority["id"] or provider["exp"] < time.time():
        raise SystemExit("error: the provider's credential is not from our authority or expired")
    # The agreement, as the provider signed it.
    body, _ = consumer.call("GET", f"{base}/dsp/negotiations/{args.agreement}", provider["sub"])
    agreement = json.loads(body)["agreement"]
    if agreement is None:
        raise SystemExit(f"error: `{args.agreement}` is not an agreement yet")
    # The query; the answer is an Arrow IPC stream.
    body, headers = consumer.call(
        "POST",
        f"{base}/query",
        provider["sub"],
        {"agreement": agreement, "sql": args.sql, "format": "arrow"},
    )
    table = pa.ipc.open_stream(pa.py_buffer(body)).read_all()
    print(table.schema)
    for row in table.to_pylist():
        print(row)
    print(
        f"{table.num_rows} rows from {provider['sub']}; signed receipt in "
        f"x-dataspace-receipt ({len(headers.get('x-dataspace-receipt', ''))} bytes)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
