/*
 * plan_file.c - plan files: JSON written by `mixq plan -o`, read (strictly)
 * by `mixq convert --plan`.  docs/PLANNER.md describes the format.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/atomic_file.h"
#include "common/checked.h"
#include "common/error.h"
#include "format/jansson_util.h"
#include "common/small_file.h"
#include "plan/plan.h"
#include "plan/plan_internal.h"
#include "plan/plan_measure.h"

/* "int4:64", "int8:row", "f16": what an estimate was measured for. */
static void spec_of(const qtype_desc *qt, unsigned group, char *buf, size_t len)
{
    if (!qt->quantized) snprintf(buf, len, "%s", qt->name);
    else if (group) snprintf(buf, len, "%s:%u", qt->name, group);
    else snprintf(buf, len, "%s:%s", qt->name, qt->tensor_scale ? "tensor" : "row");
}

/* Sets key to a real if v is finite; returns nonzero on failure. */
static int set_real(json_t *o, const char *key, double v)
{
    return isfinite(v) ? json_object_set_new(o, key, json_real(v)) : 0;
}

char *mx_plan_to_json(const mixq_plan *p)
{
    json_t *root = json_object(), *arr = json_array(), *sum = json_object();
    if (!root || !arr || !sum) goto fail;
    int bad = 0;
    bad |= json_object_set_new(root, "format", json_string(MX_PLAN_FORMAT));
    bad |= json_object_set_new(root, "version", json_integer(MX_PLAN_VERSION));
    bad |= json_object_set_new(root, "strategy", json_string(p->strategy));
    if (p->target_bpw > 0) bad |= set_real(root, "target_bpw", p->target_bpw);
    if (p->target_size > 0) bad |= json_object_set_new(root, "target_size", json_integer((json_int_t)p->target_size));
    bad |= json_object_set_new(root, "weights", json_string(p->weights));
    if (p->candidates[0]) bad |= json_object_set_new(root, "candidates", json_string(p->candidates));
    bad |= json_object_set_new(root, "rtn", json_boolean(p->rtn));
    bad |= json_object_set_new(root, "measure_sample", json_integer((json_int_t)p->measure_sample));
    if (p->meas_file) {
        json_t *mo = json_pack("{s:s,s:s}", "file", p->meas_file, "xxh3", p->meas_xxh3);
        bad |= !mo || json_object_set_new(root, "measurement", mo);
    }

    mixq_plan_summary s;
    mixq_plan_get_summary(p, &s);
    bad |= json_object_set_new(sum, "tensors", json_integer((json_int_t)s.n_tensors));
    bad |= json_object_set_new(sum, "weights_count", json_integer((json_int_t)s.n_elements));
    bad |= json_object_set_new(sum, "source_bytes", json_integer((json_int_t)s.source_bytes));
    bad |= json_object_set_new(sum, "tensor_bytes", json_integer((json_int_t)s.tensor_bytes));
    if (s.file_bytes) bad |= json_object_set_new(sum, "file_bytes", json_integer((json_int_t)s.file_bytes));
    bad |= set_real(sum, "bits_per_weight", s.bits_per_weight);
    bad |= set_real(sum, "estimated_error", s.estimated_error);
    bad |= set_real(sum, "weighted_error", s.weighted_error);
    bad |= set_real(sum, "predicted_kld", s.predicted_kld);
    if (p->solver[0]) {
        bad |= json_object_set_new(sum, "solver", json_string(p->solver));
        bad |= json_object_set_new(sum, "optimal", json_boolean(p->optimal));
        bad |= set_real(sum, "lower_bound", p->lower_bound);
        bad |= json_object_set_new(sum, "budget_bytes", json_integer((json_int_t)p->budget_bytes));
        bad |= json_object_set_new(sum, "min_bytes", json_integer((json_int_t)p->min_bytes));
    }
    bad |= json_object_set_new(root, "summary", sum);
    sum = NULL;

    for (size_t i = 0; i < p->n && !bad; i++) {
        const mx_plan_entry *e = &p->t[i];
        json_t *o = json_object(), *shape = json_array();
        if (!o || !shape) {
            json_decref(o);
            json_decref(shape);
            goto fail;
        }
        for (unsigned d = 0; d < e->ndim; d++) bad |= json_array_append_new(shape, json_integer((json_int_t)e->shape[d]));
        bad |= json_object_set_new(o, "name", json_string(e->name));
        bad |= json_object_set_new(o, "shape", shape);
        if (e->dtype >= 0) bad |= json_object_set_new(o, "dtype", json_string(st_dtypes[e->dtype].name));
        bad |= json_object_set_new(o, "type", json_string(e->qt->name));
        if (e->qt->quantized) bad |= json_object_set_new(o, "group_size", json_integer(e->group_size));
        bad |= json_object_set_new(o, "role", json_string(mx_role_name(e->role.role)));
        if (e->role.layer >= 0) bad |= json_object_set_new(o, "layer", json_integer(e->role.layer));
        if (e->role.tied) bad |= json_object_set_new(o, "tied", json_true());
        if (e->dtype >= 0) bad |= json_object_set_new(o, "bytes", json_integer((json_int_t)e->nbytes));
        bad |= set_real(o, "weight", e->weight);
        if (e->score > 0) bad |= set_real(o, "score", e->score);
        if (isfinite(e->est_error)) {
            char spec[48];
            spec_of(e->qt, e->group_size, spec, sizeof spec);
            bad |= set_real(o, "estimated_error", e->est_error);
            bad |= json_object_set_new(o, "estimated_for", json_string(spec));
        }
        bad |= set_real(o, "predicted_kld", mx_plan_entry_predicted(p, e));
        bad |= json_object_set_new(o, "reason", json_string(e->reason ? e->reason : ""));
        bad |= json_array_append_new(arr, o);
    }
    bad |= json_object_set_new(root, "tensors", arr);
    arr = NULL;
    if (bad) goto fail;
    char *text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(root);
    return text;
fail:
    json_decref(root);
    json_decref(arr);
    json_decref(sum);
    return NULL;
}

