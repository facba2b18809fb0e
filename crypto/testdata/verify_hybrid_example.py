"""Opens both slots of the hybrid worked example (hybrid_slot_example.txt, printed by
`cargo test -p synapsed-storage-crypto print_hybrid_examples -- --ignored --nocapture`)
with an independent implementation of every primitive: ML-KEM-768 from `kyber-py`
(a pure-Python FIPS 203 implementation: `pip install kyber-py`), SHA3-256 from
hashlib, X25519, HKDF-SHA256 and AES-256-GCM-SIV from `cryptography`. Reaching the master key 00..1f through both slots shows that
crypto/FORMAT.md ("Slot kind 3") describes what the code writes.
"""
import hashlib, os, struct, zlib
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from kyber_py.ml_kem import ML_KEM_768

HERE = os.path.dirname(os.path.abspath(__file__))
txt = open(os.path.join(HERE, "hybrid_slot_example.txt")).read()
def block(title):
    i = txt.index(title); part = txt[i:].split("\n\n")[0].split("\n")[1:]
    return bytes.fromhex("".join(l[6:] for l in part))
def hkdf(ikm, info):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(ikm)
def x25519_public(priv):
    return priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

MK = bytes(range(32)); SID = bytes(range(0xA0, 0xB0)); RECOVERY = bytes(range(32))
LABEL = b"\\.//^\\"
KCV = hkdf(MK, b"synapsed-storage kcv")[:16]

sk = block("device secret key")
assert sk[:9] == b"SYNHYBSK\x01" and len(sk) == 2441
device_x = X25519PrivateKey.from_private_bytes(sk[9:41]); device_m = sk[41:]
pk = block("device public key")
assert pk == b"SYNHYBPK\x01" + x25519_public(device_x) + device_m[1152:2336]
assert hashlib.sha3_256(device_m[1152:2336]).digest() == device_m[2336:2368]
fingerprint = hashlib.sha3_256(pk).digest()

ks = block("KEYSLOTS")
assert zlib.crc32(ks[:-4]) == struct.unpack("<I", ks[-4:])[0]
assert ks[:9] == b"SYNKSLOT\x01" and ks[9:25] == SID and ks[25:41] == KCV and ks[41] == 2

def open_slot(body, x_priv, mlkem_expanded, pk_x):
    ct_x, ct_m = body[33:65], body[65:1153]
    ss_m = ML_KEM_768.decaps(mlkem_expanded, ct_m)  # FIPS 203 decapsulation key = PQClean's layout
    ss_x = x_priv.exchange(X25519PublicKey.from_public_bytes(ct_x))
    ss = hashlib.sha3_256(ss_m + ss_x + ct_x + pk_x + LABEL).digest()  # X-Wing combiner
    kek = hkdf(ss, b"synapsed-storage hybrid slot")
    header, nonce, wrapped = body[:-60], body[-60:-48], body[-48:]
    aad = b"SYNKSLOT\x01" + SID + b"\x03" + header
    return AESGCMSIV(kek).decrypt(nonce, wrapped, aad)

off = 42
kind, ln = ks[off], struct.unpack("<H", ks[off + 1:off + 3])[0]; body = ks[off + 3:off + 3 + ln]
assert kind == 3 and ln == 1213 and body[0] == 1 and body[1:33] == fingerprint
assert open_slot(body, device_x, device_m, x25519_public(device_x)) == MK
print("device slot: master key recovered with the device secret key")

off += 3 + ln
kind, ln = ks[off], struct.unpack("<H", ks[off + 1:off + 3])[0]; body = ks[off + 3:off + 3 + ln]
assert kind == 3 and ln == 3641 and body[0] == 2 and off + 3 + ln == len(ks) - 4
rec_x = X25519PrivateKey.from_private_bytes(hkdf(RECOVERY, b"synapsed-storage recovery x25519"))
seal_key = hkdf(RECOVERY, b"synapsed-storage recovery ml-kem seal")
rec_m = AESGCMSIV(seal_key).decrypt(body[1153:1165], body[1165:3581], b"SYNKSLOT\x01" + SID + b"\x03" + body[:33])
rec_pk = b"SYNHYBPK\x01" + x25519_public(rec_x) + rec_m[1152:2336]
assert hashlib.sha3_256(rec_pk).digest() == body[1:33]
assert open_slot(body, rec_x, rec_m, x25519_public(rec_x)) == MK
print("recovery slot: master key recovered with the recovery key alone")
