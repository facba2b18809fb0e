"""Checks the worked examples of crypto/FORMAT.md (format_examples.txt, printed by
`cargo test -p synapsed-storage-crypto print_format_examples -- --ignored --nocapture`)
with an independent implementation of every primitive: Python's `cryptography`
package (>= 44 for Argon2id). A second implementation agreeing byte for byte is the
evidence that FORMAT.md describes what the code writes.
"""
import os, struct, zlib
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives import hashes
txt=open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'format_examples.txt')).read()
def block(title):
    i=txt.index(title); part=txt[i:].split('\n\n')[0].split('\n')[1:]
    return bytes.fromhex(''.join(l[6:] for l in part))
def hkdf(ikm, info, n, salt=None):
    return HKDF(algorithm=hashes.SHA256(), length=n, salt=salt, info=info).derive(ikm)
mk=bytes(range(32)); sid=bytes(range(0xa0,0xb0))
kcv=hkdf(mk,b"synapsed-storage kcv",16)
ks=block("KEYSLOTS")
assert zlib.crc32(ks[:-4])==struct.unpack('<I',ks[-4:])[0]
assert ks[:8]==b"SYNKSLOT" and ks[8]==1 and ks[9:25]==sid and ks[25:41]==kcv and ks[41]==2
off=42
kind,ln=ks[off],struct.unpack('<H',ks[off+1:off+3])[0]; body=ks[off+3:off+3+ln]; assert kind==1 and ln==88
m,t,p=struct.unpack('<III',body[:12]); salt=body[12:28]; nonce=body[28:40]; wr=body[40:]
kek=Argon2id(salt=salt,length=32,iterations=t,lanes=p,memory_cost=m).derive(b"correct horse battery staple")
aad=b"SYNKSLOT"+bytes([1])+sid+bytes([1])+body[:28]
assert AESGCMSIV(kek).decrypt(nonce,wr,aad)==mk
off+=3+ln
kind,ln=ks[off],struct.unpack('<H',ks[off+1:off+3])[0]; body=ks[off+3:off+3+ln]; assert kind==2 and ln==76
salt=body[:16]; nonce=body[16:28]; wr=body[28:]
kek=hkdf(bytes(range(0x40,0x60)),b"synapsed-storage raw-key slot",32,salt=salt)
assert AESGCMSIV(kek).decrypt(nonce,wr,b"SYNKSLOT"+bytes([1])+sid+bytes([2])+salt)==mk
assert off+3+ln==len(ks)-4
kr=block("KEYRING")
assert zlib.crc32(kr[:-4])==struct.unpack('<I',kr[-4:])[0]
hdr=kr[:37]; body=AESGCMSIV(hkdf(mk,b"synapsed-storage keyring",32)).decrypt(kr[25:37],kr[37:-4],hdr)
assert body==struct.pack('<II',1,1)+struct.pack('<I',1)+bytes(range(0x20,0x40)), body.hex()
fh=block("file header")
fk=AESGCMSIV(bytes(range(0x20,0x40))).decrypt(fh[24:36],fh[36:84],fh[:24])
rec=block("its first WalRecord")
aad=struct.pack('<QQB',7,84,1); nonce=struct.pack('<QB',84,1)+b"\0\0\0"
assert AESGCMSIV(fk).decrypt(nonce,rec,aad)==b"hello"
fixed=block("block sealed with file key")
assert AESGCMSIV(bytes(range(0x60,0x80))).encrypt(nonce,b"hello",aad)==fixed
print("all worked examples verified; unwrapped file key =", fk.hex())
