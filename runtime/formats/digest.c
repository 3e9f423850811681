/* digest.c — the digests an artifact records.
 *   lj_sha256 / lj_sha256_hex: SHA-256 (OpenSSL libcrypto, EVP_Digest) of bytes; the
 *     library, manifest and IR digests of manifest.json
 *   lj_fnv1a64: FNV-1a 64, kept only where no security claim is made (the code
 *     identity lj_code_hash, which tells two builds apart, not an author)
 * The digests detect accidents and mismatches, not a malicious author: an artifact's
 * library is code that runs when it is loaded (README, "Ahead of time"). */
#include <stdio.h>

#include <openssl/evp.h>

#include "formats.h"

uint64_t lj_fnv1a64(const void *data, size_t n, uint64_t h) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

bool lj_sha256(const void *data, size_t n, uint8_t out[LJ_SHA256_BYTES]) {
    unsigned int len = 0;
    return EVP_Digest(data, n, out, &len, EVP_sha256(), NULL) == 1 && len == LJ_SHA256_BYTES;
}

bool lj_sha256_hex(const void *data, size_t n, char out[LJ_SHA256_HEX]) {
    uint8_t d[LJ_SHA256_BYTES];
    if (!lj_sha256(data, n, d)) return false;
    for (int i = 0; i < LJ_SHA256_BYTES; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
    return true;
}
