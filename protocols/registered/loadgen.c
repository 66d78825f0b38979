/* A gateway asking for flows as fast as asked, in C: bench admission's generator for rates a
 * Python process cannot offer (100 000 requests a second, saturation). FLOW_REQUESTs of the
 * control protocol (codec.py), signed with the gateway's key, from a session of its own;
 * sent in batches (sendmmsg) when due, their answers read (recvmmsg) and timed by request id.
 *
 *   splinterlab-loadgen KEY_HEX GATEWAY AUTHORITY_PORT RATE SECONDS
 *   {"offered_per_s": R, "sent": N, "answered": A, "p50_ms": X, "p99_ms": Y}
 *
 * At a RATE, RATE x SECONDS requests, each when it is due; RATE 0 offers as fast as the
 * socket takes them for SECONDS. Sources are the bench registry's BOUND addresses from
 * 198.19.0.0, the destination one foreign address. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "bigendian.h"
#include "hmac256.h"

#define HEADER 32
#define BODY 38
#define SIZE (HEADER + BODY + 32)
#define BATCH 64
#define BOUND 1000
#define FIRST 0xC6130000u
#define DRAIN_S 1.0 /* answers still counted this long after the last request */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int by_value(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc != 6 || strlen(argv[1]) != 64) {
        fprintf(stderr, "usage: splinterlab-loadgen KEY_HEX GATEWAY AUTHORITY_PORT RATE "
                        "SECONDS\n");
        return 2;
    }
    unsigned char secret[32];
    for (int i = 0; i < 32; i++)
        sscanf(argv[1] + 2 * i, "%2hhx", &secret[i]);
    hmac_key key;
    key_init(&key, secret, sizeof secret);
    uint32_t gateway = (uint32_t)atol(argv[2]);
    double rate = atof(argv[4]), seconds = atof(argv[5]);
    uint32_t total = rate > 0 ? (uint32_t)(rate * seconds) : 4000000u;

    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int big = 16 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[3])),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sockaddr_in here = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || bind(fd, (struct sockaddr *)&here, sizeof here)) {
        perror("loadgen: socket");
        return 1;
    }
    double *sent_at = calloc(total, sizeof *sent_at);
    float *latency = calloc(total, sizeof *latency);
    if (!sent_at || !latency)
        return 1;
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    uint64_t session = ((uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u) << 12 |
                       (uint64_t)(rand() & 0xFFF);

    static unsigned char out[BATCH][SIZE], in[BATCH][SIZE];
    struct iovec oiov[BATCH], iiov[BATCH];
    struct mmsghdr outs[BATCH], ins[BATCH];
    for (int i = 0; i < BATCH; i++) {
        oiov[i] = (struct iovec){out[i], SIZE}, iiov[i] = (struct iovec){in[i], SIZE};
        outs[i].msg_hdr = (struct msghdr){.msg_name = &to, .msg_namelen = sizeof to,
                                          .msg_iov = &oiov[i], .msg_iovlen = 1};
        ins[i].msg_hdr = (struct msghdr){.msg_iov = &iiov[i], .msg_iovlen = 1};
    }
    uint32_t sent = 0, answered = 0;
    double start = now_s(), last = start;
    while (1) {
        double now = now_s();
        uint32_t due = rate > 0 ? (uint32_t)((now - start) * rate) + 1 : sent + BATCH;
        if (due > total)
            due = total;
        if (sent < total && (rate > 0 ? now - start < seconds + DRAIN_S : now - start < seconds)) {
            int n = 0;
            for (; n < BATCH && sent + (uint32_t)n < due; n++) {
                uint32_t id = sent + (uint32_t)n;
                unsigned char *m = out[n];
                clock_gettime(CLOCK_REALTIME, &t);
                memset(m, 0, SIZE);
                m[0] = 'S', m[1] = 'L', m[2] = 2, m[3] = 5;
                put32(m + 4, gateway), put64(m + 8, session), put32(m + 16, id + 1);
                put64(m + 20, (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u);
                m[29] = BODY;
                put32(m + HEADER, id), put32(m + HEADER + 4, FIRST + id % BOUND);
                put32(m + HEADER + 8, 0xCB00710Au), m[HEADER + 12] = 6;
                put32(m + HEADER + 14, (40000u + id % 20000u) << 16 | 443u);
                sign(&key, m, HEADER + BODY, m + HEADER + BODY);
            }
            if (n) {
                int went = sendmmsg(fd, outs, n, MSG_DONTWAIT);
                for (int i = 0; i < (went > 0 ? went : 0); i++)
                    sent_at[sent + i] = now_s();
                sent += went > 0 ? (uint32_t)went : 0;
                last = now_s();
            }
        } else if (now - last > DRAIN_S || answered == sent) {
            break;
        }
        int got = recvmmsg(fd, ins, BATCH, MSG_DONTWAIT, NULL);
        if (got <= 0 && rate > 0 && due <= sent) /* nothing due, nothing back: a pause */
            nanosleep(&(struct timespec){0, 20000}, NULL);
        for (int i = 0; i < got; i++) {
            uint32_t id = get32(in[i] + HEADER);
            if (ins[i].msg_len == SIZE && id < sent && sent_at[id] > 0 && latency[id] == 0) {
                latency[id] = (float)((now_s() - sent_at[id]) * 1000);
                answered++;
            }
        }
    }
    double span = last - start;
    float *l = malloc((answered ? answered : 1) * sizeof *l);
    uint32_t k = 0;
    for (uint32_t i = 0; i < sent; i++)
        if (latency[i] > 0)
            l[k++] = latency[i];
    qsort(l, k, sizeof *l, by_value);
    printf("{\"offered_per_s\": %.0f, \"sent\": %u, \"answered\": %u, \"p50_ms\": %.4f, "
           "\"p99_ms\": %.4f}\n", span > 0 ? sent / span : 0.0, sent, answered,
           k ? l[k / 2] : -1.0, k ? l[(uint32_t)(0.99 * (k - 1))] : -1.0);
    return 0;
}
