/*
 * splinterlab-delayd: userspace link delay for kernels without netem.
 *
 * One process per run serves every delayed link of every node: it holds one nfnetlink_queue
 * socket per network namespace (opened by entering the namespace, creating the socket and
 * coming back), and iptables in each namespace sends a link's packets to queue N (N = the
 * interface's port). For each packet it notes (release time, packet id) in a FIFO per queue
 * and, when packets are due, accepts them with one batch verdict per queue ("every id up to
 * N"). Release times never decrease within a queue, so jitter does not reorder packets and a
 * batch verdict is exact. Only metadata crosses to userspace, never payloads; GSO packets are
 * queued whole. If this process is not listening, the kernel drops the packets: a link never
 * silently loses its delay.
 *
 * Two corrections keep the delay honest (see topologies/calibration.py):
 *   advance_ns  the path's own cost per traversal (kernel to here and back), measured at
 *               bring-up; each packet is released that much earlier than its delay.
 *   wake-up     the timer is armed early by the mean lateness of its own past wake-ups,
 *               measured continuously, so a busier machine does not lengthen every delay.
 *
 * Config (text; re-read on SIGHUP; the generation applied is written to CONFIG.ready):
 *   generation N
 *   advance_ns NS
 *   realtime PRIO                       SCHED_FIFO at PRIO while releasing packet by packet
 *                                       (0: never); ordinary scheduling while polling
 *   ns NAME PATH                        a namespace, e.g. r1 /proc/4242/ns/net
 *   queue NAME NUMBER DELAY_NS JITTER_NS SEED
 * Statistics are written to CONFIG.stats (JSON) every second, on SIGUSR1 and on exit.
 *
 *   splinterlab-delayd CONFIG       serve
 *   splinterlab-delayd --check      bind a queue in the current namespace and exit 0
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/netlink.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_NS 1024
#define MAX_QUEUES 65536 /* queue numbers are interface ports: far below this */
#define BATCH 64
#define PER_READ 4096 /* packets taken per read of a socket */
#define MSG_BUF 1024
#define QUEUE_MAXLEN 65536
#define LATENESS_BUCKETS 24 /* log2 microsecond buckets: <1us, <2us, ... */
#define WAKE_MAX_NS 300000  /* never arm the timer more than 0.3 ms early */
#define BUSY 4              /* a read that finds this many packets switches to polling */
#define STEP_NS 50000       /* under load: read every 50 us, release what is due within 50 us */

struct entry {
    int64_t due;
    uint32_t id;
};

struct queue {
    struct ns *ns;
    uint16_t number;
    int64_t delay, jitter;
    uint64_t rng;
    struct entry *ring;
    uint32_t cap, head, len;
    int64_t last_due;
    uint64_t packets, max_backlog;
    struct queue *next; /* in its namespace */
};

struct ns {
    char name[256];
    char path[256];
    int sock;
    uint32_t seq;
    struct queue *queues;
    struct queue *by_number[256]; /* fast lookup for small port numbers */
    uint64_t overruns;
    int seen;         /* listed in the current config */
    int polled;       /* busy: read on the timer every READ_NS, not woken per packet */
    int64_t last_read;
};

static struct ns *namespaces[MAX_NS];
static int n_ns;
static int64_t advance_ns;
static int rt_priority;
static int64_t wake_ns;          /* mean lateness of timer wake-ups (EWMA) */
static uint64_t wakes_timer, wakes_packet, polls, stats_written;
static uint64_t wake_samples;
static uint64_t release_hist[LATENESS_BUCKETS];
static uint64_t early_releases;
static long generation = -1;
static const char *config_path;
static int epfd, timer_fd, signal_fd;

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "splinterlab-delayd: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t splitmix(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* -- netlink -------------------------------------------------------------------------- */
static size_t put_attr(char *buf, size_t off, uint16_t type, const void *data, uint16_t len) {
    struct nlattr *a = (struct nlattr *)(buf + off);
    a->nla_len = NLA_HDRLEN + len;
    a->nla_type = type;
    memcpy(buf + off + NLA_HDRLEN, data, len);
    size_t total = NLA_ALIGN(a->nla_len);
    memset(buf + off + NLA_HDRLEN + len, 0, total - NLA_HDRLEN - len);
    return off + total;
}

