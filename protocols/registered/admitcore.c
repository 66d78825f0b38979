/* Admission decisions in C: the same pure function as admission.admit, over a copy of the
 * policy the Python authority keeps in step (fastpath.CompiledPolicy). The first part of a
 * compiled decision path; a differential test (tests/test_fastpath.py) holds every answer
 * to the Python reference on random policies and requests.
 *
 * A policy is a handle from sl_policy_new(). Bindings change one at a time (sl_bind,
 * sl_unbind); revocations one at a time; the lists an operator replaces whole (blocked,
 * infrastructure, a region's essential prefixes) are set whole.
 */
#include <stdlib.h>
#include <string.h>

#include "admitcore.h"

enum reason {
    OK = 0, UNREGISTERED = 1, REVOKED = 2, PEER_REVOKED = 3, BLOCKED = 4, SHUT_DOWN = 5,
    WRONG_GATEWAY = 11, INFRASTRUCTURE = 13, PROTOCOL = 15
};

/* -- a map from 32-bit keys to 32-bit values; keys 0 and 0xFFFFFFFF mark empty and removed
 *    slots, so neither is ever stored or found (sl_bind refuses them) ------------------- */
#define EMPTY 0u
#define GONE 0xFFFFFFFFu

typedef struct {
    uint32_t *keys, *values;
    uint32_t capacity, used, live; /* used: live and tombstones */
} map;

static uint32_t hash(uint32_t k)
{
    k ^= k >> 16;
    k *= 0x45d9f3bu;
    return k ^ (k >> 16);
}

static int map_init(map *m, uint32_t capacity)
{
    m->keys = calloc(capacity, sizeof *m->keys);
    m->values = calloc(capacity, sizeof *m->values);
    m->capacity = capacity, m->used = m->live = 0;
    return m->keys && m->values ? 0 : -1;
}

static int reserved(uint32_t key) { return key == EMPTY || key == GONE; }

static int map_find(const map *m, uint32_t key, uint32_t *value)
{
    if (reserved(key))
        return 0;
    for (uint32_t i = hash(key) & (m->capacity - 1);; i = (i + 1) & (m->capacity - 1)) {
        if (m->keys[i] == EMPTY)
            return 0;
        if (m->keys[i] == key) {
            if (value)
                *value = m->values[i];
            return 1;
        }
    }
}

static int map_put(map *m, uint32_t key, uint32_t value);

/* into a table of ``capacity`` slots: twice as many when it is full of live keys, as many
 * when tombstones fill it */
static int map_rehash(map *m, uint32_t capacity)
{
    map bigger;
    if (map_init(&bigger, capacity))
        return -1;
    for (uint32_t i = 0; i < m->capacity; i++)
        if (m->keys[i] != EMPTY && m->keys[i] != GONE)
            map_put(&bigger, m->keys[i], m->values[i]);
    free(m->keys), free(m->values);
    *m = bigger;
    return 0;
}

static int map_put(map *m, uint32_t key, uint32_t value)
{
    if (reserved(key))
        return -1;
    if (2 * (m->used + 1) > m->capacity &&
        map_rehash(m, 4 * (m->live + 1) > m->capacity ? 2 * m->capacity : m->capacity))
        return -1;
    uint32_t i = hash(key) & (m->capacity - 1), free_slot = UINT32_MAX;
    for (;; i = (i + 1) & (m->capacity - 1)) {
        if (m->keys[i] == key) {
            m->values[i] = value;
            return 0;
        }
        if (m->keys[i] == GONE && free_slot == UINT32_MAX)
            free_slot = i;
        if (m->keys[i] == EMPTY)
            break;
    }
    if (free_slot == UINT32_MAX) {
        free_slot = i;
        m->used++;
    }
    m->keys[free_slot] = key, m->values[free_slot] = value;
    m->live++;
    return 0;
}

static void map_remove(map *m, uint32_t key)
{
    for (uint32_t i = hash(key) & (m->capacity - 1); m->keys[i] != EMPTY;
         i = (i + 1) & (m->capacity - 1))
        if (m->keys[i] == key) {
            m->keys[i] = GONE, m->values[i] = 0;
            m->live--;
            return;
        }
}

/* -- prefix lists --------------------------------------------------------------------- */
static uint32_t mask(uint8_t length)
{
    return length ? 0xFFFFFFFFu << (32 - length) : 0;
}

int sl_prefixes_set(prefixes *p, const uint32_t *nets, const uint8_t *lengths, uint32_t n)
{
    free(p->nets), free(p->lengths);
    p->nets = malloc((n ? n : 1) * sizeof *p->nets);
    p->lengths = malloc(n ? n : 1);
    if (!p->nets || !p->lengths)
        return -1;
    for (uint32_t i = 0; i < n; i++)
        p->nets[i] = nets[i] & mask(lengths[i]), p->lengths[i] = lengths[i];
    p->count = n;
    return 0;
}

int sl_covered(uint32_t address, const prefixes *p)
{
    for (uint32_t i = 0; i < p->count; i++)
        if ((address & mask(p->lengths[i])) == p->nets[i])
            return 1;
    return 0;
}

/* -- the policy ----------------------------------------------------------------------- */
#define REGIONS 256