mixq_status mixq_plan_save(const mixq_plan *plan, const char *path, int force, mixq_error *err)
{
    if (!plan || !path) return mx_err(err, MIXQ_E_INVALID_ARG, "mixq_plan_save: a plan and a path are required");
    mixq_status s = mx_check_output_not_input(path, NULL, 0, plan->inputs, plan->ninputs,
                                              "the plan was made from", err);
    if (s != MIXQ_OK) return s;
    char *text = mx_plan_to_json(plan);
    if (!text) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", path);
    size_t len = strlen(text);
    text[len] = '\n'; /* replaces the NUL: written as len + 1 bytes */
    afile f;
    s = afile_open(&f, path, force, err);
    if (s == MIXQ_OK) s = afile_pwrite(&f, text, len + 1, 0, err);
    if (s == MIXQ_OK) s = afile_commit(&f, err);
    afile_abort(&f);
    free(text);
    return s;
}

/* ---------------------------------------------------------------------- */
/* Parsing                                                                 */
/* ---------------------------------------------------------------------- */

/* A key list: NULL-terminated. */
static bool known_key(const char *key, const char *const *keys)
{
    for (; *keys; keys++)
        if (!strcmp(key, *keys)) return true;
    return false;
}

/* Rejects keys outside `keys`; where names the object. */
static mixq_status check_keys(const char *name, json_t *o, const char *const *keys, const char *where,
                              mixq_error *err)
{
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        (void)v;
        if (!known_key(key, keys))
            return mx_err(err, MIXQ_E_FORMAT, "%s: %s: unknown key \"%.80s\"", name, where, key);
    }
    return MIXQ_OK;
}

/* A non-negative JSON integer into *out; false if absent is not allowed or the type is wrong. */
static bool get_uint(json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0) return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

static const char *const top_keys[] = {"format", "version", "strategy", "target_bpw", "target_size", "weights",
                                       "candidates", "rtn", "measure_sample", "measurement", "summary", "tensors",
                                       NULL};
