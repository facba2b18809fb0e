"""Known-answer vectors for the hybrid keyslot and the recovery key, computed with
primitives independent of the Rust code: hashlib's SHA3-256 and Python's
`cryptography` (X25519, HKDF-SHA256). Writes `hybrid_vectors.txt`, which the Rust
tests (`src/hybrid/tests.rs`, `src/recovery/tests.rs`) read and must reproduce.
Run `python3 hybrid_vectors.py` to regenerate, `python3 hybrid_vectors.py --check`
to confirm the file matches.
"""
import hashlib, os, sys
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives import hashes, serialization

LABEL = bytes.fromhex("5c2e2f2f5e5c")  # the X-Wing label \.//^\
assert LABEL == b"\\.//^\\"

def combiner(ss_m, ss_x, ct_x, pk_x):
    """X-Wing (draft-connolly-cfrg-xwing-kem): SHA3-256(ss_M || ss_X || ct_X || pk_X || label)."""
    return hashlib.sha3_256(ss_m + ss_x + ct_x + pk_x + LABEL).digest()

def x25519_public(secret):
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    return X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes(*raw)

def hkdf(ikm, info, n=32):
    return HKDF(algorithm=hashes.SHA256(), length=n, salt=None, info=info).derive(ikm)

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

def text(prefix, payload):
    """Grouped Crockford base32 of payload || first 3 bytes of SHA3-256(prefix || payload)."""
    data = payload + hashlib.sha3_256(prefix.encode() + payload).digest()[:3]
    bits = int.from_bytes(data, "big")
    n = len(data) * 8 // 5
    chars = "".join(CROCKFORD[(bits >> (5 * (n - 1 - i))) & 31] for i in range(n))
    return prefix + "".join("-" + chars[i:i + 4] for i in range(0, n, 4))

seq = lambda start: bytes(range(start, start + 32))
v = {}
# 1. The combiner alone, on four counting sequences.
v["combiner.ss_m"], v["combiner.ss_x"], v["combiner.ct_x"], v["combiner.pk_x"] = seq(0x00), seq(0x20), seq(0x40), seq(0x60)
v["combiner.ss"] = combiner(v["combiner.ss_m"], v["combiner.ss_x"], v["combiner.ct_x"], v["combiner.pk_x"])
# 2. X25519 then the combiner: recipient secret sk_x, ephemeral secret ek_x, fixed ML-KEM secret.
sk_x, ek_x, ss_m = seq(0x80), seq(0xa0), seq(0xc0)
pk_x, ct_x = x25519_public(sk_x), x25519_public(ek_x)
ss_x = X25519PrivateKey.from_private_bytes(ek_x).exchange(
    X25519PrivateKey.from_private_bytes(sk_x).public_key())
v["exchange.sk_x"], v["exchange.ek_x"], v["exchange.ss_m"] = sk_x, ek_x, ss_m
v["exchange.pk_x"], v["exchange.ct_x"], v["exchange.ss_x"] = pk_x, ct_x, ss_x
v["exchange.ss"] = combiner(ss_m, ss_x, ct_x, pk_x)
v["exchange.kek"] = hkdf(v["exchange.ss"], b"synapsed-storage hybrid slot")
# 3. The recovery key 00 01 .. 1f: its text form and what HKDF derives from it.
rk = seq(0x00)
v["recovery.secret"] = rk
v["recovery.x25519_secret"] = hkdf(rk, b"synapsed-storage recovery x25519")
v["recovery.x25519_public"] = x25519_public(v["recovery.x25519_secret"])
v["recovery.seal_key"] = hkdf(rk, b"synapsed-storage recovery ml-kem seal")
lines = [f"{k} = {val.hex()}" for k, val in v.items()]
lines.append(f"recovery.text = {text('SYN1', rk)}")
# 4. A share (split id 0a0b0c, threshold 3, index 2, value 20..3f) in text form.
lines.append(f"share.text = {text('SYS1', bytes.fromhex('0a0b0c') + bytes([3, 2]) + seq(0x20))}")
out = "\n".join(lines) + "\n"

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hybrid_vectors.txt")
if "--check" in sys.argv:
    assert open(path).read() == out, "hybrid_vectors.txt differs from what this script computes"
    print("hybrid_vectors.txt: all vectors agree")
else:
    open(path, "w").write(out)
    print(out, end="")
