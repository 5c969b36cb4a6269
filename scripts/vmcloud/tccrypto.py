"""tccrypto.py - the Tencent cloud's signatures and payload encryption, as the
cloud side computes them (tencent-at.md §7.2, §7.3, §7.4, §7.6).

  v1_signature   dynamic registration v1 (/register/dev): base64 of the
                 lower-case hex HMAC-SHA1 of the sign source (56 chars)
  v2_signature   dynamic registration v2 (/device/register): base64 of the raw
                 HMAC-SHA256/SHA1 of the 8-line string to sign
  bind_signature gateway bind: base64 of the raw HMAC of "<pid><dn>;<r>;<t>",
                 keyed by the sub-device secret string itself
  encrypt_payload / decrypt_payload  §7.4: AES-128-CBC, key = the first 16
                 bytes of the product secret, IV 16 x '0', zero padding; done
                 by the openssl command line (the standard library has no AES)

Every key is a secret: nothing here prints or logs one."""
import base64
import hashlib
import hmac
import os
import subprocess

IV_HEX = "30" * 16
V2_HASHES = {"hmacsha256": hashlib.sha256, "hmacsha1": hashlib.sha1}


def new_psk():
    """A device secret as the cloud makes them: base64 of 16 random bytes."""
    return base64.b64encode(os.urandom(16)).decode()


def v1_sign_source(pid, dn, nonce, timestamp):
    return "deviceName=%s&nonce=%d&productId=%s&timestamp=%d" % (dn, nonce, pid, timestamp)


def v1_signature(pid, dn, product_secret, nonce, timestamp):
    digest = hmac.new(product_secret.encode(), v1_sign_source(pid, dn, nonce, timestamp).encode(),
                      hashlib.sha1).hexdigest()
    return base64.b64encode(digest.encode()).decode()


def v2_string_to_sign(host, algorithm, timestamp, nonce, body, path="/device/register"):
    """`algorithm` as sent in X-TC-Algorithm; the body hash uses the same
    family (SHA-256 for hmacsha256, SHA-1 for hmacsha1)."""
    h = V2_HASHES[algorithm.lower()]
    return "POST\n%s\n%s\n\n%s\n%s\n%s\n%s" % (host, path, algorithm, timestamp, nonce,
                                               h(body).hexdigest())


def v2_signature(product_secret, host, algorithm, timestamp, nonce, body):
    h = V2_HASHES[algorithm.lower()]
    text = v2_string_to_sign(host, algorithm, timestamp, nonce, body)
    return base64.b64encode(hmac.new(product_secret.encode(), text.encode(), h).digest()).decode()


def bind_signature(pid, dn, secret, random_, timestamp, method="hmacsha1"):
    h = V2_HASHES[method]
    text = "%s%s;%d;%d" % (pid, dn, random_, timestamp)
    return base64.b64encode(hmac.new(secret.encode(), text.encode(), h).digest()).decode()


def _aes(product_secret, data, decrypt=False):
    key = product_secret.encode()[:16]
    if len(key) != 16:
        raise ValueError("the product secret needs 16 characters for an AES key")
    cmd = ["openssl", "enc", "-aes-128-cbc", "-K", key.hex(), "-iv", IV_HEX, "-nopad"]
    if decrypt:
        cmd.insert(2, "-d")
    return subprocess.run(cmd, input=data, capture_output=True, check=True).stdout


def encrypt_payload(product_secret, plaintext):
    """Zero-pad to 16, AES-128-CBC, base64 (no extra block when aligned)."""
    if isinstance(plaintext, str):
        plaintext = plaintext.encode()
    padded = plaintext + b"\0" * (-len(plaintext) % 16)
    return base64.b64encode(_aes(product_secret, padded)).decode()


def decrypt_payload(product_secret, payload):
    """The module's side: base64, AES-128-CBC, trailing NULs stripped."""
    return _aes(product_secret, base64.b64decode(payload), decrypt=True).rstrip(b"\0")
