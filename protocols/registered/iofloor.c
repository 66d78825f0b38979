/* The floor under the authority's compiled decisions on this machine: their datagram I/O with
 * nothing decided. Per batch, as sl_serve (flowcore.c) does it: poll, one recvmmsg of up to
 * BATCH datagrams, one write() of a RECORD-byte record per datagram to a journal file, and
 * each datagram sent back to its sender as the answer, in GSO runs (serveio.h). No source
 * check, no HMAC, no lookup, no replay window: what is left is the kernel's share and the
 * loop's, which no authority on UDP sockets here avoids.
 *
 *   splinterlab-iofloor PORT JOURNAL
 *   (serves on 127.0.0.1:PORT until SIGTERM, then prints)
 *   {"datagrams": N, "cpu_s": S, "per_cpu_second": R, "system_share": F}
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "serveio.h"

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static double seconds_of(struct timeval t)
{
    return t.tv_sec + t.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    if (argc != 3 || atoi(argv[1]) <= 0) {
        fprintf(stderr, "usage: splinterlab-iofloor PORT JOURNAL\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0), big = 16 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    struct sockaddr_in here = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1])),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int journal = open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_TRUNC, 0600);
    if (fd < 0 || bind(fd, (struct sockaddr *)&here, sizeof here) || journal < 0) {
        perror("iofloor");
        return 1;
    }
    struct sigaction term = {.sa_handler = on_term};
    sigaction(SIGTERM, &term, NULL);

    static unsigned char in[BATCH][DATAGRAM], records[BATCH * RECORD];
    static struct sockaddr_in from[BATCH];
    static struct iovec iov[BATCH], oiov[BATCH];
    static struct mmsghdr msgs[BATCH];
    unsigned long datagrams = 0, unsent = 0;
    struct pollfd ready = {.fd = fd, .events = POLLIN};
    printf("ready\n");
    fflush(stdout);
    while (!stop) {
        if (poll(&ready, 1, 100) <= 0)
            continue;
        for (int i = 0; i < BATCH; i++) {
            iov[i] = (struct iovec){in[i], DATAGRAM};
            msgs[i].msg_hdr = (struct msghdr){.msg_name = &from[i],
                                              .msg_namelen = sizeof from[i],
                                              .msg_iov = &iov[i], .msg_iovlen = 1};
        }
        int got = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
        if (got <= 0)
            continue;
        for (int i = 0; i < got; i++) {
            memcpy(records + i * RECORD, in[i], RECORD);
            oiov[i] = (struct iovec){in[i], msgs[i].msg_len};
            msgs[i].msg_hdr.msg_iov = &oiov[i]; /* a datagram sent alone goes as it came */
        }
        if (write_all(journal, records, (size_t)got * RECORD)) {
            perror("iofloor: journal");
            return 1;
        }
        unsent += (unsigned long)send_runs(fd, msgs, oiov, got);
        datagrams += (unsigned long)got;
    }
    struct rusage use;
    getrusage(RUSAGE_SELF, &use);
    double user = seconds_of(use.ru_utime), system = seconds_of(use.ru_stime);
    double cpu = user + system;
    printf("{\"datagrams\": %lu, \"unsent\": %lu, \"cpu_s\": %.6f, \"per_cpu_second\": %.0f, "
           "\"system_share\": %.3f}\n",
           datagrams, unsent, cpu, cpu > 0 ? datagrams / cpu : 0.0, cpu > 0 ? system / cpu : 0.0);
    return 0;
}
