/* The compiled decision path's parts, shared by its files (admitcore.c: the policy and the
 * decision; flowcore.c: a FLOW_REQUEST checked, decided, logged and answered). */
#ifndef SPLINTERLAB_ADMITCORE_H
#define SPLINTERLAB_ADMITCORE_H
#include <stdint.h>

typedef struct {
    uint32_t *nets; /* each already masked */
    uint8_t *lengths;
    uint32_t count;
} prefixes;

typedef struct policy policy;

int sl_prefixes_set(prefixes *p, const uint32_t *nets, const uint8_t *lengths, uint32_t n);
int sl_covered(uint32_t address, const prefixes *p);
int sl_admit(const policy *p, uint32_t gateway, uint32_t src, uint32_t dst, uint32_t proto,
             int inbound, uint32_t *identity, uint32_t *ttl_ms);
#endif
