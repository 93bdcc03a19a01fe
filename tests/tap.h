/* tap.h: the smallest test harness that does what our tests need: TAP output that meson
 * counts per assertion (protocol: 'tap'), a failure message with file and line, and the
 * process exit status. Each test file is its own executable and its own process.
 *
 *   int main(void) { CHECK(1 + 1 == 2); CHECK_EQ_INT(f(), 3); return tap_done(); }
 */
#ifndef PLUME_TESTS_TAP_H
#define PLUME_TESTS_TAP_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

static inline void tap_ok(int ok, const char *expr, const char *file, int line)
{
    tap_n++;
    if (ok) {
        printf("ok %d - %s\n", tap_n, expr);
    } else {
        tap_failed++;
        printf("not ok %d - %s\n# at %s:%d\n", tap_n, expr, file, line);
    }
    fflush(stdout);
}

#define CHECK(cond) tap_ok(!!(cond), #cond, __FILE__, __LINE__)

#define CHECK_EQ_INT(a, b)                                                                 \
    do {                                                                                   \
        long long tap_a_ = (long long)(a), tap_b_ = (long long)(b);                        \
        tap_ok(tap_a_ == tap_b_, #a " == " #b, __FILE__, __LINE__);                        \
        if (tap_a_ != tap_b_)                                                              \
            printf("#   got %lld, want %lld\n", tap_a_, tap_b_);                           \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                                 \
    do {                                                                                   \
        const char *tap_a_ = (a), *tap_b_ = (b);                                           \
        int tap_eq_ = tap_a_ && tap_b_ && strcmp(tap_a_, tap_b_) == 0;                     \
        tap_ok(tap_eq_, #a " == " #b, __FILE__, __LINE__);                                 \
        if (!tap_eq_)                                                                      \
            printf("#   got \"%s\", want \"%s\"\n", tap_a_ ? tap_a_ : "(null)",            \
                   tap_b_ ? tap_b_ : "(null)");                                            \
    } while (0)

/* Prints the plan and returns the exit status for main. */
static inline int tap_done(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}

#endif
