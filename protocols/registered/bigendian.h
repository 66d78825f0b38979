/* Network-order integers in a message, as codec.py's struct formats ("!") lay them out. */
#ifndef SPLINTERLAB_BIGENDIAN_H
#define SPLINTERLAB_BIGENDIAN_H
#include <stdint.h>

static inline uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static inline void put16(unsigned char *p, uint16_t v)
{
    p[0] = v >> 8, p[1] = (unsigned char)v;
}

static inline void put32(unsigned char *p, uint32_t v)
{
    p[0] = v >> 24, p[1] = v >> 16, p[2] = v >> 8, p[3] = (unsigned char)v;
}

static inline void put64(unsigned char *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32)), put32(p + 4, (uint32_t)v);
}
#endif
