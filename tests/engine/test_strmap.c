/* The string map under the engine's per-device state: every key put is found with its
 * value, replacing returns the old value, absent keys (also ones sharing a prefix or a
 * probe run) are not found, through many growths of the table. */
#include <stdio.h>
#include <stdlib.h>

#include "strmap.h"
#include "tap.h"

#define N 200000

int main(void)
{
    strmap *m;
    CHECK_EQ_INT(strmap_create(&m), 0);
    static int vals[N];
    char key[64];
    int put_ok = 1;
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "3301000A%016d", i);
        vals[i] = i;
        void *old = &vals[0];
        put_ok = put_ok && strmap_put(m, key, &vals[i], &old) == 0 && old == NULL;
    }
    CHECK(put_ok);
    CHECK_EQ_INT(strmap_count(m), N);
    int get_ok = 1;
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "3301000A%016d", i);
        get_ok = get_ok && strmap_get(m, key) == &vals[i];
    }
    CHECK(get_ok);
    int absent_ok = 1;
    for (int i = 0; i < N; i += 7) {
        snprintf(key, sizeof key, "3301000A%016dX", i);
        absent_ok = absent_ok && strmap_get(m, key) == NULL;
        snprintf(key, sizeof key, "3301000A%015d", i);
        absent_ok = absent_ok && strmap_get(m, key) == NULL;
    }
    CHECK(absent_ok);
    CHECK(strmap_get(m, "") == NULL);
    int other = -1;
    void *old = NULL;
    CHECK_EQ_INT(strmap_put(m, "3301000A0000000000000042", &other, &old), 0);
    CHECK(old == &vals[42]);
    CHECK(strmap_get(m, "3301000A0000000000000042") == &other);
    CHECK_EQ_INT(strmap_count(m), N);
    CHECK_EQ_INT(strmap_put(m, "", &other, NULL), 0);
    CHECK(strmap_get(m, "") == &other);
    CHECK_EQ_INT(strmap_count(m), N + 1);
    strmap_destroy(m, NULL);
    return tap_done();
}
