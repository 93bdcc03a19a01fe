/* mb_reload.c: a new Modbus configuration swapped in while polling goes on (SIGHUP in
 * `plume serve`). The unit of the swap is the endpoint, because an endpoint is one thread
 * owning one libmodbus context:
 * - an endpoint whose settings, devices and templates are all unchanged keeps its thread,
 *   its connection and its breakers, as if nothing happened;
 * - an endpoint that changed (same name, anything else different) is retired and started
 *   again from the new configuration, its read plans made anew;
 * - an endpoint that is gone is retired, one that is new is started.
 * A retired link is told to quit and stops after its current request; its thread's last
 * message reaches the loop after all its reads. Only when every retired link has stopped do
 * the new links start, so two threads never own one endpoint (nor one reserved fd) at once.
 * Devices keep their state and counts by MN across the swap; the state records of devices
 * that left the configuration are deleted then. Loop thread only. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mb_int.h"

struct mb_reload {
    mb_gen *gen;            /* the new configuration; the poller's current one holds it */
    uint8_t *start;         /* per endpoint of gen: a link must be started for it */
    size_t waiting;         /* retired links still running */
    mb_carry *carry;        /* the retired links' device states */
    size_t ncarry, capcarry;
};

static bool reg_equal(const mb_register *a, const mb_register *b)
{
    return strcmp(a->code, b->code) == 0 && strcmp(a->unit, b->unit) == 0 &&
           a->table == b->table && a->type == b->type && a->order == b->order &&
           a->address == b->address && a->scale == b->scale && a->offset == b->offset;
}

static bool template_equal(const mb_template *a, const mb_template *b)
{
    if (a->nregs != b->nregs || a->nblocks != b->nblocks)
        return false;
    for (size_t i = 0; i < a->nregs; i++)
        if (!reg_equal(&a->regs[i], &b->regs[i]))
            return false;
    for (size_t i = 0; i < a->nblocks; i++) {
        const mb_block *x = &a->blocks[i], *y = &b->blocks[i];
        if (x->table != y->table || x->start != y->start || x->count != y->count ||
            x->first != y->first || x->n != y->n)
            return false;
    }
    return true;
}

/* Everything a link's thread reads from its endpoint, devices and templates included. */
static bool endpoint_equal(const mb_endpoint *a, const mb_endpoint *b)
{
    if (strcmp(a->name, b->name) != 0 || a->kind != b->kind || strcmp(a->host, b->host) != 0 ||
        a->port != b->port || strcmp(a->serial, b->serial) != 0 || a->baud != b->baud ||
        a->parity != b->parity || a->data_bits != b->data_bits ||
        a->stop_bits != b->stop_bits || a->interval_ms != b->interval_ms ||
        a->response_timeout_ms != b->response_timeout_ms ||
        a->byte_timeout_ms != b->byte_timeout_ms ||
        a->connect_timeout_ms != b->connect_timeout_ms ||
        a->close_after_cycle != b->close_after_cycle ||
        a->fail_threshold != b->fail_threshold || a->backoff_max_ms != b->backoff_max_ms ||
        a->ndevices != b->ndevices)
        return false;
    for (size_t i = 0; i < a->ndevices; i++) {
        const mb_device *x = &a->devices[i], *y = &b->devices[i];
        if (strcmp(x->mn, y->mn) != 0 || x->unit_id != y->unit_id ||
            !template_equal(x->tpl, y->tpl))
            return false;
    }
    return true;
}

