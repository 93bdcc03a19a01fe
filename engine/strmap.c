/* strmap.c: see strmap.h. Each slot holds the key's hash beside a pointer to one allocation
 * of value and key, so probing compares hashes within the slot array and touches a key's
 * bytes (another cache line) only when the hashes match: at national scale (150,000 MNs,
 * several lookups per upload) the pointer chases were most of a lookup's cost. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strmap.h"

typedef struct entry {
    void *val;
    char key[];
} entry;

typedef struct slot {
    uint64_t hash;
    entry *e; /* NULL: empty */
} slot;

struct strmap {
    slot *slots;
    size_t cap, count; /* cap is a power of two */
};

static uint64_t hash_of(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

int strmap_create(strmap **out)
{
    strmap *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    m->cap = 64;
    if (!(m->slots = calloc(m->cap, sizeof *m->slots))) {
        free(m);
        return -ENOMEM;
    }
    *out = m;
    return 0;
}

void strmap_destroy(strmap *m, void (*free_val)(void *))
{
    if (!m)
        return;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].e && free_val)
            free_val(m->slots[i].e->val);
        free(m->slots[i].e);
    }
    free(m->slots);
    free(m);
}

static slot *find_slot(const strmap *m, const char *key, uint64_t h)
{
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        slot *s = &m->slots[i];
        if (!s->e || (s->hash == h && strcmp(s->e->key, key) == 0))
            return s;
    }
}

void *strmap_get(const strmap *m, const char *key)
{
    slot *s = find_slot(m, key, hash_of(key));
    return s->e ? s->e->val : NULL;
}

static int grow(strmap *m)
{
    size_t cap = m->cap * 2;
    slot *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].e)
            continue;
        size_t j = m->slots[i].hash & (cap - 1);
        while (slots[j].e)
            j = (j + 1) & (cap - 1);
        slots[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int strmap_put(strmap *m, const char *key, void *val, void **old)
{
    uint64_t h = hash_of(key);
    slot *s = find_slot(m, key, h);
    if (s->e) {
        if (old)
            *old = s->e->val;
        s->e->val = val;
        return 0;
    }
    if (old)
        *old = NULL;
    if ((m->count + 1) * 4 > m->cap * 3) {
        if (grow(m) != 0)
            return -ENOMEM;
        s = find_slot(m, key, h);
    }
    size_t len = strlen(key);
    entry *e = malloc(sizeof *e + len + 1);
    if (!e)
        return -ENOMEM;
    e->val = val;
    memcpy(e->key, key, len + 1);
    s->hash = h;
    s->e = e;
    m->count++;
    return 0;
}

size_t strmap_count(const strmap *m)
{
    return m->count;
}