static size_t start_msg(char *buf, uint16_t type, uint16_t flags, uint32_t seq, uint16_t queue) {
    struct nlmsghdr *h = (struct nlmsghdr *)buf;
    h->nlmsg_type = (NFNL_SUBSYS_QUEUE << 8) | type;
    h->nlmsg_flags = NLM_F_REQUEST | flags;
    h->nlmsg_seq = seq;
    h->nlmsg_pid = 0;
    struct nfgenmsg *g = (struct nfgenmsg *)(buf + NLMSG_HDRLEN);
    g->nfgen_family = AF_UNSPEC;
    g->version = NFNETLINK_V0;
    g->res_id = htons(queue);
    return NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg));
}

static void end_msg(char *buf, size_t len) { ((struct nlmsghdr *)buf)->nlmsg_len = len; }

/* Send a config request and wait for its acknowledgement; 0 or an errno. */
static int config_request(struct ns *n, uint16_t queue, const char *attrs, size_t attrs_len) {
    char buf[256], reply[4096];
    size_t off = start_msg(buf, NFQNL_MSG_CONFIG, NLM_F_ACK, ++n->seq, queue);
    memcpy(buf + off, attrs, attrs_len);
    end_msg(buf, off + attrs_len);
    if (send(n->sock, buf, off + attrs_len, 0) < 0) return errno;
    for (;;) {
        ssize_t got = recv(n->sock, reply, sizeof reply, 0);
        if (got < 0) {
            if (errno == EINTR) continue;
            if (errno == ENOBUFS) { n->overruns++; continue; }
            return errno;
        }
        for (struct nlmsghdr *h = (struct nlmsghdr *)reply; NLMSG_OK(h, (size_t)got);
             h = NLMSG_NEXT(h, got)) {
            if (h->nlmsg_type == NLMSG_ERROR && h->nlmsg_seq == n->seq)
                return -((struct nlmsgerr *)NLMSG_DATA(h))->error;
        }
    }
}

static int bind_queue(struct ns *n, uint16_t queue) {
    char attrs[128];
    struct nfqnl_msg_config_cmd cmd = {.command = NFQNL_CFG_CMD_BIND, .pf = 0};
    size_t len = put_attr(attrs, 0, NFQA_CFG_CMD, &cmd, sizeof cmd);
    int err = config_request(n, queue, attrs, len);
    if (err) return err;
    struct nfqnl_msg_config_params params = {.copy_range = 0, .copy_mode = NFQNL_COPY_META};
    uint32_t maxlen = htonl(QUEUE_MAXLEN), gso = htonl(NFQA_CFG_F_GSO);
    len = put_attr(attrs, 0, NFQA_CFG_PARAMS, &params, sizeof params);
    len = put_attr(attrs, len, NFQA_CFG_QUEUE_MAXLEN, &maxlen, sizeof maxlen);
    len = put_attr(attrs, len, NFQA_CFG_MASK, &gso, sizeof gso);
    len = put_attr(attrs, len, NFQA_CFG_FLAGS, &gso, sizeof gso);
    return config_request(n, queue, attrs, len);
}

static int open_queue_socket(void) {
    int s = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_NETFILTER);
    if (s < 0) return -1;
    int size = 16 << 20;
    setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
    struct sockaddr_nl addr = {.nl_family = AF_NETLINK};
    if (bind(s, (struct sockaddr *)&addr, sizeof addr) < 0) { close(s); return -1; }
    return s;
}

/* The socket of namespace ``path``: entered, created, left. */
static int socket_in(const char *path) {
    int here = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int there = open(path, O_RDONLY | O_CLOEXEC);
    if (here < 0 || there < 0) die("cannot open namespace %s: %s", path, strerror(errno));
    if (setns(there, CLONE_NEWNET) < 0) die("cannot enter %s: %s", path, strerror(errno));
    int s = open_queue_socket();
    int saved = errno;
    if (setns(here, CLONE_NEWNET) < 0) die("cannot come back from %s", path);
    close(here);
    close(there);
    if (s < 0) die("no nfnetlink_queue socket in %s: %s", path, strerror(saved));
    return s;
}