static const char *const tensor_keys[] = {"name", "shape", "dtype", "type", "group_size", "role", "layer", "tied",
                                          "bytes", "weight", "score", "estimated_error", "estimated_for", "reason",
                                          "predicted_kld", NULL};

static int cmp_names(const void *a, const void *b)
{
    const mx_plan_entry *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

/* Parses tensor k of the plan into e. */
static mixq_status parse_tensor(const char *name, json_t *o, size_t k, mx_plan_entry *e, mixq_error *err)
{
    char where[64];
    snprintf(where, sizeof where, "tensors[%zu]", k);
    if (!json_is_object(o)) return mx_err(err, MIXQ_E_FORMAT, "%s: %s is not an object", name, where);
    mixq_status s = check_keys(name, o, tensor_keys, where, err);
    if (s != MIXQ_OK) return s;
    const char *nm = json_string_value(json_object_get(o, "name"));
    if (!nm || !*nm) return mx_err(err, MIXQ_E_FORMAT, "%s: %s: \"name\" must be a non-empty string", name, where);
    if (strlen(nm) != json_string_length(json_object_get(o, "name")))
        return mx_err(err, MIXQ_E_FORMAT, "%s: %s: \"name\" holds a NUL character", name, where);
    e->name = strdup(nm);
    if (!e->name) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", name);
    /* from here on, messages name the tensor */
    json_t *shape = json_object_get(o, "shape");
    if (!json_is_array(shape) || json_array_size(shape) > MIXQ_MAX_DIMS)
        return mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%.200s\": \"shape\" must be an array of at most %d integers",
                      name, nm, MIXQ_MAX_DIMS);
    e->ndim = (unsigned)json_array_size(shape);
    e->n_elements = 1;
    for (unsigned d = 0; d < e->ndim; d++) {
        if (!get_uint(json_array_get(shape, d), &e->shape[d]))
            return mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%.200s\": shape[%u] must be a non-negative integer", name,
                          nm, d);
        if (!ck_mul(e->n_elements, e->shape[d], &e->n_elements))
            return mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%.200s\": the shape's element count overflows", name, nm);
    }
    json_t *dt = json_object_get(o, "dtype");
    if (dt) {
        st_dtype d;
        if (!json_is_string(dt) || !st_dtype_parse(json_string_value(dt), &d))
            return mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%.200s\": unknown dtype %s%.40s%s", name, nm,
                          json_is_string(dt) ? "\"" : "", json_is_string(dt) ? json_string_value(dt) : "(not a string)",
                          json_is_string(dt) ? "\"" : "");
        e->dtype = (int)d;
    }
    const char *ty = json_string_value(json_object_get(o, "type"));
    if (!ty) return mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%.200s\": \"type\" must be a string", name, nm);
    e->qt = qtype_by_name(ty);
    if (!e->qt)
        return mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%.200s\": unknown type \"%.40s\"", name, nm, ty);
    json_t *g = json_object_get(o, "group_size");
    if (g) {
        uint64_t gv;
        if (!get_uint(g, &gv) || gv > UINT32_MAX)
            return mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%.200s\": \"group_size\" must be a non-negative integer",
                          name, nm);
        e->group_size = (unsigned)gv;
    } else {
        e->group_size = e->qt->quantized ? e->qt->group_default : 0;
    }
    if (!qtype_group_ok(e->qt, e->group_size))
        return mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%.200s\": group size %u is not allowed for %s", name, nm,
                      e->group_size, e->qt->name);
    json_t *role = json_object_get(o, "role");
    if (role && (!json_is_string(role) || !mx_role_from_name(json_string_value(role), &e->role.role)))
        return mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%.200s\": unknown role", name, nm);
    json_t *layer = json_object_get(o, "layer");
    if (layer) {
        if (!json_is_integer(layer) || json_integer_value(layer) < -1 || json_integer_value(layer) > 1000000000)
            return mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%.200s\": \"layer\" must be an integer >= -1", name, nm);
        e->role.layer = (int)json_integer_value(layer);
    }
    json_t *tied = json_object_get(o, "tied");
    if (tied && !json_is_boolean(tied))
        return mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%.200s\": \"tied\" must be a boolean", name, nm);
    e->role.tied = json_is_true(tied);
    json_t *bytes = json_object_get(o, "bytes");
    uint64_t bv;
    if (bytes && !get_uint(bytes, &bv))
        return mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%.200s\": \"bytes\" must be a non-negative integer", name, nm);
    static const char *const nums[] = {"weight", "score", "estimated_error", "predicted_kld"};
    double vals[4] = {NAN, 0, NAN, NAN}; /* predicted_kld is checked, not kept: weight x estimated_error */
    for (int i = 0; i < 4; i++) {
        json_t *v = json_object_get(o, nums[i]);
        if (!v) continue;
        if (!json_is_number(v) || !(json_number_value(v) >= 0) || !isfinite(json_number_value(v)))
            return mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%.200s\": \"%s\" must be a non-negative number", name, nm,
                          nums[i]);
        vals[i] = json_number_value(v);
    }
    e->weight = vals[0];
    e->score = vals[1];
    json_t *reason = json_object_get(o, "reason");
    if (reason && !json_is_string(reason))
        return mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%.200s\": \"reason\" must be a string", name, nm);
    /* an estimate counts only for the type it was measured for (hand edits make it stale) */
    json_t *ef = json_object_get(o, "estimated_for");
    if (ef && !json_is_string(ef))
        return mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%.200s\": \"estimated_for\" must be a string", name, nm);
    char spec[48];
    spec_of(e->qt, e->group_size, spec, sizeof spec);
    e->est_error = ef && !strcmp(json_string_value(ef), spec) ? vals[2] : NAN;
    /* the planner's reasons are kept (static strings); anything else reads as "plan file" */
    static const char *const reasons[] = {"strategy", "rule", "keep", "1-D", "non-float", "empty", "buffer",
                                          "scalar", "values"};
    e->reason = "plan file";
    for (size_t i = 0; reason && i < sizeof reasons / sizeof *reasons; i++)
        if (!strcmp(json_string_value(reason), reasons[i])) e->reason = reasons[i];
    return MIXQ_OK;
}

