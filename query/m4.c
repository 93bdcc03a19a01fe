/* m4.c: M4 downsampling, the reduction behind CEMS.CHART and `plume chart`.
 *
 * A line chart w pixels wide draws, in each pixel column, a vertical stroke from the
 * column's smallest to its largest value and joins the columns through their first and last
 * values. Keeping exactly those four points of each column (first, min, max, last; M4, Jugel
 * et al., VLDB 2014) therefore draws the same picture as every point, with at most 4w points.
 * storage_aggregate already returns the four with their timestamps per bucket, and answers
 * buckets that hold whole chunks from stored aggregates without decoding them.
 */
#include "series.h"

int64_t query_m4_width(int64_t from, int64_t to, int64_t width_px)
{
    if (width_px < 1)
        width_px = 1;
    if (to < from)
        return 1;
    uint64_t span = (uint64_t)to - (uint64_t)from + 1;
    uint64_t w = span / (uint64_t)width_px + (span % (uint64_t)width_px != 0);
    return w < 1 ? 1 : w > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)w;
}

int query_m4_points(const storage_bucket *b, int64_t *ts, double *v)
{
    int64_t t[4] = {b->first_ts, b->min_ts, b->max_ts, b->last_ts};
    double x[4] = {b->first, b->min, b->max, b->last};
    /* min and max may come in either order; first and last bound them. */
    if (t[1] > t[2]) {
        int64_t tt = t[1];
        t[1] = t[2];
        t[2] = tt;
        double xx = x[1];
        x[1] = x[2];
        x[2] = xx;
    }
    int n = 0;
    for (int i = 0; i < 4; i++) {
        if (n > 0 && ts[n - 1] == t[i])
            continue;
        ts[n] = t[i];
        v[n] = x[i];
        n++;
    }
    return n;
}