/* -- packets -------------------------------------------------------------------------- */
static void push(struct queue *q, int64_t due, uint32_t id) {
    if (q->len == q->cap) {
        uint32_t cap = q->cap ? 2 * q->cap : 1024;
        struct entry *ring = malloc(sizeof *ring * cap);
        if (!ring) die("out of memory");
        for (uint32_t i = 0; i < q->len; i++) ring[i] = q->ring[(q->head + i) % q->cap];
        free(q->ring);
        q->ring = ring;
        q->cap = cap;
        q->head = 0;
    }
    q->ring[(q->head + q->len) % q->cap] = (struct entry){due, id};
    q->len++;
    q->packets++;
    if (q->len > q->max_backlog) q->max_backlog = q->len;
}

static struct queue *find_queue(struct ns *n, uint16_t number) {
    if (number < 256) return n->by_number[number];
    for (struct queue *q = n->queues; q; q = q->next)
        if (q->number == number) return q;
    return NULL;
}

/* The (queue, packet id) of a queued-packet message; 0 if it is something else. */
static struct queue *parse(struct ns *n, const struct nlmsghdr *h, uint32_t *id) {
    if (h->nlmsg_type != ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET)) return NULL;
    const struct nfgenmsg *g = NLMSG_DATA(h);
    int remaining = h->nlmsg_len - NLMSG_HDRLEN - NLMSG_ALIGN(sizeof *g);
    const struct nlattr *a = (const void *)((const char *)g + NLMSG_ALIGN(sizeof *g));
    while (remaining >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= remaining) {
        if ((a->nla_type & NLA_TYPE_MASK) == NFQA_PACKET_HDR) {
            const struct nfqnl_msg_packet_hdr *ph = (const void *)((const char *)a + NLA_HDRLEN);
            *id = ntohl(ph->packet_id);
            return find_queue(n, ntohs(g->res_id));
        }
        remaining -= NLA_ALIGN(a->nla_len);
        a = (const void *)((const char *)a + NLA_ALIGN(a->nla_len));
    }
    return NULL;
}

static void arrive(struct queue *q, uint32_t id, int64_t at) {
    int64_t delay = q->delay;
    if (q->jitter) delay += (int64_t)(splitmix(&q->rng) % (2 * q->jitter + 1)) - q->jitter;
    int64_t due = at + delay - advance_ns;
    if (due < q->last_due) due = q->last_due;
    q->last_due = due;
    push(q, due, id);
}

static void set_polled(struct ns *n, int polled) {
    struct epoll_event ev = {.events = polled ? 0 : EPOLLIN, .data.ptr = n};
    epoll_ctl(epfd, EPOLL_CTL_MOD, n->sock, &ev);
    n->polled = polled;
}

static char bufs[BATCH][MSG_BUF];
static struct iovec iov[BATCH];
static struct mmsghdr msgs[BATCH];

/* Read everything waiting. Woken by a packet, each gets the time of reading; when polled,
 * those read arrived since the last read: they get times spread evenly over that interval. */
static void receive(struct ns *n, int64_t now) {
    static struct queue *queues[PER_READ];
    static uint32_t ids[PER_READ];
    int total = 0;
    while (total + BATCH <= PER_READ) {
        int got = recvmmsg(n->sock, msgs, BATCH, MSG_DONTWAIT, NULL);
        if (got < 0) {
            if (errno == ENOBUFS) { n->overruns++; continue; }
            if (errno == EINTR) continue;
            break; /* EAGAIN: drained */
        }
        for (int i = 0; i < got; i++) {
            int len = msgs[i].msg_len;
            for (struct nlmsghdr *h = (struct nlmsghdr *)bufs[i]; NLMSG_OK(h, (unsigned)len);
                 h = NLMSG_NEXT(h, len)) {
                queues[total] = parse(n, h, &ids[total]);
                if (queues[total]) total++;
            }
        }
        if (got < BATCH) break;
    }
    int64_t since = n->polled && n->last_read < now ? n->last_read : now;
    for (int i = 0; i < total; i++)
        arrive(queues[i], ids[i], since + (now - since) * (i + 1) / total);
    n->last_read = now;
    if (!n->polled && total >= BUSY) set_polled(n, 1);
    else if (n->polled && total < BUSY) set_polled(n, 0);
}