static int cmp_mn(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_carry(const void *a, const void *b)
{
    return strcmp(((const mb_carry *)a)->mn, ((const mb_carry *)b)->mn);
}

/* The MNs of a configuration, sorted (for bsearch with cmp_mn); NULL without memory. */
static const char **sorted_mns(const mb_config *cfg)
{
    const char **v = malloc((cfg->ndevices + 1) * sizeof *v);
    size_t k = 0;
    for (size_t i = 0; v && i < cfg->nendpoints; i++)
        for (size_t d = 0; d < cfg->endpoints[i].ndevices; d++)
            v[k++] = cfg->endpoints[i].devices[d].mn;
    if (v)
        qsort(v, k, sizeof *v, cmp_mn);
    return v;
}

static bool has_mn(const char **mns, size_t n, const char *mn)
{
    return bsearch(&mn, mns, n, sizeof *mns, cmp_mn) != NULL;
}

static void free_reload(struct mb_reload *r)
{
    if (!r)
        return;
    free(r->start);
    free(r->carry);
    free(r);
}

/* Marks the links the new configuration keeps (same name, nothing changed); counts. */
static void plan(mb_poller *p, struct mb_reload *r, const char **old, size_t nold,
                 mb_reload_report *rep)
{
    const mb_config *cfg = r->gen->cfg;
    for (mb_link *L = p->links; L; L = L->next)
        L->mark = false;
    for (size_t j = 0; j < cfg->nendpoints; j++) {
        const mb_endpoint *ep = &cfg->endpoints[j];
        mb_link *same = NULL;
        for (mb_link *L = p->links; L && !same; L = L->next)
            if (!L->retiring && strcmp(L->ep->name, ep->name) == 0)
                same = L;
        if (same && endpoint_equal(same->ep, ep)) {
            same->mark = true;
            rep->endpoints_kept++;
            continue;
        }
        r->start[j] = 1;
        if (same)
            rep->endpoints_changed++;
        else
            rep->endpoints_added++;
        for (size_t d = 0; d < ep->ndevices; d++)
            rep->devices_added += !has_mn(old, nold, ep->devices[d].mn);
    }
    rep->devices = cfg->ndevices;
    rep->devices_removed = nold + rep->devices_added - cfg->ndevices;
    for (mb_link *L = p->links; L; L = L->next)
        if (!L->retiring && !L->mark) {
            bool gone = true; /* not changed: its name is not in the new configuration */
            for (size_t j = 0; j < cfg->nendpoints && gone; j++)
                gone = strcmp(cfg->endpoints[j].name, L->ep->name) != 0;
            rep->endpoints_removed += gone;
        }
}

int mb_poller_reload(mb_poller *p, mb_config *cfg, mb_reload_report *rep, char *err,
                     size_t errlen)
{
    memset(rep, 0, sizeof *rep);
    if (p->pending || p->stopping) {
        mb_config_free(cfg);
        snprintf(err, errlen, "the previous reload is still under way (endpoints stopping)");
        return -EBUSY;
    }
    struct mb_reload *r = calloc(1, sizeof *r);
    mb_gen *g = calloc(1, sizeof *g);
    size_t nold = 0;
    for (mb_link *L = p->links; L; L = L->next)
        nold += L->retiring ? 0 : L->ep->ndevices;
    const char **old = malloc((nold + 1) * sizeof *old);
    if (r)
        r->start = calloc(cfg->nendpoints + 1, 1);
    if (!r || !g || !old || !r->start) {
        free_reload(r);
        free(g);
        free(old);
        mb_config_free(cfg);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    size_t k = 0;
    for (mb_link *L = p->links; L; L = L->next)
        for (size_t d = 0; !L->retiring && d < L->ep->ndevices; d++)
            old[k++] = L->ep->devices[d].mn;
    qsort(old, nold, sizeof *old, cmp_mn);
    g->cfg = g->owned = cfg;
    g->refs = 1;
    r->gen = g;
    plan(p, r, old, nold, rep);
    free(old);
    /* The new configuration is the current one from now on; links kept hold theirs. */
    mb_gen_unref(p->cur);
    p->cur = g;
    p->pending = r;
    for (mb_link *L = p->links; L; L = L->next)
        if (!L->retiring && !L->mark) {
            r->waiting++;
            mb_poller_link_quit(p, L);
        }
    mb_reload_try_complete(p);
    return 0;
}

void mb_reload_link_stopped(mb_poller *p, mb_link *L)
{
    struct mb_reload *r = p->pending;
    r->waiting--;
    if (r->ncarry + L->ep->ndevices > r->capcarry) {
        size_t cap = (r->ncarry + L->ep->ndevices) * 2;
        mb_carry *v = realloc(r->carry, cap * sizeof *v);
        if (!v)
            return; /* the devices start afresh (state unknown until read) */
        r->carry = v;
        r->capcarry = cap;
    }
    for (size_t d = 0; d < L->ep->ndevices; d++) {
        mb_carry *c = &r->carry[r->ncarry++];
        snprintf(c->mn, sizeof c->mn, "%s", L->ep->devices[d].mn);
        c->s = L->states[d];
    }
}

/* The state records of the devices no longer configured. */
static void delete_gone(mb_poller *p, struct mb_reload *r)
{
    const char **now = sorted_mns(r->gen->cfg);
    storage_batch *b = now ? storage_batch_create() : NULL;
    for (size_t i = 0; b && i < r->ncarry; i++)
        if (!has_mn(now, r->gen->cfg->ndevices, r->carry[i].mn)) {
            char key[64];
            int n = snprintf(key, sizeof key, "modbus:%s", r->carry[i].mn);
            storage_batch_kv_del(b, MB_STATE_TABLE, key, (size_t)n);
        }
    if (b)
        storage_submit(p->st, b, NULL, NULL); /* fails only while the store closes */
    free(now);
}

void mb_reload_try_complete(mb_poller *p)
{
    struct mb_reload *r = p->pending;
    if (!r || r->waiting > 0 || p->stopping)
        return;
    p->pending = NULL;
    qsort(r->carry, r->ncarry, sizeof *r->carry, cmp_carry);
    delete_gone(p, r);
    const mb_config *cfg = r->gen->cfg;
    for (size_t j = 0; j < cfg->nendpoints; j++) {
        if (!r->start[j])
            continue;
        const mb_endpoint *ep = &cfg->endpoints[j];
        int slot = mb_poller_slot_take(p);
        if (slot >= 0 && mb_poller_link_start(p, r->gen, ep, slot, r->carry, r->ncarry))
            continue;
        mb_poller_slot_give(p, slot);
        engine_log_kv(ENGINE_LOG_ERROR, "modbus gateway not started", "gateway", ep->name,
                      "error", slot < 0 ? "no file descriptor below 1024 is free"
                                        : "out of memory or threads",
                      NULL);
    }
    free_reload(r);
}

void mb_reload_abandon(mb_poller *p)
{
    free_reload(p->pending);
    p->pending = NULL;
}
