/*
 * plan.c - the planner: which storage type each tensor gets (docs/PLANNER.md).
 *
 * Every tensor is classified (plan_roles.c); rules (--override/--keep) and
 * the fixed cases (integer tensors, 1-D tensors, buffers) are settled first;
 * the rest are measured (plan_measure.c: exact bytes and squared error of
 * each candidate with the converter's kernels) and assigned by the strategy:
 * uniform, sensitivity (score -> thresholds -> a step on the candidate
 * ladder) or budget (multiple-choice knapsack, plan_budget.c).
 */
#include <float.h>
#include <fnmatch.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/checked.h"
#include "format/container.h"
#include "container/container_write.h"
#include "convert/convert.h"
#include "common/error.h"
#include "plan/plan.h"
#include "plan/plan_budget.h"
#include "plan/plan_measure.h"
#include "kernels/simd.h"
#include "common/workpool.h"
#include "plan/plan_options.h"

/* Header slack when the converter's exact options are not known (standalone planning). */
#define META_SLACK 512u

void mx_plan_options_defaults(mixq_plan_options *o)
{
    memset(o, 0, sizeof *o);
    o->strategy = MIXQ_STRATEGY_UNIFORM;
    o->type = MIXQ_QT_RAW;
    o->weights = MIXQ_WEIGHTS_ROLE;
    o->thresholds[0] = 0.5;
    o->thresholds[1] = 2.0;
    o->thresholds[2] = 4.0;
    o->measure_sample = MIXQ_MEASURE_SAMPLE_DEFAULT;
}

/* ---------------------------------------------------------------------- */
/* Priors                                                                  */
/* ---------------------------------------------------------------------- */

/* How much a unit of relative squared error costs, per role (docs/PLANNER.md). */
static const double role_prior[MX_ROLE_COUNT] = {
    [MX_ROLE_OTHER] = 1.0,    [MX_ROLE_EMBEDDING] = 2.0, [MX_ROLE_NORM] = 4.0,     [MX_ROLE_OUTPUT] = 2.0,
    [MX_ROLE_ATTN_Q] = 1.0,   [MX_ROLE_ATTN_K] = 1.0,    [MX_ROLE_ATTN_V] = 1.5,   [MX_ROLE_ATTN_QKV] = 1.25,
    [MX_ROLE_ATTN_OUT] = 1.25, [MX_ROLE_MLP_UP] = 1.0,   [MX_ROLE_MLP_GATE] = 1.0, [MX_ROLE_MLP_DOWN] = 1.5,
    [MX_ROLE_ROUTER] = 4.0,   [MX_ROLE_MODULATION] = 2.0,
};
#define TIED_PRIOR 3.0

/* Role prior times the depth factor 1 + 0.25 (1 - 2d)^2 (1.25 at the first and last block, 1 in the middle). */
static double prior_of(const mx_role_info *r)
{
    double p = (unsigned)r->role < MX_ROLE_COUNT ? role_prior[r->role] : 1.0;
    if (r->tied) p = TIED_PRIOR;
    if (r->layer >= 0) {
        double u = 1.0 - 2.0 * r->depth;
        p *= 1.0 + 0.25 * u * u;
    }
    return p;
}

const qtype_desc *mx_keep_type(int dtype)
{
    switch (dtype) {
    case ST_F32: return qtype_get(MIXQ_QT_F32);
    case ST_F16: return qtype_get(MIXQ_QT_F16);
    case ST_BF16: return qtype_get(MIXQ_QT_BF16);
    default: return qtype_get(MIXQ_QT_RAW);
    }
}

/* ---------------------------------------------------------------------- */
/* Type specs: "int4", "int4:32", "int8:row"                               */
/* ---------------------------------------------------------------------- */

/* The group recorded for qt when the caller asked for `global` (0 = defaults, MIXQ_GROUP_PER_ROW). */
static unsigned default_group(const qtype_desc *qt, unsigned global)
{
    if (!qt->quantized) return 0;
    if (global == MIXQ_GROUP_PER_ROW) return qtype_group_ok(qt, 0) ? 0 : qt->group_default;
    if (global != 0 && qtype_group_ok(qt, global)) return global;
    return qt->group_default;
}

static bool has_kernels(const qtype_desc *qt)
{
    if (!qt->quantized) return true;
    const mx_kernel_set *k = mx_kernels();
    return k->quantize_row[qt->id] != NULL && k->dequantize_row[qt->id] != NULL;
}

/* Parses a type spec of len bytes; what names it in messages. */
static mixq_status parse_spec(const char *spec, size_t len, unsigned global, const char *what, mx_cand *out,
                              mixq_error *err)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf) return mx_err(err, MIXQ_E_INVALID_ARG, "%s: empty or overlong type '%.*s'", what, (int)(len < 60 ? len : 60), spec);
    memcpy(buf, spec, len);
    buf[len] = '\0';
    char *colon = strchr(buf, ':');
    if (colon) *colon = '\0';
    const qtype_desc *qt = qtype_by_name(buf);
    if (!qt || qt->id == MIXQ_QT_RAW)
        return mx_err(err, MIXQ_E_INVALID_ARG, "%s: unknown type '%s'", what, buf);
    if (!has_kernels(qt))
        return mx_err(err, MIXQ_E_INVALID_ARG, "%s: type '%s' has no kernels in this build", what, buf);
    out->qt = qt;
    if (!colon) {
        out->group_size = default_group(qt, global);
        return MIXQ_OK;
    }
    const char *g = colon + 1;
    if (!qt->quantized) return mx_err(err, MIXQ_E_INVALID_ARG, "%s: '%s' takes no group size", what, buf);
    unsigned long v = 0;
    if (!strcmp(g, "row") || !strcmp(g, "tensor")) {
        v = 0;
    } else {
        char *end;
        if (!*g || *g < '0' || *g > '9') return mx_err(err, MIXQ_E_INVALID_ARG, "%s: bad group size '%s'", what, g);
        v = strtoul(g, &end, 10);
        if (*end || v == 0 || v > 1u << 20) return mx_err(err, MIXQ_E_INVALID_ARG, "%s: bad group size '%s'", what, g);
    }
    if (!qtype_group_ok(qt, (unsigned)v))
        return mx_err(err, MIXQ_E_INVALID_ARG, "%s: group size %s is not allowed for %s: use a power of two from %u to %u%s",
                      what, g, qt->name, qt->group_min, qt->group_max,
                      qt->allow_row_group ? (qt->tensor_scale ? " or 'tensor'" : " or 'row'") : "");
    out->group_size = (unsigned)v;
    return MIXQ_OK;
}

/* "int4:64", "int8:row", "fp8_e4m3:tensor", "f16" into buf. */
static void spec_string(const mx_cand *c, char *buf, size_t len)
{
    if (!c->qt->quantized) snprintf(buf, len, "%s", c->qt->name);
    else if (c->group_size) snprintf(buf, len, "%s:%u", c->qt->name, c->group_size);
    else snprintf(buf, len, "%s:%s", c->qt->name, c->qt->tensor_scale ? "tensor" : "row");
}