/*
 * The plan's strings that reach the container header and `mixq dump`: only
 * the values the planner itself writes ("" when absent), and candidates that
 * parse as type specs.
 */
static bool known_string(const char *key, const char *v)
{
    static const char *const strategies[] = {"", "uniform", "sensitivity", "budget", NULL};
    if (!strcmp(key, "weights")) return !*v || mx_plan_weights_known(v);
    const char *const *set = !strcmp(key, "strategy") ? strategies : NULL;
    if (set) {
        for (; *set; set++)
            if (!strcmp(*set, v)) return true;
        return false;
    }
    for (const char *p = v; *p;) { /* candidates */
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        mx_cand c;
        if (n == 0 || mx_spec_parse(p, n, 0, "candidates", &c, NULL) != MIXQ_OK) return false;
        p += n + (e != NULL);
        if (e && !*p) return false;
    }
    return true;
}

mixq_status mx_plan_parse(const char *name, const char *text, size_t len, mixq_plan **out, mixq_error *err)
{
    *out = NULL;
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root && mx_json_oom(&je, text, len))
        return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory reading the plan", name);
    if (!root) return mx_err(err, MIXQ_E_FORMAT, "%s: not a valid plan: line %d: %s", name, je.line, je.text);
    mixq_plan *p = NULL;
    mixq_status s = MIXQ_OK;
    if (!json_is_object(root)) {
        s = mx_err(err, MIXQ_E_FORMAT, "%s: a plan is a JSON object", name);
        goto out;
    }
    s = check_keys(name, root, top_keys, "plan", err);
    if (s != MIXQ_OK) goto out;
    const char *fmt = json_string_value(json_object_get(root, "format"));
    if (!fmt || strcmp(fmt, MX_PLAN_FORMAT) != 0) {
        s = mx_err(err, MIXQ_E_FORMAT, "%s: not a plan file (\"format\" must be \"%s\")", name, MX_PLAN_FORMAT);
        goto out;
    }
    json_t *ver = json_object_get(root, "version");
    if (!json_is_integer(ver) || json_integer_value(ver) != MX_PLAN_VERSION) {
        s = mx_err(err, MIXQ_E_UNSUPPORTED, "%s: plan file version must be %d", name, MX_PLAN_VERSION);
        goto out;
    }
    json_t *tensors = json_object_get(root, "tensors");
    if (!json_is_array(tensors)) {
        s = mx_err(err, MIXQ_E_FORMAT, "%s: \"tensors\" must be an array", name);
        goto out;
    }
    size_t n = json_array_size(tensors);
    p = mx_plan_alloc(n);
    if (p) p->origin = strdup(name);
    if (!p || !p->origin) {
        s = mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", name);
        goto out;
    }
    static const char *const str_keys[] = {"strategy", "weights", "candidates"};
    static const char *const str_expected[] = {"uniform, sensitivity or budget",
                                               "role, flat or measured, with +file and/or +imatrix",
                                               "a comma-separated list of types (int4, int8:64, ...)"};
    char **dst[] = {&p->strategy, &p->weights, &p->candidates};
    for (int i = 0; i < 3; i++) {
        json_t *v = json_object_get(root, str_keys[i]);
        if (!v) continue;
        if (!json_is_string(v)) {
            s = mx_err(err, MIXQ_E_FORMAT, "%s: \"%s\" must be a string", name, str_keys[i]);
            goto out;
        }
        if (!known_string(str_keys[i], json_string_value(v))) {
            char vb[MX_SHOWN_BUF];
            s = mx_err(err, MIXQ_E_FORMAT, "%s: \"%s\" is \"%s\"; expected %s", name, str_keys[i],
                       mx_shown(json_string_value(v), vb), str_expected[i]);
            goto out;
        }
        char *c = strdup(json_string_value(v));
        if (!c) {
            s = mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", name);
            goto out;
        }
        free(*dst[i]);
        *dst[i] = c;
    }
    json_t *bpw = json_object_get(root, "target_bpw"), *size = json_object_get(root, "target_size");
    if (bpw) {
        if (!json_is_number(bpw) || !(json_number_value(bpw) > 0) || !(json_number_value(bpw) <= 64)) {
            s = mx_err(err, MIXQ_E_FORMAT, "%s: \"target_bpw\" must be a number in (0, 64]", name);
            goto out;
        }
        p->target_bpw = json_number_value(bpw);
    }
    if (size && !get_uint(size, &p->target_size)) {
        s = mx_err(err, MIXQ_E_FORMAT, "%s: \"target_size\" must be a non-negative integer", name);
        goto out;
    }
    json_t *rtn = json_object_get(root, "rtn");
    if (rtn && !json_is_boolean(rtn)) {
        s = mx_err(err, MIXQ_E_FORMAT, "%s: \"rtn\" must be a boolean", name);
        goto out;
    }
    p->rtn = json_is_true(rtn);
    json_t *ms = json_object_get(root, "measure_sample");
    if (ms && !get_uint(ms, &p->measure_sample)) {
        s = mx_err(err, MIXQ_E_FORMAT, "%s: \"measure_sample\" must be a non-negative integer", name);
        goto out;
    }
    json_t *meas = json_object_get(root, "measurement");
    if (meas) { /* the measurement file the weights came from (recorded in the container) */
        const char *mf = json_string_value(json_object_get(meas, "file"));
        const char *mh = json_string_value(json_object_get(meas, "xxh3"));
        if (!json_is_object(meas) || json_object_size(meas) != 2 || !mf || !mh || strlen(mh) != 16 ||
            strspn(mh, "0123456789abcdef") != 16) {
            s = mx_err(err, MIXQ_E_FORMAT, "%s: \"measurement\" must be {\"file\": name, \"xxh3\": 16 hex digits}", name);
            goto out;
        }
        if (!mx_plan_set_str(&p->meas_file, mf)) {
            s = mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", name);
            goto out;
        }
        memcpy(p->meas_xxh3, mh, 17);
    }
    json_t *sum = json_object_get(root, "summary");
    if (sum && !json_is_object(sum)) {
        s = mx_err(err, MIXQ_E_FORMAT, "%s: \"summary\" must be an object", name);
        goto out;
    }
    for (size_t k = 0; k < n; k++) {
        s = parse_tensor(name, json_array_get(tensors, k), k, &p->t[k], err);
        if (s != MIXQ_OK) goto out;
    }
    /* unique names */
    const mx_plan_entry **sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (!sorted) {
        s = mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", name);
        goto out;
    }
    for (size_t k = 0; k < n; k++) sorted[k] = &p->t[k];
    qsort(sorted, n, sizeof *sorted, cmp_names);
    for (size_t k = 1; k < n && s == MIXQ_OK; k++)
        if (!strcmp(sorted[k - 1]->name, sorted[k]->name))
            s = mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%.200s\" appears twice", name, sorted[k]->name);
    free(sorted);
    if (s != MIXQ_OK) goto out;
    /* an unedited plan (every estimate still for its type) keeps the planner's results */
    bool unedited = n > 0;
    for (size_t k = 0; k < n; k++) unedited &= isfinite(p->t[k].est_error);
    if (sum && unedited) {
        json_t *v;
        if ((v = json_object_get(sum, "weighted_error")) && json_is_number(v)) p->weighted_error = json_number_value(v);
        if ((v = json_object_get(sum, "lower_bound")) && json_is_number(v)) p->lower_bound = json_number_value(v);
        if ((v = json_object_get(sum, "predicted_kld")) && json_is_number(v) && p->meas_file)
            p->predicted_kld = json_number_value(v);
        if ((v = json_object_get(sum, "optimal")) && json_is_boolean(v)) p->optimal = json_is_true(v);
        if ((v = json_object_get(sum, "budget_bytes"))) get_uint(v, &p->budget_bytes);
        if ((v = json_object_get(sum, "min_bytes"))) get_uint(v, &p->min_bytes);
        if ((v = json_object_get(sum, "file_bytes"))) get_uint(v, &p->file_bytes);
        const char *sv = json_string_value(json_object_get(sum, "solver"));
        p->solver = sv && !strcmp(sv, "dp") ? "dp" : sv && !strcmp(sv, "lagrangian") ? "lagrangian" : "";
    }
    /* stored sizes where the dtype is known (raw needs it) */
    for (size_t k = 0; k < n; k++) {
        mx_plan_entry *e = &p->t[k];
        if (e->dtype < 0) continue;
        st_tensor t = {.name = e->name, .dtype = (st_dtype)e->dtype, .ndim = e->ndim, .n_elements = e->n_elements};
        memcpy(t.shape, e->shape, sizeof t.shape);
        mx_cand c = {e->qt, e->group_size};
        qlayout lay;
        if (!mx_cand_layout(&c, &t, &lay)) {
            s = mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%.200s\": %s with group size %u: size overflows", name,
                       e->name, e->qt->name, e->group_size);
            goto out;
        }
        e->nbytes = lay.total;
    }
out:
    json_decref(root);
    if (s != MIXQ_OK) {
        mixq_plan_free(p);
        return s;
    }
    *out = p;
    return MIXQ_OK;
}

mixq_status mixq_plan_load(const char *path, mixq_plan **out, mixq_error *err)
{
    if (!path || !out) return mx_err(err, MIXQ_E_INVALID_ARG, "mixq_plan_load: a path and out are required");
    *out = NULL;
    char *buf;
    size_t len;
    mixq_status s = mx_read_small_file(path, "plan file", MX_CAP_PLAN, &buf, &len, err);
    if (s == MIXQ_OK) s = mx_plan_parse(path, buf, len, out, err);
    free(buf);
    return s;
}
