/* One FLOW_REQUEST, as Authority.flow handles it, in C: its form, then codec.authenticate's
 * checks in their order (a known sender, the HMAC, the time window, not before this receiver
 * started, the session and the counter's replay window), the decision (admitcore.c), the
 * admission log's record (journal.py's frame and row) and the signed answer. No I/O: the
 * caller reads datagrams, writes the records before it sends the answers. A flow from a
 * farm's device block goes back to Python untouched (its device token is checked there).
 *
 * The server owns what must be one per process: each gateway's key and replay window, and
 * the authority's own session with one counter per gateway (Python's other messages take
 * their numbers from sl_next, so that no two messages share one).
 */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "admitcore.h"
#include "bigendian.h"
#include "hmac256.h"
#include "serveio.h"

#define HEADER 32
#define FLOW_BODY 38
#define ANSWER_BODY 38
#define SIG 32
#define FLOW_SIZE (HEADER + FLOW_BODY + SIG)
#define ROW (RECORD - 8) /* a record less the journal's frame */
#define GATEWAYS 4096 /* gateway ids below this; any other sender is unknown */
#define WINDOW_US 5000000ull
#define REPLAY_BITS 1024
enum { FLOW_REQUEST = 5, GRANT = 6, DENY = 7, INBOUND = 1, RENEWAL = 2 };
/* what sl_flow did: the names codec.Rejected gives, in codec's order */
enum verdict {
    ANSWERED, MALFORMED, UNKNOWN_SENDER, BAD_HMAC, STALE, BEFORE_START, OLD_SESSION, REPLAY,
    TO_PYTHON, WRONG_SOURCE, GRANTED, DENIED, UNSENT, VERDICTS
};

typedef struct {
    uint64_t session;
    uint32_t highest;
    uint64_t bits[REPLAY_BITS / 64]; /* bit k: counter highest - k seen */
} window;

typedef struct {
    hmac_key *keys[GATEWAYS];
    window windows[GATEWAYS];
    uint32_t counters[GATEWAYS]; /* the last number this process gave a message to each */
    double last_seen[GATEWAYS];
    uint32_t sources[GATEWAYS]; /* where each gateway speaks from (network order) */
    uint64_t counts[VERDICTS];
    const policy *policy;
    prefixes devices;
    uint64_t session, started_us;
} server;

server *sl_server_new(const policy *p, uint64_t session, uint64_t started_us)
{
    server *s = calloc(1, sizeof *s);
    if (s)
        s->policy = p, s->session = session, s->started_us = started_us;
    return s;
}

void sl_server_free(server *s)
{
    for (int g = 0; g < GATEWAYS; g++)
        free(s->keys[g]);
    free(s->devices.nets), free(s->devices.lengths);
    free(s);
}

int sl_gateway(server *s, uint32_t id, const unsigned char *secret, uint32_t n,
               uint32_t source)
{
    if (id >= GATEWAYS || !(s->keys[id] || (s->keys[id] = malloc(sizeof(hmac_key)))))
        return -1;
    key_init(s->keys[id], secret, n);
    s->sources[id] = htonl(source);
    return 0;
}

/* what sl_serve counted so far, by verdict (enum verdict's order) */
const uint64_t *sl_counts(const server *s) { return s->counts; }

int sl_devices(server *s, const uint32_t *nets, const uint8_t *lengths, uint32_t n)
{
    return sl_prefixes_set(&s->devices, nets, lengths, n);
}

/* The session and the next counter of a message to gateway ``id`` (as codec.Sender.next). */
uint64_t sl_next(server *s, uint32_t id, uint32_t *counter)
{
    *counter = 0;
    if (s->counters[id % GATEWAYS] == 0xFFFFFFFFu)
        return 0; /* FlowServer.next raises: four billion messages, the process starts anew */
    *counter = ++s->counters[id % GATEWAYS];
    return s->session;
}

double sl_last_seen(const server *s, uint32_t id) { return s->last_seen[id % GATEWAYS]; }

static int bit(const window *w, uint32_t k) { return w->bits[k / 64] >> (k % 64) & 1; }