/* The candidate list: the user's, or every quantized type with kernels plus f16. */
static mixq_status parse_candidates(const mixq_plan_options *o, mx_cand **out, size_t *n, mixq_error *err)
{
    *out = calloc(MIXQ_QT_COUNT * 8 + 8, sizeof **out);
    if (!*out) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    size_t k = 0;
    if (!o->candidates && o->strategy == MIXQ_STRATEGY_SENSITIVITY) {
        /* the seed's ladder: 2, 4, 8 and 16 bits (the base type is added by the caller) */
        static const mixq_qtype ladder[] = {MIXQ_QT_INT2_DQ, MIXQ_QT_INT4, MIXQ_QT_INT8, MIXQ_QT_F16};
        for (size_t i = 0; i < sizeof ladder / sizeof *ladder; i++) {
            const qtype_desc *qt = qtype_get(ladder[i]);
            if (qt && has_kernels(qt)) (*out)[k++] = (mx_cand){qt, default_group(qt, o->group_size)};
        }
    } else if (!o->candidates) {
        for (int id = 0; id < MIXQ_QT_COUNT; id++) {
            const qtype_desc *qt = qtype_get((mixq_qtype)id);
            if (!qt || !qt->quantized || !has_kernels(qt)) continue;
            unsigned g = default_group(qt, o->group_size);
            (*out)[k++] = (mx_cand){qt, g};
            /* without --group-size, also the coarsest group: the type's cheapest variant */
            if (o->group_size == 0 && g != 0 && qt->group_max > g) (*out)[k++] = (mx_cand){qt, qt->group_max};
        }
        (*out)[k++] = (mx_cand){qtype_get(MIXQ_QT_F16), 0};
    } else {
        const char *s = o->candidates;
        while (*s) {
            const char *e = strchr(s, ',');
            size_t len = e ? (size_t)(e - s) : strlen(s);
            if (k >= MIXQ_QT_COUNT * 8) return mx_err(err, MIXQ_E_INVALID_ARG, "plan_options.candidates: too many types");
            mx_cand c;
            mixq_status st = parse_spec(s, len, o->group_size, "plan_options.candidates", &c, err);
            if (st != MIXQ_OK) return st;
            bool dup = false;
            for (size_t j = 0; j < k; j++) dup |= (*out)[j].qt == c.qt && (*out)[j].group_size == c.group_size;
            if (!dup) (*out)[k++] = c;
            s += len;
            if (*s == ',') s++;
        }
        if (k == 0) return mx_err(err, MIXQ_E_INVALID_ARG, "plan_options.candidates: the list is empty");
    }
    *n = k;
    return MIXQ_OK;
}

typedef struct rule {
    char *glob;
    bool keep;
    mx_cand cand;
} rule;

static void free_rules(rule *r, size_t n)
{
    if (!r) return;
    for (size_t i = 0; i < n; i++) free(r[i].glob);
    free(r);
}

static mixq_status parse_rules(const mixq_plan_options *o, rule **out, mixq_error *err)
{
    *out = calloc(o->n_rules ? o->n_rules : 1, sizeof **out);
    if (!*out) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    for (size_t i = 0; i < o->n_rules; i++) {
        const char *s = o->rules[i];
        const char *eq = s ? strrchr(s, '=') : NULL;
        if (!eq || eq == s)
            return mx_err(err, MIXQ_E_INVALID_ARG, "plan_options.rules '%s': expected GLOB=TYPE (or GLOB=keep)", s ? s : "");
        (*out)[i].glob = strndup(s, (size_t)(eq - s));
        if (!(*out)[i].glob) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
        if (!strcmp(eq + 1, "keep")) {
            (*out)[i].keep = true;
            continue;
        }
        char what[128];
        snprintf(what, sizeof what, "plan_options.rules '%.100s'", s);
        mixq_status st = parse_spec(eq + 1, strlen(eq + 1), o->group_size, what, &(*out)[i].cand, err);
        if (st != MIXQ_OK) return st;
    }
    return MIXQ_OK;
}

/* ---------------------------------------------------------------------- */
/* External sensitivity file                                               */
/* ---------------------------------------------------------------------- */

/* Reads a number field (0 if absent); false if present but not a number. */
static bool num_field(json_t *o, const char *key, double *v)
{
    json_t *x = json_object_get(o, key);
    *v = 0;
    if (!x) return true;
    if (!json_is_number(x)) return false;
    *v = json_number_value(x);
    return isfinite(*v) && *v >= 0;
}

/* True if key names tensor `name` (exactly, or with its parameter suffix removed). */
static bool key_matches(const char *key, const char *name)
{
    if (!strcmp(key, name)) return true;
    size_t k = strlen(key);
    return strncmp(key, name, k) == 0 && name[k] == '.' && strchr(name + k + 1, '.') == NULL;
}

/*
 * Loads the external sensitivity JSON: an object of name -> {gradient_norm,
 * weight_variance, activation_range, output_sensitivity}, or an array of
 * such objects with a "name" (or "layer_name").  ext[i] gets the seed's score
 * 0.4 g + 0.3 v + 0.2 a + 0.1 o (+1.0 embedding, +0.5 final layer),
 * normalized to mean 1 over the tensors it names; 1 for the others.
 */
static mixq_status load_sensitivity(const char *path, const mx_plan_entry *t, size_t n, double *ext,
                                    mixq_error *err)
{
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root) return mx_err(err, MIXQ_E_FORMAT, "%s: line %d: %s", path, je.line, je.text);
    bool *hit = calloc(n ? n : 1, sizeof *hit);
    if (!hit) {
        json_decref(root);
        return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    }
    mixq_status s = MIXQ_OK;
    size_t count = json_is_object(root) ? json_object_size(root) : json_is_array(root) ? json_array_size(root) : 0;
    if (!json_is_object(root) && !json_is_array(root)) {
        s = mx_err(err, MIXQ_E_FORMAT, "%s: expected an object of tensor names or an array", path);
        goto out;
    }
    void *iter = json_is_object(root) ? json_object_iter(root) : NULL;
    for (size_t k = 0; k < count; k++) {
        const char *key;
        json_t *v;
        if (json_is_object(root)) {
            key = json_object_iter_key(iter);
            v = json_object_iter_value(iter);
            iter = json_object_iter_next(root, iter);
        } else {
            v = json_array_get(root, k);
            json_t *nm = json_object_get(v, "name");
            if (!nm) nm = json_object_get(v, "layer_name");
            key = json_string_value(nm);
            if (!key) {
                s = mx_err(err, MIXQ_E_FORMAT, "%s: entry %zu has no \"name\"", path, k);
                goto out;
            }
        }
        double g, w, a, o;
        if (!json_is_object(v) || !num_field(v, "gradient_norm", &g) || !num_field(v, "weight_variance", &w) ||
            !num_field(v, "activation_range", &a) || !num_field(v, "output_sensitivity", &o)) {
            s = mx_err(err, MIXQ_E_FORMAT,
                       "%s: \"%s\": expected an object of non-negative numbers gradient_norm, weight_variance, "
                       "activation_range, output_sensitivity", path, key);
            goto out;
        }
        double base = 0.4 * g + 0.3 * w + 0.2 * a + 0.1 * o;
        bool any = false;
        for (size_t i = 0; i < n; i++) {
            if (!key_matches(key, t[i].name)) continue;
            double sc = base + (t[i].role.role == MX_ROLE_EMBEDDING ? 1.0 : 0.0) + (t[i].role.final_layer ? 0.5 : 0.0);
            ext[i] = sc;
            hit[i] = true;
            any = true;
        }
        if (!any) {
            s = mx_err(err, MIXQ_E_NOT_FOUND, "%s: \"%s\" names no tensor of the checkpoint", path, key);
            goto out;
        }
    }
    double sum = 0;
    size_t nh = 0;
    for (size_t i = 0; i < n; i++)
        if (hit[i]) {
            sum += ext[i];
            nh++;
        }
    for (size_t i = 0; i < n; i++) ext[i] = hit[i] && sum > 0 ? ext[i] * (double)nh / sum : 1.0;
