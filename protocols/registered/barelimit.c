/* The bare limit of one admission decision on this machine: what no authority, in any
 * language, does faster per core. Per decision, in C: verify a flow request's HMAC-SHA256
 * (hmac256.h, as the compiled decision path does), look its source up among the bound
 * addresses (an open-addressing table), build and sign the answer. No socket, no journal,
 * no replay window, no policy beyond the lookup.
 *
 *   splinterlab-barelimit SECONDS
 *   {"decisions": N, "cpu_s": S, "per_cpu_second": R, "bound": B}
 *   splinterlab-barelimit --sample KEY_HEX      (one request and its answer, in hex: a test
 *                                                holds them to the Python codec)
 *
 * The messages are the control protocol's (protocols/registered/codec.py): a 32-byte
 * header, a FLOW_REQUEST body of 38 bytes or an answer body of 38, a 32-byte HMAC.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bigendian.h"
#include "hmac256.h"

#define HEADER 32
#define BODY 38 /* a FLOW_REQUEST's body, and an answer's */
#define SIG 32
#define MESSAGE (HEADER + BODY + SIG)
#define BOUND 1000    /* registered addresses, as bench admission's registry holds */
#define SLOTS 4096    /* a power of two, more than twice BOUND */
#define REQUESTS 1024 /* distinct requests, cycled */
#define FIRST 0xC6130000u

static uint32_t slot_of(uint32_t address)
{
    return (address * 2654435761u) & (SLOTS - 1);
}

static uint32_t keys[SLOTS], identities[SLOTS];

static void bind(uint32_t address, uint32_t identity)
{
    uint32_t s = slot_of(address);
    while (keys[s])
        s = (s + 1) & (SLOTS - 1);
    keys[s] = address;
    identities[s] = identity;
}

static uint32_t lookup(uint32_t address)
{
    for (uint32_t s = slot_of(address); keys[s]; s = (s + 1) & (SLOTS - 1))
        if (keys[s] == address)
            return identities[s];
    return 0;
}

static double cpu_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void request(const hmac_key *key, unsigned char *m, uint32_t id, uint32_t src)
{
    memset(m, 0, MESSAGE);
    m[0] = 'S', m[1] = 'L', m[2] = 2, m[3] = 5; /* magic, version, FLOW_REQUEST */
    put32(m + 4, 1);                            /* from gateway 1 */
    m[HEADER - 3] = BODY;                       /* the body's length */
    put32(m + HEADER, id);
    put32(m + HEADER + 4, src);
    put32(m + HEADER + 8, 0xCB00710Au);
    m[HEADER + 12] = 6;                              /* TCP */
    m[HEADER + 14] = 0x9C, m[HEADER + 15] = 0x40;    /* from port 40000 */
    m[HEADER + 16] = 0x01, m[HEADER + 17] = 0xBB;    /* to port 443 */
    sign(key, m, HEADER + BODY, m + HEADER + BODY);
}

/* Verify, look up, answer: 0 if the request's HMAC is wrong. */
static int decide(const hmac_key *key, const unsigned char *m, unsigned char *answer,
                  uint32_t counter)
{
    if (!verify(key, m, MESSAGE))
        return 0;
    uint32_t identity = lookup(get32(m + HEADER + 4));
    memset(answer, 0, MESSAGE);
    answer[0] = 'S', answer[1] = 'L', answer[2] = 2, answer[3] = identity ? 6 : 7;
    answer[HEADER - 3] = BODY;
    put32(answer + 16, counter);
    memcpy(answer + HEADER, m + HEADER, 4);           /* request id */
    memcpy(answer + HEADER + 12, m + HEADER + 4, 14); /* src, dst, proto, flags, ports */
    put32(answer + HEADER + 30, 30000);               /* TTL, ms */
    put32(answer + HEADER + 34, identity);
    sign(key, answer, HEADER + BODY, answer + HEADER + BODY);
    return 1;
}

static void hex(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
    printf("\n");
}

int main(int argc, char **argv)
{
    for (uint32_t i = 0; i < BOUND; i++)
        bind(FIRST + i, i + 1);
    hmac_key key;
    unsigned char secret[32], answer[MESSAGE];
    if (argc == 3 && !strcmp(argv[1], "--sample") && strlen(argv[2]) == 64) {
        for (int i = 0; i < 32; i++)
            sscanf(argv[2] + 2 * i, "%2hhx", &secret[i]);
        key_init(&key, secret, sizeof secret);
        unsigned char m[MESSAGE];
        request(&key, m, 7, FIRST + 41);
        decide(&key, m, answer, 1);
        hex(m, MESSAGE);
        hex(answer, MESSAGE);
        return 0;
    }
    double seconds = argc == 2 ? atof(argv[1]) : 0;
    if (seconds <= 0) {
        fprintf(stderr, "usage: splinterlab-barelimit SECONDS (more than 0) | --sample KEY_HEX\n");
        return 2;
    }
    for (int i = 0; i < 32; i++)
        secret[i] = (unsigned char)rand();
    key_init(&key, secret, sizeof secret);
    static unsigned char requests[REQUESTS][MESSAGE];
    for (uint32_t r = 0; r < REQUESTS; r++)
        request(&key, requests[r], r, FIRST + (uint32_t)rand() % BOUND);

    unsigned long decisions = 0;
    volatile unsigned char sink = 0; /* every answer's signature is used */
    double start = cpu_seconds(), now = start;
    while (now - start < seconds) {
        for (int batch = 0; batch < 4096; batch++, decisions++) {
            if (!decide(&key, requests[decisions % REQUESTS], answer, (uint32_t)decisions)) {
                fprintf(stderr, "barelimit: a request failed to verify\n");
                return 1;
            }
            sink ^= answer[HEADER + BODY];
        }
        now = cpu_seconds();
    }
    double used = now - start;
    printf("{\"decisions\": %lu, \"cpu_s\": %.6f, \"per_cpu_second\": %.0f, \"bound\": %d}\n",
           decisions, used, decisions / used, BOUND);
    return 0;
}