static void note_release(int64_t lateness) {
    if (lateness < 0) { early_releases++; return; }
    int64_t us = lateness / 1000;
    int b = 0;
    while (us && b < LATENESS_BUCKETS - 1) { us >>= 1; b++; }
    release_hist[b]++;
}

/* Accept what is due by ``horizon``, one batch verdict per queue and one send per namespace;
 * return the earliest due time left (INT64_MAX: nothing waits). */
static int64_t release(int64_t now, int64_t horizon) {
    int64_t soonest = INT64_MAX;
    static char buf[65536];
    for (int i = 0; i < n_ns; i++) {
        struct ns *n = namespaces[i];
        size_t off = 0;
        for (struct queue *q = n->queues; q; q = q->next) {
            uint32_t last = 0;
            int any = 0;
            while (q->len && q->ring[q->head].due <= horizon) {
                note_release(now - q->ring[q->head].due);
                last = q->ring[q->head].id;
                any = 1;
                q->head = (q->head + 1) % q->cap;
                q->len--;
            }
            if (any) {
                size_t start = off;
                off += start_msg(buf + off, NFQNL_MSG_VERDICT_BATCH, 0, 0, q->number);
                struct nfqnl_msg_verdict_hdr v = {htonl(NF_ACCEPT), htonl(last)};
                off = put_attr(buf, off, NFQA_VERDICT_HDR, &v, sizeof v);
                end_msg(buf + start, off - start);
                if (off > sizeof buf - 128) {
                    send(n->sock, buf, off, 0);
                    off = 0;
                }
            }
            if (q->len && q->ring[q->head].due < soonest) soonest = q->ring[q->head].due;
        }
        if (off) send(n->sock, buf, off, 0);
    }
    return soonest;
}

/* -- configuration -------------------------------------------------------------------- */
static struct ns *ns_named(const char *name) {
    for (int i = 0; i < n_ns; i++)
        if (!strcmp(namespaces[i]->name, name)) return namespaces[i];
    return NULL;
}

static void add_ns(const char *name, const char *path) {
    struct ns *n = ns_named(name);
    if (n) {
        n->seen = 1;
        return;
    }
    if (n_ns == MAX_NS) die("more than %d namespaces", MAX_NS);
    n = calloc(1, sizeof *n);
    snprintf(n->name, sizeof n->name, "%s", name);
    snprintf(n->path, sizeof n->path, "%s", path);
    n->sock = socket_in(path);
    n->seen = 1;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = n};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, n->sock, &ev) < 0) die("epoll: %s", strerror(errno));
    namespaces[n_ns++] = n;
}

static void set_queue(const char *name, unsigned number, int64_t delay, int64_t jitter,
                      uint64_t seed) {
    struct ns *n = ns_named(name);
    if (!n) die("queue %u names an unknown namespace %s", number, name);
    if (number >= MAX_QUEUES) die("queue number %u out of range", number);
    struct queue *q = find_queue(n, number);
    if (!q) {
        int err = bind_queue(n, number);
        if (err) die("cannot bind queue %u in %s: %s", number, name, strerror(err));
        q = calloc(1, sizeof *q);
        q->ns = n;
        q->number = number;
        q->rng = seed;
        q->next = n->queues;
        n->queues = q;
        if (number < 256) n->by_number[number] = q;
    }
    q->delay = delay;
    q->jitter = jitter > delay ? delay : jitter;
}

/* A namespace no longer listed (its node is gone): stop serving it. */
static void drop_unseen(void) {
    int kept = 0;
    for (int i = 0; i < n_ns; i++) {
        struct ns *n = namespaces[i];
        if (n->seen) {
            namespaces[kept++] = n;
            continue;
        }
        epoll_ctl(epfd, EPOLL_CTL_DEL, n->sock, NULL);
        close(n->sock);
        for (struct queue *q = n->queues, *next; q; q = next) {
            next = q->next;
            free(q->ring);
            free(q);
        }
        free(n);
    }
    n_ns = kept;
}

