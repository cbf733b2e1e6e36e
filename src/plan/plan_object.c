/*
 * plan_object.c - the plan object (allocation, accessors, summary), its
 * header accounting (the "plan" metadata, the file size of a plan) and
 * matching a saved plan to a checkpoint.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/checked.h"
#include "format/container.h"
#include "container/container_write.h"
#include "common/error.h"
#include "plan/plan.h"
#include "plan/plan_measure.h"
#include "kernels/simd.h"
#include "plan/plan_internal.h"

mixq_plan *mx_plan_alloc(size_t n)
{
    mixq_plan *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->t = calloc(n ? n : 1, sizeof *p->t);
    p->strategy = strdup("");
    p->weights = strdup("");
    p->candidates = strdup("");
    p->solver = "";
    p->predicted_kld = NAN;
    if (!p->t || !p->strategy || !p->weights || !p->candidates) {
        mixq_plan_free(p);
        return NULL;
    }
    p->n = n;
    for (size_t i = 0; i < n; i++) {
        p->t[i].dtype = -1;
        p->t[i].est_error = NAN;
        p->t[i].sumsq = NAN;
        p->t[i].weight = NAN;
        p->t[i].reason = "plan file";
        p->t[i].role.layer = -1;
        p->t[i].role.expert = -1;
    }
    return p;
}

void mixq_plan_free(mixq_plan *p)
{
    if (!p) return;
    if (p->t)
        for (size_t i = 0; i < p->n; i++) free(p->t[i].name);
    free(p->t);
    free(p->strategy);
    free(p->weights);
    free(p->candidates);
    free(p->origin);
    free(p->meas_file);
    free(p->inputs);
    free(p);
}

bool mx_plan_set_str(char **dst, const char *s)
{
    char *d = strdup(s);
    if (!d) return false;
    free(*dst);
    *dst = d;
    return true;
}

size_t mixq_plan_tensor_count(const mixq_plan *p)
{
    return p ? p->n : 0;
}

mixq_status mixq_plan_tensor_get(const mixq_plan *p, size_t i, mixq_plan_tensor *out)
{
    if (!p || !out || i >= p->n) return MIXQ_E_RANGE;
    const mx_plan_entry *e = &p->t[i];
    memset(out, 0, sizeof *out);
    out->name = e->name;
    out->ndim = e->ndim;
    memcpy(out->shape, e->shape, sizeof out->shape);
    out->n_elements = e->n_elements;
    out->source_dtype = e->dtype >= 0 ? st_dtypes[e->dtype].name : NULL;
    out->role = mx_role_name(e->role.role);
    out->layer = e->role.layer;
    out->depth = e->role.depth;
    out->tied = e->role.tied;
    out->qtype = e->qt->id;
    out->group_size = e->group_size;
    out->nbytes = e->nbytes;
    out->estimated_error = e->est_error;
    out->rel_error = isfinite(e->est_error) && isfinite(e->sumsq)
                         ? (e->sumsq > 0 ? sqrt(e->est_error / e->sumsq) : (e->est_error > 0 ? INFINITY : 0.0))
                         : NAN;
    out->weight = e->weight;
    out->score = e->score;
    out->reason = e->reason;
    out->predicted_kld = mx_plan_entry_predicted(p, e);
    return MIXQ_OK;
}

double mx_plan_entry_predicted(const mixq_plan *p, const mx_plan_entry *e)
{
    if (!p->meas_file) return NAN;
    double v = e->weight * e->est_error;
    return isfinite(v) ? v : NAN;
}

void mixq_plan_get_summary(const mixq_plan *p, mixq_plan_summary *out)
{
    memset(out, 0, sizeof *out);
    if (!p) return;
    out->strategy = p->strategy;
    out->target_bpw = p->target_bpw;
    out->target_size = p->target_size;
    out->weights = p->weights;
    out->n_tensors = p->n;
    double err = 0;
    for (size_t i = 0; i < p->n; i++) {
        const mx_plan_entry *e = &p->t[i];
        out->n_elements += e->n_elements;
        if (e->dtype >= 0) out->source_bytes += e->n_elements * st_dtypes[e->dtype].size;
        out->tensor_bytes += e->nbytes;
        err += e->est_error;
    }
    out->file_bytes = p->file_bytes;
    out->bits_per_weight = out->n_elements ? (double)out->tensor_bytes * 8.0 / (double)out->n_elements : 0.0;
    out->estimated_error = err;
    out->measure_sample = p->measure_sample;
    for (size_t i = 0; i < p->n; i++) {
        const mx_plan_entry *e = &p->t[i];
        uint64_t rows, len;
        /* unknown, or stored exactly: nothing measured */
        if (!(e->est_error > 0) || !mx_shape_rows(e->ndim, e->shape, e->n_elements, &rows, &len)) continue;
        mx_sample smp;
        mx_sample_init(&smp, rows, len, p->measure_sample);
        out->n_sampled += smp.rows < rows;
    }
    out->weighted_error = p->weighted_error;
    out->lower_bound = p->lower_bound;
    out->optimal = p->optimal;
    out->solver = p->solver;
    out->budget_bytes = p->budget_bytes;
    out->min_bytes = p->min_bytes;
    out->predicted_kld = p->meas_file ? p->predicted_kld : NAN;
    out->measurement = p->meas_file;
}