struct policy {
    uint32_t ttl_ms;
    map identity_at, gateway_of, revoked, region_of; /* region_of: gateway -> region + 1 */
    prefixes blocked, infrastructure, essential[REGIONS];
    uint8_t shut[REGIONS];
    int any_shut;
};

policy *sl_policy_new(uint32_t ttl_ms)
{
    policy *p = calloc(1, sizeof *p);
    if (!p || map_init(&p->identity_at, 1024) || map_init(&p->gateway_of, 1024) ||
        map_init(&p->revoked, 64) || map_init(&p->region_of, 64))
        return NULL;
    p->ttl_ms = ttl_ms;
    return p;
}

void sl_policy_free(policy *p)
{
    map *maps[] = {&p->identity_at, &p->gateway_of, &p->revoked, &p->region_of};
    for (unsigned i = 0; i < sizeof maps / sizeof *maps; i++)
        free(maps[i]->keys), free(maps[i]->values);
    free(p->blocked.nets), free(p->blocked.lengths);
    free(p->infrastructure.nets), free(p->infrastructure.lengths);
    for (int r = 0; r < REGIONS; r++)
        free(p->essential[r].nets), free(p->essential[r].lengths);
    free(p);
}

void sl_ttl(policy *p, uint32_t ttl_ms) { p->ttl_ms = ttl_ms; }

/* identity at address, through gateway; whoever held the address before loses it (the
 * caller unbinds an identity's old address first, as Policy.bind does) */
int sl_bind(policy *p, uint32_t address, uint32_t identity, uint32_t gateway)
{
    return map_put(&p->identity_at, address, identity) ||
           map_put(&p->gateway_of, identity, gateway);
}

void sl_unbind(policy *p, uint32_t address)
{
    if (!reserved(address))
        map_remove(&p->identity_at, address);
}

int sl_revoke(policy *p, uint32_t identity, int revoked)
{
    if (reserved(identity))
        return -1;
    if (!revoked) {
        map_remove(&p->revoked, identity);
        return 0;
    }
    return map_put(&p->revoked, identity, 1);
}

int sl_region(policy *p, uint32_t gateway, uint32_t region)
{
    return region >= REGIONS ? -1 : map_put(&p->region_of, gateway, region + 1);
}

int sl_blocked(policy *p, const uint32_t *nets, const uint8_t *lengths, uint32_t n)
{
    return sl_prefixes_set(&p->blocked, nets, lengths, n);
}

int sl_infrastructure(policy *p, const uint32_t *nets, const uint8_t *lengths, uint32_t n)
{
    return sl_prefixes_set(&p->infrastructure, nets, lengths, n);
}

/* shut = 0 lifts the region's shutdown; otherwise it passes only its essential prefixes */
int sl_shutdown(policy *p, uint32_t region, int shut, const uint32_t *nets,
                const uint8_t *lengths, uint32_t n)
{
    if (region >= REGIONS || sl_prefixes_set(&p->essential[region], nets, lengths, shut ? n : 0))
        return -1;
    p->shut[region] = shut != 0;
    p->any_shut = 0;
    for (int r = 0; r < REGIONS; r++)
        p->any_shut |= p->shut[r];
    return 0;
}

static int region_of(const policy *p, uint32_t gateway, uint32_t *region)
{
    uint32_t r;
    if (!map_find(&p->region_of, gateway, &r))
        return 0;
    *region = r - 1;
    return 1;
}

static int admitted_protocol(uint32_t proto)
{
    return proto == 1 || proto == 6 || proto == 17 || proto == 33 || proto == 132 ||
           proto == 136;
}

/* The reason of the decision; *identity the local identity (0 if none), *ttl_ms the grant's
 * life (0 unless granted). In admission.admit's order. */
int sl_admit(const policy *p, uint32_t gateway, uint32_t src, uint32_t dst, uint32_t proto,
             int inbound, uint32_t *identity, uint32_t *ttl_ms)
{
    uint32_t local = inbound ? dst : src, remote = inbound ? src : dst, id = 0, peer, owner;
    int bound = map_find(&p->identity_at, local, &id);
    *identity = bound ? id : 0;
    *ttl_ms = 0;
    if (!admitted_protocol(proto))
        return PROTOCOL;
    if (sl_covered(remote, &p->infrastructure))
        return INFRASTRUCTURE;
    if (!bound)
        return UNREGISTERED;
    if (!map_find(&p->gateway_of, id, &owner) || owner != gateway)
        return WRONG_GATEWAY;
    if (map_find(&p->revoked, id, NULL))
        return REVOKED;
    int peer_bound = map_find(&p->identity_at, remote, &peer);
    if (peer_bound && map_find(&p->revoked, peer, NULL))
        return PEER_REVOKED;
    if (sl_covered(remote, &p->blocked) || sl_covered(local, &p->blocked))
        return BLOCKED;
    if (p->any_shut) {
        uint32_t region, peer_gateway;
        if (region_of(p, gateway, &region) && p->shut[region] &&
            !sl_covered(remote, &p->essential[region]))
            return SHUT_DOWN;
        if (peer_bound && map_find(&p->gateway_of, peer, &peer_gateway) &&
            region_of(p, peer_gateway, &region) && p->shut[region] &&
            !sl_covered(local, &p->essential[region]))
            return SHUT_DOWN;
    }
    *ttl_ms = p->ttl_ms;
    return OK;
}
