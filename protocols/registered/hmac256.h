/* HMAC-SHA256 with the key's pads hashed once, as codec.Key does: signing a message then
 * costs two hash-state copies instead of a full set-up. Shared by the compiled decision path
 * and the bare limit, so that the yardstick measures the same cryptography. */
#ifndef SPLINTERLAB_HMAC256_H
#define SPLINTERLAB_HMAC256_H
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <string.h>

typedef struct {
    SHA256_CTX inner, outer;
} hmac_key;

/* A key of up to 64 bytes (longer ones are hashed first, as HMAC says). */
static inline void key_init(hmac_key *k, const unsigned char *secret, size_t n)
{
    unsigned char block[64] = {0}, pad[64];
    if (n > 64)
        SHA256(secret, n, block);
    else
        memcpy(block, secret, n);
    for (int i = 0; i < 64; i++)
        pad[i] = block[i] ^ 0x36;
    SHA256_Init(&k->inner);
    SHA256_Update(&k->inner, pad, 64);
    for (int i = 0; i < 64; i++)
        pad[i] = block[i] ^ 0x5C;
    SHA256_Init(&k->outer);
    SHA256_Update(&k->outer, pad, 64);
}

static inline void sign(const hmac_key *k, const unsigned char *data, size_t n,
                        unsigned char *out)
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256_CTX c = k->inner;
    SHA256_Update(&c, data, n);
    SHA256_Final(digest, &c);
    c = k->outer;
    SHA256_Update(&c, digest, sizeof digest);
    SHA256_Final(out, &c);
}

/* 1 if the last 32 bytes of data[0..n) are the HMAC of what precedes them. */
static inline int verify(const hmac_key *k, const unsigned char *data, size_t n)
{
    unsigned char mac[SHA256_DIGEST_LENGTH];
    if (n < sizeof mac)
        return 0;
    sign(k, data, n - sizeof mac, mac);
    return CRYPTO_memcmp(mac, data + n - sizeof mac, sizeof mac) == 0;
}
#endif