out:
    free(hit);
    json_decref(root);
    return s;
}

/* ---------------------------------------------------------------------- */
/* Plan objects                                                            */
/* ---------------------------------------------------------------------- */

mixq_plan *mx_plan_alloc(size_t n)
{
    mixq_plan *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->t = calloc(n ? n : 1, sizeof *p->t);
    p->strategy = strdup("");
    p->weights = strdup("");
    p->candidates = strdup("");
    p->solver = "";
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
    free(p);
}

static bool set_str(char **dst, const char *s)
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
    return MIXQ_OK;
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
}

/* ---------------------------------------------------------------------- */
/* Header accounting                                                       */
/* ---------------------------------------------------------------------- */

/* A double that prints at least as long as any other with %.17g: 24 characters. */
#define WIDEST_REAL (-2.2250738585072014e-308)

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
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The header entry description of plan entry e stored as (qt, group). */
static cw_tensor entry_of(const mx_plan_entry *e, const st_tensor *t, const qtype_desc *qt, unsigned group,
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
        cw_tensor ct = entry_of(e, t, e->qt, e->group_size, extra);
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

/* ---------------------------------------------------------------------- */
/* Planning                                                                */
/* ---------------------------------------------------------------------- */

typedef struct planner {
    const st_model *m;
    const mixq_plan_options *o;
    mixq_plan *p;
    mx_cand *cands;       /* candidate list */
    size_t nc;
    mx_cand base;         /* uniform type / sensitivity middle */
    bool has_min, has_max;
    mx_cand min_c, max_c;
    rule *rules;
    size_t nrules;
    mx_tstats *stats;     /* per tensor */
    bool *eligible;       /* planned by the strategy */
    bool *allowed;        /* [tensor * nc + c] */
    uint64_t *len;        /* [tensor * nc + c] layout totals (UINT64_MAX = impossible) */
    double *sse;          /* [tensor * nc + c] (NAN = not measured) */
    uint64_t *entry;      /* [tensor * nc + c] header entry bound (budget by file size) */
    double *ext;          /* external sensitivity per tensor */
    mx_pool *pool;        /* statistics and measuring threads (NULL: inline) */
} planner;

static void planner_free(planner *pl)
{
    free(pl->cands);
    free_rules(pl->rules, pl->nrules);
    free(pl->stats);
    free(pl->eligible);
    free(pl->allowed);
    free(pl->len);
    free(pl->sse);
    free(pl->entry);
    free(pl->ext);
    mx_pool_destroy(pl->pool);
}

static const char *file_of(const st_model *m, const st_tensor *t)
{
    return m->files[t->file_index].path;
}

/* Measures (once) the squared error of tensor i as candidate c. */
static mixq_status measure(planner *pl, size_t i, size_t c, mixq_error *err)
{
    double *slot = &pl->sse[i * pl->nc + c];
    if (!isnan(*slot)) return MIXQ_OK;
    const st_tensor *t = &pl->m->tensors[i];
    double v;
    mixq_status s = mx_measure_error(t, &pl->cands[c], &pl->stats[i], pl->o->rtn != 0, pl->o->measure_sample, pl->o->cancel, &v, err);
    st_release(pl->m, t);
    if (s != MIXQ_OK) return s;
    *slot = v;
    return MIXQ_OK;
}

/* Work shared by the measuring threads. */
typedef struct measure_job {
    planner *pl;
    const bool *need;     /* [tensor * nc + c] */
    const size_t *list;   /* the eligible tensors */
    mixq_status *status;  /* per list entry */
    mixq_error *errs;     /* per list entry */
    pthread_mutex_t mu;   /* progress */
    size_t done, total;
} measure_job;

/*
 * Measures every needed candidate of tensor list[k] in one pass over its rows
 * (the same sums as one candidate at a time); each call writes only its own
 * slots, then lets the tensor's pages go.
 */
static void measure_one(void *ctx, size_t k)
{
    measure_job *mj = ctx;
    planner *pl = mj->pl;
    size_t nc = pl->nc, i = mj->list[k];
    const st_tensor *t = &pl->m->tensors[i];
    mixq_status s = MIXQ_OK;
    bool *want = malloc(nc * sizeof *want);
    if (!want) {
        s = mx_err(&mj->errs[k], MIXQ_E_NOMEM, "tensor \"%s\": out of memory", t->name);
    } else {
        for (size_t c = 0; c < nc; c++) want[c] = mj->need[i * nc + c] && isnan(pl->sse[i * nc + c]);
        s = mx_measure_errors(pl->m, t, pl->cands, nc, want, &pl->stats[i], pl->o->rtn != 0, pl->o->measure_sample, pl->o->cancel,
                              &pl->sse[i * nc], &mj->errs[k]);
        free(want);
    }
    st_release(pl->m, t); /* planning keeps only the tensors in flight resident */
    mj->status[k] = s;
    if (s == MIXQ_OK && pl->o->progress) {
        pthread_mutex_lock(&mj->mu);
        mj->done++;
        pl->o->progress(pl->o->progress_ctx, mj->done, mj->total, t->name);
        pthread_mutex_unlock(&mj->mu);
    }
}

/*
 * Measures every needed (tensor, candidate) of the eligible tensors on the
 * worker pool (o->threads, 0 = online CPUs); results do not depend on the
 * thread count, and the error reported is the first tensor's in file order.
 */
static mixq_status measure_all(planner *pl, const bool *need, mixq_error *err)
{
    size_t n = pl->m->ntensors, total = 0;
    for (size_t i = 0; i < n; i++) total += pl->eligible[i];
    measure_job mj = {.pl = pl, .need = need, .total = total};
    size_t *list = malloc((total ? total : 1) * sizeof *list);
    mj.status = calloc(total ? total : 1, sizeof *mj.status);
    mj.errs = calloc(total ? total : 1, sizeof *mj.errs);
    if (!list || !mj.status || !mj.errs) {
        free(list);
        free(mj.status);
        free(mj.errs);
        return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    }
    for (size_t i = 0, k = 0; i < n; i++)
        if (pl->eligible[i]) list[k++] = i;
    mj.list = list;
    pthread_mutex_init(&mj.mu, NULL);
    mx_pool_run(pl->pool, total, measure_one, &mj);
    pthread_mutex_destroy(&mj.mu);
    mixq_status s = MIXQ_OK;
    for (size_t k = 0; k < total && s == MIXQ_OK; k++)
        if (mj.status[k] != MIXQ_OK) {
            s = mj.status[k];
            if (err) *err = mj.errs[k];
        }
    free(list);
    free(mj.status);
    free(mj.errs);
    return s;
}

/* Work of the statistics threads. */
typedef struct stats_job {
    planner *pl;
    const char *in_path;
    bool moments;         /* std, kurtosis and outliers too (sensitivity) */
    mixq_status *status;  /* per tensor */
    mixq_error *errs;     /* per tensor */
} stats_job;

/* Statistics of tensor i (one task computes all of them, as inline), then lets its pages go. */
static void stats_one(void *ctx, size_t i)
{
    stats_job *sj = ctx;
    planner *pl = sj->pl;
    const st_tensor *t = &pl->m->tensors[i];
    if (pl->o->cancel && *pl->o->cancel) {
        sj->status[i] = mx_err(&sj->errs[i], MIXQ_E_CANCELLED, "%s: planning interrupted", sj->in_path);
        return;
    }
    sj->status[i] = mx_measure_stats(pl->m, t, sj->moments, &pl->stats[i], &sj->errs[i]);
    st_release(pl->m, t);
}

/* The statistics of every tensor on the pool; the error reported is the first tensor's in file order. */
static mixq_status stats_all(planner *pl, const char *in_path, mixq_error *err)
{
    size_t n = pl->m->ntensors;
    stats_job sj = {.pl = pl, .in_path = in_path, .moments = pl->o->strategy == MIXQ_STRATEGY_SENSITIVITY};
    sj.status = calloc(n ? n : 1, sizeof *sj.status);
    sj.errs = calloc(n ? n : 1, sizeof *sj.errs);
    mixq_status s = MIXQ_OK;
    if (!sj.status || !sj.errs) {
        s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
    } else {
        mx_pool_run(pl->pool, n, stats_one, &sj);
        for (size_t i = 0; i < n && s == MIXQ_OK; i++)
            if (sj.status[i] != MIXQ_OK) {
                s = sj.status[i];
                if (err) *err = sj.errs[i];
            }
    }
    free(sj.status);
    free(sj.errs);
    return s;
}

/* Squared error of a tensor stored as an arbitrary (qt, group) (rules). */
static mixq_status measure_fixed(planner *pl, size_t i, const mx_cand *c, double *out, mixq_error *err)
{
    const st_tensor *t = &pl->m->tensors[i];
    if (c->qt == mx_keep_type(t->dtype) || c->qt->id == MIXQ_QT_RAW || !st_dtypes[t->dtype].is_float) {
        *out = 0.0; /* stored exactly */
        return MIXQ_OK;
    }
    for (size_t k = 0; k < pl->nc; k++)
        if (pl->cands[k].qt == c->qt && pl->cands[k].group_size == c->group_size) {
            mixq_status s = measure(pl, i, k, err);
            *out = pl->sse[i * pl->nc + k];
            return s;
        }
    mixq_status s = mx_measure_error(t, c, &pl->stats[i], pl->o->rtn != 0, pl->o->measure_sample, pl->o->cancel, out, err);
    st_release(pl->m, t);
    return s;
}

/* Sets entry i to (qt, group) and its stored bytes; errors if the layout is impossible. */
static mixq_status assign(planner *pl, size_t i, const qtype_desc *qt, unsigned group, const char *reason,
                          mixq_error *err)
{
    const st_tensor *t = &pl->m->tensors[i];
    mx_plan_entry *e = &pl->p->t[i];
    mx_cand c = {qt, qt->quantized ? group : 0};
    qlayout lay;
    if (!mx_cand_layout(&c, t, &lay))
        return mx_err(err, MIXQ_E_RANGE, "%s: tensor \"%s\": cannot be stored as %s (size overflows)", file_of(pl->m, t),
                      t->name, qt->name);
    e->qt = qt;
    e->group_size = c.group_size;
    e->nbytes = lay.total;
    e->reason = reason;
    return MIXQ_OK;
}

/* What a quantized type cannot hold, for messages. */
static const char *values_problem(const mx_tstats *st)
{
    return st->quantizable ? NULL : "NaN, infinities or values beyond ±65504";
}

/* Step 1: rules and fixed tensors; marks the rest eligible. */
static mixq_status settle_fixed(planner *pl, mixq_error *err)
{
    const st_model *m = pl->m;
    const mixq_plan_options *o = pl->o;
    for (size_t i = 0; i < m->ntensors; i++) {
        const st_tensor *t = &m->tensors[i];
        mx_plan_entry *e = &pl->p->t[i];
        const qtype_desc *keep = mx_keep_type(t->dtype);
        bool is_float = st_dtypes[t->dtype].is_float;
        /* the last matching rule; a wildcard rule skips tensors its type cannot store (integer, empty,
           non-finite), a rule naming one tensor exactly is an error there */
        const rule *r = NULL;
        for (size_t k = pl->nrules; k-- > 0 && !r;) {
            const rule *c = &pl->rules[k];
            if (fnmatch(c->glob, t->name, 0) != 0) continue;
            bool wild = strpbrk(c->glob, "*?[") != NULL;
            if (wild && !c->keep && ((!is_float && c->cand.qt != keep) ||
                                     (c->cand.qt->quantized && (t->n_elements == 0 || values_problem(&pl->stats[i])))))
                continue;
            r = c;
        }
        mixq_status s;
        if (r) {
            if (r->keep) {
                s = assign(pl, i, keep, 0, "keep", err);
            } else {
                const qtype_desc *qt = r->cand.qt;
                if (!is_float && qt != keep)
                    return mx_err(err, MIXQ_E_INVALID_ARG,
                                  "%s: tensor \"%s\" has dtype %s; plan_options.rules '%s' asks for %s but only its source "
                                  "type can store it (use keep)", file_of(m, t), t->name, st_dtypes[t->dtype].name,
                                  r->glob, qt->name);
                if (qt->quantized && t->n_elements == 0)
                    return mx_err(err, MIXQ_E_INVALID_ARG, "%s: tensor \"%s\" has no elements; plan_options.rules '%s' cannot "
                                  "make it %s", file_of(m, t), t->name, r->glob, qt->name);
                if (qt->quantized && values_problem(&pl->stats[i]))
                    return mx_err(err, MIXQ_E_DATA, "%s: tensor \"%s\" holds %s, which %s cannot store (plan_options.rules '%s')",
                                  file_of(m, t), t->name, values_problem(&pl->stats[i]), qt->name, r->glob);
                s = assign(pl, i, qt, r->cand.group_size, "rule", err);
            }
            if (s != MIXQ_OK) return s;
            continue;
        }
        const char *why = NULL;
        if (!is_float) why = "non-float";
        else if (t->n_elements == 0) why = "empty";
        else if (e->role.buffer) why = "buffer";
        else if (t->ndim == 0) why = "scalar";
        else if (t->ndim == 1 && !o->quantize_1d) why = "1-D";
        else if (values_problem(&pl->stats[i])) why = "values";
        if (why) {
            s = assign(pl, i, keep, 0, why, err);
            if (s != MIXQ_OK) return s;
            continue;
        }
        pl->eligible[i] = true;
    }
    return MIXQ_OK;
}

static double nominal_bits(const mx_cand *c);

/* Bytes of tensor i as a spec; UINT64_MAX if impossible. */
static uint64_t bytes_as(const planner *pl, size_t i, const mx_cand *c)
{
    qlayout lay;
    return mx_cand_layout(c, &pl->m->tensors[i], &lay) ? lay.total : UINT64_MAX;
}

/* Step 2: layouts of every candidate for eligible tensors, and which are allowed (min/max by nominal bits). */
static mixq_status layouts(planner *pl, mixq_error *err)
{
    for (size_t i = 0; i < pl->m->ntensors; i++) {
        if (!pl->eligible[i]) continue;
        double lo = pl->has_min ? nominal_bits(&pl->min_c) : 0;
        double hi = pl->has_max ? nominal_bits(&pl->max_c) : INFINITY;
        bool any = false;
        for (size_t c = 0; c < pl->nc; c++) {
            uint64_t b = bytes_as(pl, i, &pl->cands[c]);
            pl->len[i * pl->nc + c] = b;
            double nb = nominal_bits(&pl->cands[c]);
            bool ok = b != UINT64_MAX && nb >= lo && nb <= hi;
            pl->allowed[i * pl->nc + c] = ok;
            any |= ok;
        }
        if (!any && pl->o->strategy != MIXQ_STRATEGY_UNIFORM) {
            const st_tensor *t = &pl->m->tensors[i];
            return mx_err(err, MIXQ_E_INVALID_ARG,
                          "%s: tensor \"%s\": no candidate type lies between plan_options.min_type and plan_options.max_type "
                          "(%.4g to %.4g nominal bits per weight)", file_of(pl->m, t), t->name, lo, hi);
        }
    }
    return MIXQ_OK;
}

/* The weight of tensor i's squared error in the objective. */
static double weight_of(const planner *pl, size_t i)
{
    double w = 1.0;
    if (pl->o->weights == MIXQ_WEIGHTS_ROLE) {
        const mx_tstats *st = &pl->stats[i];
        w = prior_of(&pl->p->t[i].role);
        if (st->sumsq > 0) w *= (double)st->n / st->sumsq;
    }
    if (pl->ext) w *= pl->ext[i];
    return w;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nominal bits per weight of a candidate, for ordering the ladder. */
static double nominal_bits(const mx_cand *c)
{
    if (!c->qt->quantized) return c->qt->code_bits;
    return qtype_nominal_bpw(c->qt, c->group_size ? c->group_size : 4096);
}

static const mx_cand *sort_cands;

static int ladder_cmp(const void *a, const void *b)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    double x = nominal_bits(&sort_cands[i]), y = nominal_bits(&sort_cands[j]);
    if (x != y) return x < y ? -1 : 1;
    return i < j ? -1 : i > j;
}

/* Sensitivity: score each eligible tensor, then step along the candidate ladder. */
static mixq_status run_sensitivity(planner *pl, mixq_error *err)
{
    const st_model *m = pl->m;
    size_t nc = pl->nc, n = m->ntensors;
    /* the ladder: candidates by nominal bits; the base type's rung */
    size_t *ladder = malloc(nc * sizeof *ladder);
    double *rel = malloc((n ? n : 1) * sizeof *rel);
    if (!ladder || !rel) {
        free(ladder);
        free(rel);
        return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    }
    for (size_t c = 0; c < nc; c++) ladder[c] = c;
    sort_cands = pl->cands;
    qsort(ladder, nc, sizeof *ladder, ladder_cmp);
    size_t base_c = SIZE_MAX, rung = 0;
    for (size_t c = 0; c < nc; c++)
        if (pl->cands[c].qt == pl->base.qt && pl->cands[c].group_size == pl->base.group_size) base_c = c;
    for (size_t r = 0; r < nc; r++)
        if (ladder[r] == base_c) rung = r;
    mixq_status s = MIXQ_OK;
    /* every rung of the ladder (and the base type) in parallel, then the relative error at the base */
    bool *need = malloc((n * nc + 1) * sizeof *need);
    if (!need) s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
    for (size_t k = 0; s == MIXQ_OK && k < n * nc; k++) need[k] = pl->allowed[k] || k % nc == base_c;
    if (s == MIXQ_OK) s = measure_all(pl, need, err);
    free(need);
    size_t nr = 0;
    for (size_t i = 0; i < n && s == MIXQ_OK; i++) {
        if (!pl->eligible[i]) continue;
        double e = pl->sse[i * nc + base_c];
        rel[i] = pl->stats[i].sumsq > 0 ? e / pl->stats[i].sumsq : 0.0;
    }
    /* each statistic relative to its median over the planned tensors: a typical tensor scores 1 */
    double *sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (s == MIXQ_OK && !sorted) s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
    double med[3] = {0, 0, 0};
    for (int k = 0; k < 3 && s == MIXQ_OK; k++) {
        nr = 0;
        for (size_t i = 0; i < n; i++)
            if (pl->eligible[i])
                sorted[nr++] = k == 0 ? rel[i] : k == 1 ? pl->stats[i].kurtosis : pl->stats[i].outlier_frac;
        qsort(sorted, nr, sizeof *sorted, cmp_double);
        med[k] = nr ? sorted[nr / 2] : 0;
    }
    for (size_t i = 0; i < n && s == MIXQ_OK; i++) {
        if (!pl->eligible[i]) continue;
        const mx_tstats *st = &pl->stats[i];
        double q = med[0] > 0 ? rel[i] / med[0] : 1.0;
        double ku = med[1] > 0 ? st->kurtosis / med[1] : 1.0;
        double ou = med[2] > 0 ? st->outlier_frac / med[2] : 1.0;
        double stat = 0.5 * q + 0.25 * ku + 0.25 * ou;
        double score = prior_of(&pl->p->t[i].role) * stat * (pl->ext ? pl->ext[i] : 1.0);
        const double *th = pl->o->thresholds;
        long step = score < th[0] ? -1 : score < th[1] ? 0 : score < th[2] ? 1 : 2;
        long r = (long)rung + step;
        if (r < 0) r = 0;
        if (r >= (long)nc) r = (long)nc - 1;
        /* the nearest allowed rung (--min-type / --max-type), the wider one first */
        size_t pick = SIZE_MAX;
        for (long d = 0; d < (long)nc && pick == SIZE_MAX; d++) {
            if (r + d < (long)nc && pl->allowed[i * nc + ladder[r + d]]) pick = ladder[r + d];
            else if (r - d >= 0 && pl->allowed[i * nc + ladder[r - d]]) pick = ladder[r - d];
        }
        s = measure(pl, i, pick, err);
        if (s != MIXQ_OK) break;
        s = assign(pl, i, pl->cands[pick].qt, pl->cands[pick].group_size, "strategy", err);
        pl->p->t[i].score = score;
        pl->p->t[i].est_error = pl->sse[i * nc + pick];
    }
    free(sorted);
    free(ladder);
    free(rel);
    return s;
}

/* Budget: measure everything allowed, then solve the knapsack. */
static mixq_status run_budget(planner *pl, json_t *meta_base, uint64_t slack, mixq_error *err)
{
    const st_model *m = pl->m;
    mixq_plan *p = pl->p;
    size_t nc = pl->nc, n = m->ntensors, ng = 0;
    for (size_t i = 0; i < n; i++) ng += pl->eligible[i];
    mixq_status ms0 = measure_all(pl, pl->allowed, err);
    if (ms0 != MIXQ_OK) return ms0;
    bool by_size = pl->o->target_size > 0;
    /* fixed part of the budget: tensors not planned, preamble and header (target size) */
    uint64_t fixed = 0, n_elements = 0, entries = 0;
    uint64_t maxv = by_size ? pl->o->target_size : 0;
    for (size_t i = 0; i < n; i++) {
        const st_tensor *t = &m->tensors[i];
        n_elements += t->n_elements;
        uint64_t b = 0, eb = 0;
        if (!pl->eligible[i]) {
            b = p->t[i].nbytes;
            if (by_size) {
                mx_cand c = {p->t[i].qt, p->t[i].group_size};
                qlayout lay;
                mx_cand_layout(&c, t, &lay);
                json_t *x = json_pack("{s:f}", "estimated_error", WIDEST_REAL);
                cw_tensor ct = entry_of(&p->t[i], t, c.qt, c.group_size, x);
                eb = cw_entry_bound(&ct, &lay, maxv);
                json_decref(x);
                if (!eb) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
            }
        } else if (by_size) { /* each candidate's header entry is part of its cost */
            for (size_t c = 0; c < nc; c++) {
                if (!pl->allowed[i * nc + c]) continue;
                qlayout lay;
                mx_cand_layout(&pl->cands[c], t, &lay);
                json_t *x = json_pack("{s:f}", "estimated_error", WIDEST_REAL);
                cw_tensor ct = entry_of(&p->t[i], t, pl->cands[c].qt, pl->cands[c].group_size, x);
                size_t v = cw_entry_bound(&ct, &lay, maxv);
                json_decref(x);
                if (!v) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
                pl->entry[i * nc + c] = v;
            }
        }
        if (by_size && !ck_align(b, MX_ALIGN, &b)) return mx_err(err, MIXQ_E_RANGE, "size overflows");
        fixed += b;
        entries += eb;
    }
    uint64_t budget;
    if (by_size) {
        json_t *meta = json_deep_copy(meta_base);
        json_t *pm = mx_plan_header_meta(p, true);
        if (!meta || !pm || json_object_set_new(meta, "plan", pm)) {
            json_decref(meta);
            return mx_err(err, MIXQ_E_NOMEM, "out of memory");
        }
        size_t h = cw_header_bytes(meta, n, entries);
        json_decref(meta);
        if (!h) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
        uint64_t overhead = MXC_PREAMBLE_LEN + h + slack; /* tensors' costs include their alignment padding */
        fixed += overhead;
        budget = pl->o->target_size > fixed ? pl->o->target_size - fixed : 0;
        p->budget_bytes = pl->o->target_size;
    } else {
        double b = floor(pl->o->target_bpw * (double)n_elements / 8.0);
        budget = b >= 1.8e19 ? UINT64_MAX : (uint64_t)b;
        p->budget_bytes = budget;
        budget = budget > fixed ? budget - fixed : 0;
    }
    /* the knapsack over eligible tensors */
    size_t *first = malloc((ng + 1) * sizeof *first), *map = malloc((ng ? ng : 1) * sizeof *map);
    size_t *choice = malloc((ng ? ng : 1) * sizeof *choice);
    uint64_t *cost = malloc((ng * nc + 1) * sizeof *cost);
    double *werr = malloc((ng * nc + 1) * sizeof *werr);
    mixq_status s = MIXQ_OK;
    if (!first || !map || !choice || !cost || !werr) {
        s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
        goto out;
    }
    size_t g = 0;
    for (size_t i = 0; i < n; i++) {
        if (!pl->eligible[i]) continue;
        first[g] = g * nc;
        map[g] = i;
        double w = weight_of(pl, i);
        p->t[i].weight = w;
        for (size_t c = 0; c < nc; c++) {
            size_t k = g * nc + c;
            uint64_t b = pl->len[i * nc + c];
            if (!pl->allowed[i * nc + c]) {
                cost[k] = MX_MCK_UNAVAILABLE;
                werr[k] = 0;
                continue;
            }
            if (by_size && (!ck_align(b, MX_ALIGN, &b) || !ck_add(b, pl->entry[i * nc + c], &b))) b = MX_MCK_UNAVAILABLE;
            cost[k] = b;
            werr[k] = w * pl->sse[i * nc + c];
            if (!isfinite(werr[k])) cost[k] = MX_MCK_UNAVAILABLE; /* e.g. f16 overflow */
        }
        g++;
    }
    first[ng] = ng * nc;
    mx_mck prob = {ng, first, cost, werr, budget};
    mx_mck_result res;
    mx_mck_status ms = mx_mck_solve(&prob, 0, choice, &res);
    if (ms == MX_MCK_NOMEM) {
        s = mx_err(err, MIXQ_E_NOMEM, "out of memory in the budget solver");
        goto out;
    }
    if (ms == MX_MCK_NO_CHOICE) {
        s = mx_err(err, MIXQ_E_INVALID_ARG, "no candidate type can store some tensor; widen plan_options.candidates");
        goto out;
    }
    p->min_bytes = res.min_cost + fixed;
    if (ms == MX_MCK_INFEASIBLE) {
        uint64_t min_total = res.min_cost + fixed;
        if (by_size)
            s = mx_err(err, MIXQ_E_RANGE,
                       "target size %llu bytes is below the smallest achievable output: %llu bytes "
                       "(every tensor at its smallest candidate, header included)",
                       (unsigned long long)pl->o->target_size, (unsigned long long)min_total);
        else
            s = mx_err(err, MIXQ_E_RANGE,
                       "target %.4g bits per weight is below the smallest achievable: %.4f bits per weight "
                       "(%llu bytes of tensors, every tensor at its smallest candidate)",
                       pl->o->target_bpw, n_elements ? (double)min_total * 8.0 / (double)n_elements : 0.0,
                       (unsigned long long)min_total);
        goto out;
    }
    for (size_t k = 0; k < ng; k++) {
        size_t i = map[k], c = choice[k];
        s = assign(pl, i, pl->cands[c].qt, pl->cands[c].group_size, "strategy", err);
        if (s != MIXQ_OK) goto out;
        p->t[i].est_error = pl->sse[i * nc + c];
    }
    p->weighted_error = res.err;
    p->lower_bound = res.lower_bound;
    p->optimal = res.optimal;
    p->solver = res.method;
out:
    free(first);
    free(map);
    free(choice);
    free(cost);
    free(werr);
    return s;
}

/* Joins the candidates into p->candidates. */
static bool record_candidates(planner *pl)
{
    size_t cap = pl->nc * 32 + 1, pos = 0;
    char *s = malloc(cap);
    if (!s) return false;
    s[0] = '\0';
    for (size_t c = 0; c < pl->nc; c++) {
        char b[32];
        spec_string(&pl->cands[c], b, sizeof b);
        pos += (size_t)snprintf(s + pos, cap - pos, "%s%s", c ? "," : "", b);
    }
    free(pl->p->candidates);
    pl->p->candidates = s;
    return true;
}

static const char *const strategy_names[] = {"uniform", "sensitivity", "budget"};

mixq_status mx_plan_build(const st_model *m, const char *in_path, const mixq_plan_options *o, json_t *meta,
                          mixq_plan **out, mixq_error *err)
{
    *out = NULL;
    if ((unsigned)o->strategy > MIXQ_STRATEGY_BUDGET)
        return mx_err(err, MIXQ_E_INVALID_ARG, "unknown strategy %d", (int)o->strategy);
    if ((unsigned)o->weights > MIXQ_WEIGHTS_FLAT)
        return mx_err(err, MIXQ_E_INVALID_ARG, "unknown weights %d", (int)o->weights);
    bool budget = o->strategy == MIXQ_STRATEGY_BUDGET;
    if (budget && (o->target_bpw > 0) == (o->target_size > 0))
        return mx_err(err, MIXQ_E_INVALID_ARG, "the budget strategy needs exactly one of plan_options.target_bpw and plan_options.target_size");
    if (!budget && (o->target_bpw > 0 || o->target_size > 0))
        return mx_err(err, MIXQ_E_INVALID_ARG, "plan_options.target_bpw and plan_options.target_size need plan_options.strategy budget");
    if (budget && o->target_bpw > 0 && !(o->target_bpw <= 64))
        return mx_err(err, MIXQ_E_INVALID_ARG, "plan_options.target_bpw %g is out of range (0 to 64)", o->target_bpw);
    if (o->measure_sample > (uint64_t)INT64_MAX)
        return mx_err(err, MIXQ_E_INVALID_ARG, "plan_options.measure_sample %llu is too large (0 measures every row)",
                      (unsigned long long)o->measure_sample);
    if (o->target_bpw < 0 || isnan(o->target_bpw))
        return mx_err(err, MIXQ_E_INVALID_ARG, "plan_options.target_bpw must be positive");
    const double *th = o->thresholds;
    if (!(th[0] > 0 && th[0] <= th[1] && th[1] <= th[2] && isfinite(th[2])))
        return mx_err(err, MIXQ_E_INVALID_ARG, "plan_options.thresholds must be positive and increasing (low,medium,high)");
    if (o->group_size != 0 && o->group_size != MIXQ_GROUP_PER_ROW && (o->group_size & (o->group_size - 1)) != 0)
        return mx_err(err, MIXQ_E_INVALID_ARG, "group size %u is not a power of two", o->group_size);

    planner pl;
    memset(&pl, 0, sizeof pl);
    pl.m = m;
    pl.o = o;
    size_t n = m->ntensors;
    mixq_status s = parse_candidates(o, &pl.cands, &pl.nc, err);
    if (s == MIXQ_OK) s = parse_rules(o, &pl.rules, err);
    pl.nrules = o->n_rules;
    if (s == MIXQ_OK && o->min_type) {
        pl.has_min = true;
        s = parse_spec(o->min_type, strlen(o->min_type), o->group_size, "plan_options.min_type", &pl.min_c, err);
    }
    if (s == MIXQ_OK && o->max_type) {
        pl.has_max = true;
        s = parse_spec(o->max_type, strlen(o->max_type), o->group_size, "plan_options.max_type", &pl.max_c, err);
    }
    if (s == MIXQ_OK && o->strategy != MIXQ_STRATEGY_BUDGET) {
        mixq_qtype bt = o->type != MIXQ_QT_RAW ? o->type
                        : o->strategy == MIXQ_STRATEGY_UNIFORM ? MIXQ_QT_INT8 : MIXQ_QT_INT4;
        const qtype_desc *qt = qtype_get(bt);
        if (!qt || !has_kernels(qt)) {
            s = mx_err(err, MIXQ_E_INVALID_ARG, "type %d is not available in this build", (int)bt);
        } else {
            pl.base = (mx_cand){qt, default_group(qt, o->group_size)};
            if (qt->quantized && o->group_size != 0 && o->group_size != MIXQ_GROUP_PER_ROW &&
                !qtype_group_ok(qt, o->group_size))
                s = mx_err(err, MIXQ_E_INVALID_ARG, "group size %u is not allowed for %s: use a power of two from %u to %u",
                           o->group_size, qt->name, qt->group_min, qt->group_max);
            /* the base type is always on the ladder (and measured like a candidate) */
            bool found = false;
            for (size_t c = 0; c < pl.nc; c++)
                found |= pl.cands[c].qt == pl.base.qt && pl.cands[c].group_size == pl.base.group_size;
            if (!found) pl.cands[pl.nc++] = pl.base;
        }
    }
    if (s == MIXQ_OK) {
        pl.p = mx_plan_alloc(n);
        pl.stats = calloc(n ? n : 1, sizeof *pl.stats);
        pl.eligible = calloc(n ? n : 1, sizeof *pl.eligible);
        pl.allowed = calloc(n * pl.nc + 1, sizeof *pl.allowed);
        pl.len = calloc(n * pl.nc + 1, sizeof *pl.len);
        pl.sse = malloc((n * pl.nc + 1) * sizeof *pl.sse);
        pl.entry = calloc(n * pl.nc + 1, sizeof *pl.entry);
        if (!pl.p || !pl.stats || !pl.eligible || !pl.allowed || !pl.len || !pl.sse || !pl.entry)
            s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
        else
            for (size_t k = 0; k < n * pl.nc; k++) pl.sse[k] = NAN;
    }
    if (s == MIXQ_OK) { /* the statistics and measuring threads (o->threads, 0 = online CPUs) */
        unsigned nt = o->threads > 0 ? (unsigned)o->threads : mx_online_cpus();
        if (nt > n) nt = n ? (unsigned)n : 1;
        pl.pool = nt > 1 ? mx_pool_create(nt) : NULL; /* NULL (or no resources): inline */
    }
    mixq_plan *p = pl.p;
    /* names, shapes, roles; then the statistics of every tensor (in parallel) */
    for (size_t i = 0; i < n && s == MIXQ_OK; i++) {
        const st_tensor *t = &m->tensors[i];
        mx_plan_entry *e = &p->t[i];
        e->name = strdup(t->name);
        if (!e->name) {
            s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
            break;
        }
        e->ndim = t->ndim;
        memcpy(e->shape, t->shape, sizeof e->shape);
        e->n_elements = t->n_elements;
        e->dtype = (int)t->dtype;
        mx_role_classify(t->name, t->ndim, t->shape, &e->role);
    }
    if (s == MIXQ_OK) s = stats_all(&pl, in_path, err);
    for (size_t i = 0; i < n && s == MIXQ_OK; i++)
        p->t[i].sumsq = st_dtypes[m->tensors[i].dtype].is_float ? pl.stats[i].sumsq : NAN;
    if (s == MIXQ_OK) {
        mx_role_info *infos = malloc((n ? n : 1) * sizeof *infos);
        if (!infos) {
            s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
        } else {
            for (size_t i = 0; i < n; i++) infos[i] = p->t[i].role;
            mx_roles_finish(infos, n);
            for (size_t i = 0; i < n; i++) p->t[i].role = infos[i];
            free(infos);
        }
    }
    if (s == MIXQ_OK && o->sensitivity_path) {
        pl.ext = malloc((n ? n : 1) * sizeof *pl.ext);
        if (!pl.ext) s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
        else s = load_sensitivity(o->sensitivity_path, p->t, n, pl.ext, err);
    }
    if (s == MIXQ_OK) s = settle_fixed(&pl, err);
    if (s == MIXQ_OK) s = layouts(&pl, err);
    if (s == MIXQ_OK && (!set_str(&p->strategy, strategy_names[o->strategy]) ||
                         !set_str(&p->weights, o->weights == MIXQ_WEIGHTS_FLAT
                                                   ? (pl.ext ? "flat+file" : "flat")
                                                   : (pl.ext ? "role+file" : "role")) ||
                         (o->strategy != MIXQ_STRATEGY_UNIFORM && !record_candidates(&pl))))
        s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
    if (s == MIXQ_OK) {
        p->target_bpw = budget ? o->target_bpw : 0;
        p->target_size = budget ? o->target_size : 0;
        p->rtn = o->rtn != 0;
        p->measure_sample = o->measure_sample;
    }

    /* the metadata the converter will write, for the header bound */
    json_t *meta_base = meta ? json_incref(meta) : NULL;
    uint64_t slack = 0;
    if (s == MIXQ_OK && !meta_base) {
        mixq_convert_options co;
        mixq_convert_options_init(&co);
        co.group_size = o->group_size;
        co.quantize_1d = o->quantize_1d;
        meta_base = mx_convert_metadata(m, &co);
        slack = META_SLACK;
        if (!meta_base) s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
    }

    if (s == MIXQ_OK) {
        switch (o->strategy) {
        case MIXQ_STRATEGY_UNIFORM: {
            size_t bc = 0;
            for (size_t c = 0; c < pl.nc; c++)
                if (pl.cands[c].qt == pl.base.qt && pl.cands[c].group_size == pl.base.group_size) bc = c;
            bool *need = calloc(n * pl.nc + 1, sizeof *need);
            if (!need) s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
            for (size_t i = 0; s == MIXQ_OK && i < n; i++) need[i * pl.nc + bc] = true;
            if (s == MIXQ_OK) s = measure_all(&pl, need, err);
            free(need);
            for (size_t i = 0; i < n && s == MIXQ_OK; i++) {
                if (!pl.eligible[i]) continue;
                s = assign(&pl, i, pl.base.qt, pl.base.group_size, "strategy", err);
                p->t[i].est_error = pl.sse[i * pl.nc + bc];
            }
            break;
        }
        case MIXQ_STRATEGY_SENSITIVITY: s = run_sensitivity(&pl, err); break;
        case MIXQ_STRATEGY_BUDGET: s = run_budget(&pl, meta_base, slack, err); break;
        }
    }
    /* errors of the fixed tensors, weights, totals */
    double werr = 0;
    for (size_t i = 0; i < n && s == MIXQ_OK; i++) {
        mx_plan_entry *e = &p->t[i];
        if (!pl.eligible[i]) {
            mx_cand c = {e->qt, e->group_size};
            s = measure_fixed(&pl, i, &c, &e->est_error, err);
        }
        if (isnan(e->weight)) e->weight = st_dtypes[m->tensors[i].dtype].is_float ? weight_of(&pl, i) : 0.0;
        if (pl.eligible[i]) werr += e->weight * e->est_error;
    }
    if (s == MIXQ_OK && !budget) p->weighted_error = werr;
    if (s == MIXQ_OK) {
        json_t *full = json_deep_copy(meta_base);
        json_t *pm = mx_plan_header_meta(p, false);
        if (!full || !pm || json_object_set_new(full, "plan", pm)) {
            json_decref(full);
            s = mx_err(err, MIXQ_E_NOMEM, "out of memory");
        } else {
            uint64_t fs = mx_plan_file_size(p, m, NULL, full);
            json_decref(full);
            p->file_bytes = fs ? fs + slack : 0;
            if (budget && o->target_size > 0 && p->file_bytes > o->target_size)
                s = mx_err(err, MIXQ_E_RANGE, "internal error: the plan's file size %llu exceeds the target %llu",
                           (unsigned long long)p->file_bytes, (unsigned long long)o->target_size);
        }
    }
    json_decref(meta_base);
    planner_free(&pl);
    if (s != MIXQ_OK) {
        mixq_plan_free(p);
        return s;
    }
    *out = p;
    return MIXQ_OK;
}

mixq_status mixq_plan_create(const char *in_path, const mixq_plan_options *opts, mixq_plan **out,
                             mixq_error *err)
{
    mixq_plan_options defaults;
    if (!out) return mx_err(err, MIXQ_E_INVALID_ARG, "mixq_plan_create: out is required");
    *out = NULL;
    mixq_status so = mx_plan_options_take(&opts, &defaults, err);
    if (so != MIXQ_OK) return so;
    if (!in_path) return mx_err(err, MIXQ_E_INVALID_ARG, "mixq_plan_create: an input path is required");
    st_model *m = NULL;
    mixq_status s = st_open(in_path, &m, err);
    if (s != MIXQ_OK) return s;
    s = mx_plan_build(m, in_path, opts, NULL, out, err);
    if (s != MIXQ_OK && err && !strstr(err->message, in_path)) {
        char *msg = strdup(err->message);
        if (msg) mx_err(err, s, "%s: %s", in_path, msg);
        free(msg);
    }
    st_close(m);
    return s;
}

/* ---------------------------------------------------------------------- */
/* Matching a plan to a checkpoint                                         */
/* ---------------------------------------------------------------------- */

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
        const qtype_desc *keep = mx_keep_type(t->dtype);
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
        if (!has_kernels(e->qt)) {
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