static void shift(window *w, uint32_t by)
{
    if (by >= REPLAY_BITS) {
        memset(w->bits, 0, sizeof w->bits);
    } else {
        for (int i = REPLAY_BITS / 64 - 1; i >= 0; i--) {
            int from = i - (int)(by / 64);
            uint64_t hi = from >= 0 ? w->bits[from] << (by % 64) : 0;
            uint64_t lo = from >= 1 && by % 64 ? w->bits[from - 1] >> (64 - by % 64) : 0;
            w->bits[i] = hi | lo;
        }
    }
    w->bits[0] |= 1;
}

/* codec.Replay.accept: 0 if new (and now remembered), else why not */
static int remember(window *w, uint64_t session, uint32_t counter)
{
    if (session < w->session)
        return OLD_SESSION;
    if (session > w->session) {
        w->session = session, w->highest = 0;
        memset(w->bits, 0, sizeof w->bits);
    }
    if (counter > w->highest) {
        shift(w, counter - w->highest);
        w->highest = counter;
        return 0;
    }
    uint32_t offset = w->highest - counter;
    if (offset >= REPLAY_BITS || bit(w, offset))
        return REPLAY;
    w->bits[offset / 64] |= 1ull << (offset % 64);
    return 0;
}

static uint32_t crc32(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = c >> 1 ^ (0xEDB88320u & -(c & 1));
    }
    return ~c;
}

/* codec.authenticate for any well-formed message (its header read here): 0 if it holds and
 * its counter is now remembered, else why not. The Python path calls it too, so that one
 * replay window per gateway sees every message. */
int sl_authenticate(server *s, const unsigned char *d, uint32_t n, uint64_t now_us)
{
    if (n < HEADER + SIG)
        return MALFORMED;
    uint32_t sender = get32(d + 4), counter = get32(d + 16);
    uint64_t session = get64(d + 8), timestamp = get64(d + 20);
    if (sender >= GATEWAYS || !s->keys[sender])
        return UNKNOWN_SENDER;
    if (!verify(s->keys[sender], d, n))
        return BAD_HMAC;
    if ((now_us > timestamp ? now_us - timestamp : timestamp - now_us) > WINDOW_US)
        return STALE;
    if (timestamp < s->started_us)
        return BEFORE_START;
    return remember(&s->windows[sender], session, counter);
}

/* One datagram: ANSWERED with the answer (FLOW_SIZE bytes) and the journal record (RECORD
 * bytes) written, or why not. ``now`` in seconds for the log, ``now_us`` for the window. */
int sl_flow(server *s, const unsigned char *d, uint32_t n, double now, uint64_t now_us,
            unsigned char *answer, unsigned char *record)
{
    if (n != FLOW_SIZE || d[3] != FLOW_REQUEST)
        return TO_PYTHON; /* every other message is Python's, as Authority.handle routes them */
    if (d[0] != 'S' || d[1] != 'L' || d[2] != 2 || get32(d + 28) >> 16 != FLOW_BODY)
        return MALFORMED;
    uint32_t sender = get32(d + 4);
    uint64_t session = get64(d + 8);
    const unsigned char *b = d + HEADER;
    uint32_t src = get32(b + 4), dst = get32(b + 8), proto = b[12], flags = b[13];
    if (!(flags & INBOUND) && s->devices.count && sl_covered(src, &s->devices))
        return TO_PYTHON;
    int why = sl_authenticate(s, d, n, now_us);
    if (why)
        return why;
    uint32_t identity, ttl;
    int reason = sl_admit(s->policy, sender, src, dst, proto, flags & INBOUND, &identity, &ttl);
    s->last_seen[sender] = now;

    unsigned char *row = record + 8;
    uint64_t when;
    memcpy(&when, &now, sizeof when);
    put64(row, when);
    put32(row + 8, sender), put32(row + 12, identity), put32(row + 16, src);
    put32(row + 20, dst), memcpy(row + 24, b + 14, 4); /* sport, dport */
    row[28] = (unsigned char)proto;
    row[29] = (flags & INBOUND ? 1 : 0) | (flags & RENEWAL ? 2 : 0) | (reason == 0 ? 4 : 0);
    row[30] = (unsigned char)reason;
    put16(record, 0x534A), put16(record + 2, ROW), put32(record + 4, crc32(row, ROW));

    memset(answer, 0, FLOW_SIZE);
    answer[0] = 'S', answer[1] = 'L', answer[2] = 2, answer[3] = reason ? DENY : GRANT;
    uint32_t number;
    put64(answer + 8, sl_next(s, sender, &number)), put32(answer + 16, number);
    put64(answer + 20, now_us), put16(answer + 28, ANSWER_BODY);
    unsigned char *a = answer + HEADER;
    memcpy(a, b, 4);                               /* request id */
    put64(a + 4, session);                         /* the asking gateway's session */
    memcpy(a + 12, b + 4, 14);                     /* src, dst, proto, flags, sport, dport */
    a[26] = (unsigned char)reason;
    put32(a + 30, ttl), put32(a + 34, identity);
    sign(s->keys[sender], answer, HEADER + ANSWER_BODY, answer + HEADER + ANSWER_BODY);
    return ANSWERED;
}

