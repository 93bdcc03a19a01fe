/* strmap.c: see strmap.h. Each slot holds a pointer to one allocation of hash, value and
 * key, so a lookup compares hashes before touching the key bytes. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strmap.h"

typedef struct entry {
    uint64_t hash;
    void *val;
    char key[];
} entry;

struct strmap {
    entry **slots;
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
        if (m->slots[i] && free_val)
            free_val(m->slots[i]->val);
        free(m->slots[i]);
    }
    free(m->slots);
    free(m);
}

static entry **find_slot(const strmap *m, const char *key, uint64_t h)
{
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        entry *e = m->slots[i];
        if (!e || (e->hash == h && strcmp(e->key, key) == 0))
            return &m->slots[i];
    }
}

void *strmap_get(const strmap *m, const char *key)
{
    entry *e = *find_slot(m, key, hash_of(key));
    return e ? e->val : NULL;
}

static int grow(strmap *m)
{
    size_t cap = m->cap * 2;
    entry **slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        entry *e = m->slots[i];
        if (!e)
            continue;
        size_t j = e->hash & (cap - 1);
        while (slots[j])
            j = (j + 1) & (cap - 1);
        slots[j] = e;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int strmap_put(strmap *m, const char *key, void *val, void **old)
{
    uint64_t h = hash_of(key);
    entry **slot = find_slot(m, key, h);
    if (*slot) {
        if (old)
            *old = (*slot)->val;
        (*slot)->val = val;
        return 0;
    }
    if (old)
        *old = NULL;
    if ((m->count + 1) * 4 > m->cap * 3) {
        if (grow(m) != 0)
            return -ENOMEM;
        slot = find_slot(m, key, h);
    }
    size_t len = strlen(key);
    entry *e = malloc(sizeof *e + len + 1);
    if (!e)
        return -ENOMEM;
    e->hash = h;
    e->val = val;
    memcpy(e->key, key, len + 1);
    *slot = e;
    m->count++;
    return 0;
}

size_t strmap_count(const strmap *m)
{
    return m->count;
}
