/* test_hj212_factors.c: the factor table generated from factor_codes.csv: the codes of the
 * domain notes with their 2005 codes, names and units, and lookups of unknown codes. */
#include <string.h>

#include "hj212.h"
#include "tap.h"

static void check_2005(const char *old, const char *code)
{
    const hj212_factor_info *fi = hj212_factor_find_2005(old, strlen(old));
    CHECK(fi != NULL && strcmp(fi->code, code) == 0);
    fi = hj212_factor_find(code, strlen(code));
    CHECK(fi != NULL && strcmp(fi->code_2005, old) == 0);
}

int main(void)
{
    CHECK(hj212_factor_count() > 300);
    static const char *const pairs[][2] = {
        {"02", "a21026"}, {"03", "a21002"}, {"01", "a34013"}, {"S01", "a19001"},
        {"B02", "a00000"}, {"S02", "a01011"}, {"S03", "a01012"}, {"S08", "a01013"},
        {"S05", "a01014"}, {"04", "a21005"}, {"08", "a21024"}, {"10", "a21001"},
        {"011", "w01018"}, {"060", "w21003"}, {"101", "w21011"}, {"065", "w21001"},
        {"001", "w01001"}, {"B01", "w00000"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        check_2005(pairs[i][0], pairs[i][1]);

    const hj212_factor_info *fi = hj212_factor_find("a21026", 6);
    CHECK(fi && strcmp(fi->name, "二氧化硫") == 0);
    CHECK(fi && strcmp(fi->unit, "毫克/立方米") == 0);
    CHECK(fi && strcmp(fi->amount_unit, "千克") == 0);
    CHECK(fi && strcmp(fi->type, "N5.2") == 0);
    CHECK(hj212_factor_find("a24088", 6) != NULL);
    CHECK(hj212_factor_find("a2102", 5) == NULL);
    CHECK(hj212_factor_find("a210260", 7) == NULL);
    CHECK(hj212_factor_find("zz9999", 6) == NULL);
    CHECK(hj212_factor_find_2005("0", 1) == NULL);
    CHECK(hj212_factor_find_2005("a21026", 6) == NULL);
    CHECK(hj212_factor_find("a21026-Rtd", 6) == fi); /* counted, not NUL-terminated */

    /* Sorted and unique, so binary search finds every entry. */
    bool sorted = true, found = true;
    for (size_t i = 0; i < hj212_factor_count(); i++) {
        const hj212_factor_info *e = hj212_factor_at(i);
        if (i > 0 && strcmp(hj212_factor_at(i - 1)->code, e->code) >= 0)
            sorted = false;
        found = found && hj212_factor_find(e->code, strlen(e->code)) == e;
        if (e->code_2005[0])
            found = found && hj212_factor_find_2005(e->code_2005, strlen(e->code_2005)) == e;
    }
    CHECK(sorted);
    CHECK(found);
    CHECK(hj212_factor_at(hj212_factor_count()) == NULL);
    return tap_done();
}
