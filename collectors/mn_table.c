/* mn_table.c: open addressing with linear probing over pointers to separately allocated
 * states, so growing the table never moves a state that a connection points to. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mn_table.h"

struct mn_table {
    mn_state **slots;
    uint64_t cap, count; /* cap is a power of two */
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

int mn_table_create(mn_table **out)
{
    mn_table *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->cap = 1024;
    t->slots = calloc(t->cap, sizeof *t->slots);
    if (!t->slots) {
        free(t);
        return -ENOMEM;
    }
    *out = t;
    return 0;
}

void mn_table_destroy(mn_table *t)
{
    if (!t)
        return;
    for (uint64_t i = 0; i < t->cap; i++)
        free(t->slots[i]);
    free(t->slots);
    free(t);
}

mn_state *mn_table_find(const mn_table *t, const char *mn)
{
    for (uint64_t i = hash(mn) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        mn_state *s = t->slots[i];
        if (!s)
            return NULL;
        if (strcmp(s->mn, mn) == 0)
            return s;
    }
}

static int grow(mn_table *t)
{
    uint64_t cap = t->cap * 2;
    mn_state **slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -ENOMEM;
    for (uint64_t i = 0; i < t->cap; i++) {
        mn_state *s = t->slots[i];
        if (!s)
            continue;
        uint64_t j = hash(s->mn) & (cap - 1);
        while (slots[j])
            j = (j + 1) & (cap - 1);
        slots[j] = s;
    }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    return 0;
}

mn_state *mn_table_insert(mn_table *t, const char *mn)
{
    if (strlen(mn) >= sizeof((mn_state *)0)->mn)
        return NULL;
    if ((t->count + 1) * 4 > t->cap * 3 && grow(t) != 0)
        return NULL;
    mn_state *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    strcpy(s->mn, mn);
    uint64_t i = hash(mn) & (t->cap - 1);
    while (t->slots[i])
        i = (i + 1) & (t->cap - 1);
    t->slots[i] = s;
    t->count++;
    return s;
}

uint64_t mn_table_count(const mn_table *t)
{
    return t->count;
}