static void write_file(const char *suffix, const char *text) {
    char path[512], tmp[520];
    snprintf(path, sizeof path, "%s%s", config_path, suffix);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    fputs(text, f);
    fclose(f);
    rename(tmp, path);
}

/* Real-time while packets are released one wake-up at a time: then the timer firing on time
 * is the whole of the delay's accuracy, and the process sleeps between releases. Ordinary
 * while polling under load: a real-time poller on two cores starves the receivers it feeds
 * (here: 49 330 packets/s without loss instead of 137 572). */
static void schedule_for(int polling) {
    if (!rt_priority) return;
    struct sched_param sp = {.sched_priority = polling ? 0 : rt_priority};
    sched_setscheduler(0, polling ? SCHED_OTHER : SCHED_FIFO, &sp);
}

static void load_config(void) {
    FILE *f = fopen(config_path, "r");
    if (!f) die("cannot read %s: %s", config_path, strerror(errno));
    for (int i = 0; i < n_ns; i++) namespaces[i]->seen = 0;
    char line[512], a[256], b[256];
    long gen = -1;
    long long x, y, z;
    unsigned number;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "generation %ld", &gen) == 1) continue;
        if (sscanf(line, "advance_ns %lld", &x) == 1) { advance_ns = x; continue; }
        if (sscanf(line, "realtime %lld", &x) == 1) { rt_priority = (int)x; continue; }
        if (sscanf(line, "ns %255s %255s", a, b) == 2) { add_ns(a, b); continue; }
        if (sscanf(line, "queue %255s %u %lld %lld %llu", a, &number, &x, &y,
                   (unsigned long long *)&z) == 5) {
            set_queue(a, number, x, y, (uint64_t)z);
            continue;
        }
        if (line[0] != '\n' && line[0] != '#') die("cannot understand config line: %s", line);
    }
    fclose(f);
    drop_unseen();
    generation = gen;
    char text[32];
    snprintf(text, sizeof text, "%ld", gen);
    write_file(".ready", text);
}

static void write_stats(void) {
    static char text[1 << 20];
    size_t off = 0, cap = sizeof text;
#define OUT(...) off += (size_t)snprintf(text + off, off < cap ? cap - off : 0, __VA_ARGS__)
    stats_written++;
    OUT("{\"written\": %llu, \"generation\": %ld, \"advance_ns\": %lld, \"wake_margin_ns\": %lld, "
        "\"wake_samples\": %llu, \"wakes_timer\": %llu, \"wakes_packet\": %llu, "
        "\"polls\": %llu, \"early_releases\": %llu, \"release_lateness_log2_us\": [",
        (unsigned long long)stats_written, generation, (long long)advance_ns, (long long)wake_ns,
        (unsigned long long)wake_samples,
        (unsigned long long)wakes_timer, (unsigned long long)wakes_packet,
        (unsigned long long)polls, (unsigned long long)early_releases);
    for (int b = 0; b < LATENESS_BUCKETS; b++)
        OUT("%s%llu", b ? ", " : "", (unsigned long long)release_hist[b]);
    OUT("], \"namespaces\": {");
    for (int i = 0; i < n_ns && off < cap - 256; i++) {
        struct ns *n = namespaces[i];
        OUT("%s\"%s\": {\"overruns\": %llu, \"queues\": {", i ? ", " : "", n->name,
            (unsigned long long)n->overruns);
        int first = 1;
        for (struct queue *q = n->queues; q && off < cap - 128; q = q->next, first = 0)
            OUT("%s\"%u\": {\"packets\": %llu, \"max_backlog\": %llu}", first ? "" : ", ",
                q->number, (unsigned long long)q->packets, (unsigned long long)q->max_backlog);
        OUT("}}");
    }
    OUT("}}\n");
#undef OUT
    if (off < cap) write_file(".stats", text);
}

/* -- the loop ------------------------------------------------------------------------- */
/* One shot at ``at`` (INT64_MAX: disarmed), or every ``period`` ns from now on. */
static void arm(int64_t at, int64_t period) {
    struct itimerspec spec = {0};
    if (period) {
        spec.it_value.tv_nsec = spec.it_interval.tv_nsec = period;
        timerfd_settime(timer_fd, 0, &spec, NULL);
        return;
    }
    if (at != INT64_MAX) {
        if (at <= 0) at = 1;
        spec.it_value.tv_sec = at / 1000000000;
        spec.it_value.tv_nsec = at % 1000000000;
    }
    timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &spec, NULL);
}

