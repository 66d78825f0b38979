/* The compiled decision path's datagram I/O, shared by it (flowcore.c) and by the floor it is
 * measured against (iofloor.c): batches of BATCH datagrams read at once, one journal write()
 * per batch of RECORD-byte records, and answers sent back in runs, each run to one address in
 * one send that the kernel cuts into datagrams (UDP GSO: a third of the cost of one send
 * each, here); where the kernel refuses that, one datagram each. */
#ifndef SPLINTERLAB_SERVEIO_H
#define SPLINTERLAB_SERVEIO_H

#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#include <unistd.h>

#define BATCH 256     /* datagrams per batch, as the Python loop's batch */
#define DATAGRAM 2048 /* longer ones are no message of the protocol */
#define RECORD 39     /* one decision in the admission log: an 8-byte frame, a 31-byte row */
#define SEGMENTS 64   /* datagrams to one address sent as one, at most this many */

static inline int same_address(const struct mmsghdr *a, const struct mmsghdr *b)
{
    const struct sockaddr_in *x = a->msg_hdr.msg_name, *y = b->msg_hdr.msg_name;
    return x->sin_addr.s_addr == y->sin_addr.s_addr && x->sin_port == y->sin_port;
}

/* The n datagrams iov[i], each to the address msgs[i] names (msgs[i]'s own iov: the same
 * datagram, for a send of its own); a run is consecutive datagrams of one size to one
 * address. Returns how many were not sent; a failed send loses its own datagrams only. */
static inline int send_runs(int fd, struct mmsghdr *msgs, struct iovec *iov, int n)
{
    char control[CMSG_SPACE(sizeof(uint16_t))];
    int unsent = 0;
    for (int at = 0, run; at < n; at += run) {
        uint16_t size = (uint16_t)iov[at].iov_len;
        for (run = 1; at + run < n && run < SEGMENTS && iov[at + run].iov_len == size &&
                      same_address(&msgs[at], &msgs[at + run]);)
            run++;
        struct msghdr h = msgs[at].msg_hdr;
        h.msg_iov = iov + at, h.msg_iovlen = (size_t)run;
        if (run > 1) {
            memset(control, 0, sizeof control);
            h.msg_control = control, h.msg_controllen = sizeof control;
            struct cmsghdr *c = CMSG_FIRSTHDR(&h);
            c->cmsg_level = SOL_UDP, c->cmsg_type = UDP_SEGMENT;
            c->cmsg_len = CMSG_LEN(sizeof size);
            memcpy(CMSG_DATA(c), &size, sizeof size);
        }
        if (sendmsg(fd, &h, MSG_DONTWAIT) >= 0)
            continue;
        for (int i = at; i < at + run; i++) /* one by one, as any kernel takes them */
            unsent += sendmsg(fd, &msgs[i].msg_hdr, MSG_DONTWAIT) < 0;
    }
    return unsent;
}

/* ``n`` bytes to ``fd`` whatever the kernel takes per write(); 0, or -1 if it refused. */
static inline int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n) {
        ssize_t wrote = write(fd, p, n);
        if (wrote < 0)
            return -1;
        p += wrote, n -= (size_t)wrote;
    }
    return 0;
}

#endif
