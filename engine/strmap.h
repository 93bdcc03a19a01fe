/* strmap.h: internal to engine/. A hash map from strings to pointers: open addressing with
 * linear probing; keys are copied; values are the caller's. One thread at a time. */
#ifndef PLUME_ENGINE_STRMAP_H
#define PLUME_ENGINE_STRMAP_H

#include <stddef.h>

typedef struct strmap strmap;

int strmap_create(strmap **out);
/* Frees the map and its keys; free_val (may be NULL) is called on every value. */
void strmap_destroy(strmap *m, void (*free_val)(void *));
void *strmap_get(const strmap *m, const char *key);
/* Sets key to val (replacing a value, which is returned through *old if old is not NULL).
 * 0 or -ENOMEM. */
int strmap_put(strmap *m, const char *key, void *val, void **old);
size_t strmap_count(const strmap *m);

#endif