static int check(void) {
    struct ns n = {.sock = open_queue_socket()};
    if (n.sock < 0) {
        fprintf(stderr, "no nfnetlink_queue socket: %s\n", strerror(errno));
        return 1;
    }
    int err = bind_queue(&n, 7);
    if (err) fprintf(stderr, "binding a queue failed: %s\n", strerror(err));
    return err ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "--check")) return check();
    if (argc != 2) {
        fprintf(stderr, "usage: splinterlab-delayd CONFIG | --check\n");
        return 2;
    }
    config_path = argv[1];
    for (int i = 0; i < BATCH; i++) {
        iov[i] = (struct iovec){bufs[i], MSG_BUF};
        msgs[i].msg_hdr = (struct msghdr){.msg_iov = &iov[i], .msg_iovlen = 1};
    }
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* the default 50 us slack would add to delays */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGHUP);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGUSR1);
    sigprocmask(SIG_BLOCK, &signals, NULL);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    signal_fd = signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
    if (epfd < 0 || timer_fd < 0 || signal_fd < 0) die("epoll/timerfd/signalfd: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &timer_fd};
    epoll_ctl(epfd, EPOLL_CTL_ADD, timer_fd, &ev);
    ev.data.ptr = &signal_fd;
    epoll_ctl(epfd, EPOLL_CTL_ADD, signal_fd, &ev);
    load_config();

    /* Idle: a one-shot timer for the next packet due (armed early by the wake-up margin),
     * and a wake-up per arriving packet. Busy (some namespace polled): a periodic tick every
     * STEP_NS that reads the polled sockets and releases what is due to the nearest tick. */
    int64_t armed = INT64_MAX, next_stats = 0;
    int ticking = 0;
    struct epoll_event events[64];
    for (;;) {
        int got = epoll_wait(epfd, events, 64, 1000);
        int64_t now = now_ns();
        for (int i = 0; i < got; i++) {
            void *p = events[i].data.ptr;
            if (p == &timer_fd) {
                wakes_timer++;
                uint64_t expirations;
                if (read(timer_fd, &expirations, sizeof expirations) > 0 && !ticking &&
                    armed != INT64_MAX) {
                    int64_t late = now - armed;
                    if (late >= 0 && late < 10 * WAKE_MAX_NS) {
                        /* the mean wake-up lateness, tracked: arm that much earlier */
                        if (late > WAKE_MAX_NS) late = WAKE_MAX_NS;
                        wake_ns += (late - wake_ns) / 16;
                        wake_samples++;
                    }
                    armed = INT64_MAX;
                }
            } else if (p == &signal_fd) {
                struct signalfd_siginfo info;
                while (read(signal_fd, &info, sizeof info) == sizeof info) {
                    if (info.ssi_signo == SIGHUP) {
                        load_config();
                    } else if (info.ssi_signo == SIGUSR1) {
                        write_stats();
                    } else {
                        write_stats();
                        return 0;
                    }
                }
            } else {
                wakes_packet++;
                receive(p, now);
            }
        }
        now = now_ns();
        int busy = 0;
        for (int i = 0; i < n_ns; i++) {
            struct ns *n = namespaces[i];
            if (n->polled && n->last_read + STEP_NS / 2 <= now) {
                polls++;
                receive(n, now);
            }
            busy |= n->polled;
        }
        int64_t due = release(now, now + (busy ? STEP_NS / 2 : wake_ns));
        if (busy != ticking) {
            ticking = busy;
            schedule_for(busy);
            armed = INT64_MAX;
            arm(INT64_MAX, busy ? STEP_NS : 0);
        }
        if (!ticking) {
            int64_t want = due == INT64_MAX ? INT64_MAX : due - wake_ns;
            if (want != armed) {
                arm(want, 0);
                armed = want;
            }
        }
        if (now >= next_stats) {
            write_stats();
            next_stats = now + 1000000000;
        }
    }
}