/* One batch, as Authority.serve_batch: up to BATCH datagrams read from ``fd``; a datagram not
 * from its gateway's address is counted and dropped before any HMAC; FLOW_REQUESTs decided,
 * their records written to ``journal`` in one write() (and fdatasync'd if ``power``) before
 * any answer is sent; every other datagram copied to ``rest`` for Python, each as a 2-byte
 * length, the sender's 4-byte address and 2-byte port (network order), then its bytes.
 * Returns the number of datagrams read (0: none waiting), -1 if the journal refused. */
int sl_serve(server *s, int fd, int journal, int power, unsigned char *rest, uint32_t room,
             uint32_t *rest_len)
{
    static unsigned char in[BATCH][DATAGRAM], out[BATCH][FLOW_SIZE], records[BATCH * RECORD];
    static struct sockaddr_in from[BATCH];
    static struct iovec iov[BATCH], oiov[BATCH];
    static struct mmsghdr msgs[BATCH], answers[BATCH];
    for (int i = 0; i < BATCH; i++) {
        iov[i] = (struct iovec){in[i], DATAGRAM};
        msgs[i].msg_hdr = (struct msghdr){.msg_name = &from[i], .msg_namelen = sizeof from[i],
                                          .msg_iov = &iov[i], .msg_iovlen = 1};
    }
    int got = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
    if (got <= 0)
        return 0;
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    double now = t.tv_sec + t.tv_nsec / 1e9;
    uint64_t now_us = (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
    int answered = 0;
    *rest_len = 0;
    for (int i = 0; i < got; i++) {
        uint32_t n = msgs[i].msg_len, sender = n >= 8 ? get32(in[i] + 4) : GATEWAYS;
        if (sender >= GATEWAYS || s->sources[sender] != from[i].sin_addr.s_addr) {
            s->counts[WRONG_SOURCE]++;
            continue;
        }
        int verdict = sl_flow(s, in[i], n, now, now_us, out[answered],
                              records + answered * RECORD);
        if (verdict == TO_PYTHON && *rest_len + 8 + n <= room) {
            unsigned char *r = rest + *rest_len;
            put16(r, (uint16_t)n);
            memcpy(r + 2, &from[i].sin_addr.s_addr, 4), memcpy(r + 6, &from[i].sin_port, 2);
            memcpy(r + 8, in[i], n);
            *rest_len += 8 + n;
            continue;
        }
        s->counts[verdict]++;
        if (verdict != ANSWERED)
            continue;
        s->counts[out[answered][3] == GRANT ? GRANTED : DENIED]++;
        oiov[answered] = (struct iovec){out[answered], FLOW_SIZE};
        answers[answered].msg_hdr = (struct msghdr){
            .msg_name = &from[i], .msg_namelen = sizeof from[i], .msg_iov = &oiov[answered],
            .msg_iovlen = 1};
        answered++;
    }
    if (answered) { /* durable before anyone is answered */
        if (write_all(journal, records, (size_t)answered * RECORD) ||
            (power && fdatasync(journal)))
            return -1;
        s->counts[UNSENT] += (uint64_t)send_runs(fd, answers, oiov, answered);
    }
    return got;
}