/* ---------------------------------------------------------------------- */
/* Header accounting                                                       */
/* ---------------------------------------------------------------------- */


json_t *mx_plan_entry_extra(const mx_plan_entry *e)
{
    if (!isfinite(e->est_error)) return NULL;
    return json_pack("{s:f}", "estimated_error", e->est_error);
}

json_t *mx_plan_header_meta(const mixq_plan *p, bool ph)
{
    json_t *o = json_object();
    if (!o) return NULL;
    int bad = json_object_set_new(o, "strategy", json_string(p->strategy));
    if (p->target_bpw > 0) bad |= json_object_set_new(o, "target_bpw", json_real(ph ? WIDEST_REAL : p->target_bpw));
    if (p->target_size > 0) bad |= json_object_set_new(o, "target_size", json_integer((json_int_t)p->target_size));
    bad |= json_object_set_new(o, "weights", json_string(p->weights));
    if (p->candidates[0]) bad |= json_object_set_new(o, "candidates", json_string(p->candidates));
    bad |= json_object_set_new(o, "rtn", json_boolean(p->rtn));
    bad |= json_object_set_new(o, "measure_sample", json_integer((json_int_t)p->measure_sample));
    if (p->solver[0] || ph) {
        bad |= json_object_set_new(o, "solver", json_string(ph ? "lagrangian" : p->solver));
        bad |= json_object_set_new(o, "optimal", json_boolean(ph ? 0 : p->optimal));
        double lb = ph ? WIDEST_REAL : p->lower_bound, we = ph ? WIDEST_REAL : p->weighted_error;
        if (isfinite(lb)) bad |= json_object_set_new(o, "lower_bound", json_real(lb));
        if (isfinite(we)) bad |= json_object_set_new(o, "weighted_error", json_real(we));
    }
    double err = 0;
    for (size_t i = 0; i < p->n; i++) err += p->t[i].est_error;
    if (ph) err = WIDEST_REAL;
    if (isfinite(err)) bad |= json_object_set_new(o, "estimated_error", json_real(err));
    if (p->meas_file) { /* the measurement the weights came from, and the KLD they predict */
        json_t *mo = json_pack("{s:s,s:s}", "file", p->meas_file, "xxh3", p->meas_xxh3);
        bad |= !mo || json_object_set_new(o, "measurement", mo);
        double pk = ph ? WIDEST_REAL : p->predicted_kld;
        if (isfinite(pk)) bad |= json_object_set_new(o, "predicted_kld", json_real(pk));
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The header entry description of plan entry e stored as (qt, group). */
cw_tensor mx_plan_entry_of(const mx_plan_entry *e, const st_tensor *t, const qtype_desc *qt, unsigned group,
                           json_t *extra)
{
    cw_tensor ct = {.name = e->name, .ndim = e->ndim, .shape = e->shape,
                    .source_dtype = st_dtypes[t->dtype].name, .qt = qt, .group_size = group, .extra = extra};
    return ct;
}

uint64_t mx_plan_file_size(const mixq_plan *p, const st_model *m, const size_t *map, json_t *meta)
{
    uint64_t end = MXC_PREAMBLE_LEN, entries = 0;
    for (size_t i = 0; i < m->ntensors; i++) {
        const st_tensor *t = &m->tensors[i];
        const mx_plan_entry *e = &p->t[map ? map[i] : i];
        mx_cand c = {e->qt, e->group_size};
        qlayout lay;
        if (!mx_cand_layout(&c, t, &lay) || !ck_align(end, MX_ALIGN, &end)) return 0;
        json_t *extra = mx_plan_entry_extra(e);
        cw_tensor ct = mx_plan_entry_of(e, t, e->qt, e->group_size, extra);
        size_t eb = cw_entry_bytes(&ct, &lay, end);
        json_decref(extra);
        if (!eb) return 0;
        entries += eb;
        if (!ck_add(end, lay.total, &end)) return 0;
    }
    if (!ck_align(end, MX_ALIGN, &end)) return 0;
    size_t h = cw_header_bytes(meta, m->ntensors, entries);
    if (!h) return 0;
    return end + h;
}


static int cmp_entry_name(const void *a, const void *b)
{
    const mx_plan_entry *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

mixq_status mx_plan_match(const mixq_plan *p, const st_model *m, const char *pn, size_t *map, mixq_error *err)
{
    size_t n = p->n;
    const mx_plan_entry **sorted = malloc((n ? n : 1) * sizeof *sorted);
    bool *used = calloc(n ? n : 1, sizeof *used);
    mixq_status s = MIXQ_OK;
    if (!sorted || !used) {
        s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) sorted[i] = &p->t[i];
    qsort(sorted, n, sizeof *sorted, cmp_entry_name);
    for (size_t i = 0; i < m->ntensors && s == MIXQ_OK; i++) {
        const st_tensor *t = &m->tensors[i];
        mx_plan_entry key = {.name = t->name};
        const mx_plan_entry *kp = &key;
        const mx_plan_entry **hit = bsearch(&kp, sorted, n, sizeof *sorted, cmp_entry_name);
        if (!hit) {
            s = mx_err(err, MIXQ_E_NOT_FOUND, "%s: the plan has no entry for tensor \"%s\" of %s (%zu tensors in the "
                       "plan, %zu in the checkpoint)", pn, t->name, file_of(m, t), n, m->ntensors);
            break;
        }
        const mx_plan_entry *e = *hit;
        size_t k = (size_t)(e - p->t);
        used[k] = true;
        map[i] = k;
        bool same = e->ndim == t->ndim;
        for (unsigned d = 0; same && d < t->ndim; d++) same = e->shape[d] == t->shape[d];
        if (!same) {
            char a[160], b[160];
            size_t pa = 0, pb = 0;
            for (unsigned d = 0; d < e->ndim && pa < sizeof a - 24; d++)
                pa += (size_t)snprintf(a + pa, sizeof a - pa, "%s%llu", d ? ", " : "", (unsigned long long)e->shape[d]);
            for (unsigned d = 0; d < t->ndim && pb < sizeof b - 24; d++)
                pb += (size_t)snprintf(b + pb, sizeof b - pb, "%s%llu", d ? ", " : "", (unsigned long long)t->shape[d]);
            a[pa] = b[pb] = '\0';
            s = mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%s\": the plan says shape [%s], the checkpoint has [%s]", pn,
                       t->name, a, b);
            break;
        }
        if (e->dtype >= 0 && e->dtype != (int)t->dtype) {
            s = mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%s\": the plan was made for dtype %s, the checkpoint has %s",
                       pn, t->name, st_dtypes[e->dtype].name, st_dtypes[t->dtype].name);
            break;
        }
        const qtype_desc *keep = qtype_for_plain_dtype(t->dtype);
        if (!st_dtypes[t->dtype].is_float && e->qt != keep && e->qt->id != MIXQ_QT_RAW) {
            s = mx_err(err, MIXQ_E_INVALID_ARG, "%s: tensor \"%s\" has dtype %s; only raw can store it, not %s", pn,
                       t->name, st_dtypes[t->dtype].name, e->qt->name);
            break;
        }
        if (e->qt->quantized && t->n_elements == 0) {
            s = mx_err(err, MIXQ_E_INVALID_ARG, "%s: tensor \"%s\" has no elements and cannot be %s", pn, t->name,
                       e->qt->name);
            break;
        }
        if (!mx_qtype_has_kernels(e->qt)) {
            s = mx_err(err, MIXQ_E_UNSUPPORTED, "%s: tensor \"%s\": type %s has no kernels in this build", pn, t->name,
                       e->qt->name);
            break;
        }
        mx_cand c = {e->qt, e->group_size};
        qlayout lay;
        if (!mx_cand_layout(&c, t, &lay)) {
            s = mx_err(err, MIXQ_E_RANGE, "%s: tensor \"%s\": %s with group size %u is not possible for this tensor",
                       pn, t->name, e->qt->name, e->group_size);
            break;
        }
    }
    for (size_t k = 0; k < n && s == MIXQ_OK; k++)
        if (!used[k])
            s = mx_err(err, MIXQ_E_NOT_FOUND, "%s: the plan names tensor \"%s\", which the checkpoint does not have",
                       pn, p->t[k].name);
out:
    free(sorted);
    free(used);
    return s;
}

