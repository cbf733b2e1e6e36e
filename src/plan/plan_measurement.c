/* plan_measurement.c - measurement files and the model identity (plan_measurement.h). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <xxhash.h>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/small_file.h"
#include "format/jansson_util.h"
#include "plan/plan_internal.h"
#include "plan/plan_measurement.h"

/* Largest measurement file read (a name and two numbers per tensor). */
#define MX_CAP_MEASUREMENT ((uint64_t)256 << 20)

void mx_model_identity(const st_model *m, char hex[17])
{
    XXH3_state_t *h = XXH3_createState();
    uint64_t v = 0;
    if (h && XXH3_64bits_reset(h) == XXH_OK) {
        for (size_t i = 0; i < m->ntensors; i++) {
            const st_tensor *t = &m->tensors[i];
            const char *dt = st_dtypes[t->dtype].name;
            uint8_t dims[8 * (MIXQ_MAX_DIMS + 1)];
            size_t nd = 0;
            uint64_t vals[MIXQ_MAX_DIMS + 1];
            vals[0] = t->ndim;
            for (unsigned d = 0; d < t->ndim; d++) vals[1 + d] = t->shape[d];
            for (unsigned k = 0; k <= t->ndim; k++)
                for (int b = 0; b < 8; b++) dims[nd++] = (uint8_t)(vals[k] >> (8 * b));
            XXH3_64bits_update(h, t->name, strlen(t->name) + 1);
            XXH3_64bits_update(h, dt, strlen(dt) + 1);
            XXH3_64bits_update(h, dims, nd);
        }
        v = XXH3_64bits_digest(h);
    }
    XXH3_freeState(h);
    snprintf(hex, 17, "%016" PRIx64, v);
}

mx_measurement *mx_measurement_new(void)
{
    mx_measurement *ms = calloc(1, sizeof *ms);
    if (!ms) return NULL;
    ms->base_perplexity = NAN;
    return ms;
}

void mx_measurement_free(mx_measurement *ms)
{
    if (!ms) return;
    for (size_t i = 0; i < ms->n; i++) free(ms->t[i].name);
    free(ms->t);
    free(ms->reference);
    free(ms->imatrix_file);
    free(ms->imatrix_weighting);
    free(ms);
}

mixq_status mx_measurement_add(mx_measurement *ms, const char *name, double kld, double seconds, mixq_error *err)
{
    if (ms->n == ms->cap) {
        size_t nc = ms->cap ? ms->cap * 2 : 64;
        mx_meas_tensor *nt = realloc(ms->t, nc * sizeof *nt);
        if (!nt) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
        ms->t = nt;
        ms->cap = nc;
    }
    char *d = strdup(name);
    if (!d) return mx_err(err, MIXQ_E_NOMEM, "out of memory");
    ms->t[ms->n++] = (mx_meas_tensor){d, kld, seconds};
    return MIXQ_OK;
}

const mx_meas_tensor *mx_measurement_find(const mx_measurement *ms, const char *name)
{
    for (size_t i = 0; i < ms->n; i++)
        if (!strcmp(ms->t[i].name, name)) return &ms->t[i];
    return NULL;
}

/* Sets key to a real if v is finite; nonzero on failure. */
static int set_real(json_t *o, const char *key, double v)
{
    return isfinite(v) ? json_object_set_new(o, key, json_real(v)) : 0;
}

mixq_status mx_measurement_write(const mx_measurement *ms, const char *path, mixq_error *err)
{
    json_t *root = json_object(), *model = json_object(), *input = json_object(), *arr = json_array();
    json_t *im = ms->imatrix_xxh3[0] ? json_object() : NULL;
    int bad = !root || !model || !input || !arr || (ms->imatrix_xxh3[0] && !im);
    if (!bad) {
        bad |= json_object_set_new(root, "format", json_string(MX_MEAS_FORMAT));
        bad |= json_object_set_new(root, "version", json_integer(MX_MEAS_VERSION));
        bad |= json_object_set_new(model, "xxh3", json_string(ms->model_xxh3));
        bad |= json_object_set_new(model, "tensors", json_integer((json_int_t)ms->model_tensors));
        bad |= json_object_set(root, "model", model);
        bad |= json_object_set_new(root, "reference", json_string(ms->reference ? ms->reference : ""));
        bad |= json_object_set_new(root, "rtn", json_boolean(ms->rtn));
        bad |= json_object_set_new(input, "tokens_xxh3", json_string(ms->tokens_xxh3));
        bad |= json_object_set_new(input, "ctx", json_integer((json_int_t)ms->ctx));
        bad |= json_object_set_new(input, "chunks", json_integer((json_int_t)ms->chunks));
        bad |= set_real(input, "base_perplexity", ms->base_perplexity);
        bad |= json_object_set(root, "input", input);
        if (im) {
            bad |= json_object_set_new(im, "file", json_string(ms->imatrix_file ? ms->imatrix_file : ""));
            bad |= json_object_set_new(im, "xxh3", json_string(ms->imatrix_xxh3));
            bad |= json_object_set_new(im, "weighting",
                                       json_string(ms->imatrix_weighting ? ms->imatrix_weighting : "sigma"));
            bad |= json_object_set(root, "imatrix", im);
        }
        for (size_t i = 0; i < ms->n && !bad; i++) {
            json_t *o = json_object();
            bad |= !o;
            if (bad) break;
            bad |= json_object_set_new(o, "name", json_string(ms->t[i].name));
            bad |= json_object_set_new(o, "kld", json_real(ms->t[i].kld));
            bad |= json_array_append_new(arr, o);
        }
        bad |= json_object_set(root, "tensors", arr);
    }
    json_decref(model);
    json_decref(input);
    json_decref(im);
    json_decref(arr);
    char *text = bad ? NULL : json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(root);
    if (!text) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", path);
    size_t len = strlen(text);
    text[len] = '\n';
    afile f;
    mixq_status s = afile_open(&f, path, 1, err);
    if (s == MIXQ_OK) s = afile_pwrite(&f, text, len + 1, 0, err);
    if (s == MIXQ_OK) s = afile_commit(&f, err);
    afile_abort(&f);
    free(text);
    return s;
}

/* A string member of exactly 16 lowercase hex digits into out[17]; false if absent or malformed. */
static bool get_hex(json_t *o, const char *key, char out[17])
{
    const char *s = json_string_value(json_object_get(o, key));
    if (!s || strlen(s) != 16 || strspn(s, "0123456789abcdef") != 16) return false;
    memcpy(out, s, 17);
    return true;
}

static bool get_uint(json_t *o, const char *key, uint64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0) return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

/* Rejects keys outside the NULL-terminated list; false with *bad the key. */
static bool only_keys(json_t *o, const char *const *keys, const char **bad)
{
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        (void)v;
        bool ok = false;
        for (const char *const *k = keys; *k && !ok; k++) ok = !strcmp(*k, key);
        if (!ok) {
            *bad = key;
            return false;
        }
    }
    return true;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Fills ms from the parsed root; errors name `name`. */
static mixq_status parse_root(const char *name, json_t *root, mx_measurement *ms, mixq_error *err)
{
    static const char *const top[] = {"format", "version", "model", "reference", "rtn", "input", "imatrix", "tensors", NULL};
    static const char *const tkeys[] = {"name", "kld", "seconds", NULL};
    const char *badkey = NULL;
    if (!json_is_object(root)) return mx_err(err, MIXQ_E_FORMAT, "%s: not a JSON object", name);
    const char *fmt = json_string_value(json_object_get(root, "format"));
    if (!fmt || strcmp(fmt, MX_MEAS_FORMAT))
        return mx_err(err, MIXQ_E_FORMAT, "%s: not a measurement file (\"format\" is not \"%s\")", name, MX_MEAS_FORMAT);
    json_t *ver = json_object_get(root, "version");
    if (!json_is_integer(ver) || json_integer_value(ver) != MX_MEAS_VERSION)
        return mx_err(err, MIXQ_E_FORMAT, "%s: unsupported measurement file version (this build reads version %d)", name,
                      MX_MEAS_VERSION);
    if (!only_keys(root, top, &badkey)) return mx_err(err, MIXQ_E_FORMAT, "%s: unknown key \"%.80s\"", name, badkey);
    json_t *model = json_object_get(root, "model"), *input = json_object_get(root, "input");
    json_t *im = json_object_get(root, "imatrix"), *arr = json_object_get(root, "tensors");
    const char *ref = json_string_value(json_object_get(root, "reference"));
    json_t *rtn = json_object_get(root, "rtn");
    if (!json_is_object(model) || !get_hex(model, "xxh3", ms->model_xxh3) || !get_uint(model, "tensors", &ms->model_tensors))
        return mx_err(err, MIXQ_E_FORMAT, "%s: \"model\" must hold \"xxh3\" (16 hex digits) and \"tensors\"", name);
    if (!ref || !*ref) return mx_err(err, MIXQ_E_FORMAT, "%s: \"reference\" must name a type", name);
    if (rtn && !json_is_boolean(rtn)) return mx_err(err, MIXQ_E_FORMAT, "%s: \"rtn\" must be true or false", name);
    ms->rtn = rtn && json_is_true(rtn);
    if (!json_is_object(input) || !get_hex(input, "tokens_xxh3", ms->tokens_xxh3) || !get_uint(input, "ctx", &ms->ctx) ||
        !get_uint(input, "chunks", &ms->chunks))
        return mx_err(err, MIXQ_E_FORMAT, "%s: \"input\" must hold \"tokens_xxh3\", \"ctx\" and \"chunks\"", name);
    json_t *bp = json_object_get(input, "base_perplexity");
    if (json_is_number(bp)) ms->base_perplexity = json_number_value(bp);
    if (im && !json_is_null(im)) {
        if (!json_is_object(im) || !get_hex(im, "xxh3", ms->imatrix_xxh3))
            return mx_err(err, MIXQ_E_FORMAT, "%s: \"imatrix\" must hold \"xxh3\" (16 hex digits)", name);
        ms->imatrix_file = dup_or_null(json_string_value(json_object_get(im, "file")));
        ms->imatrix_weighting = dup_or_null(json_string_value(json_object_get(im, "weighting")));
    }
    if (!(ms->reference = strdup(ref))) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", name);
    if (!json_is_array(arr)) return mx_err(err, MIXQ_E_FORMAT, "%s: \"tensors\" must be an array", name);
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        const char *tn = json_string_value(json_object_get(e, "name"));
        json_t *k = json_object_get(e, "kld"), *sec = json_object_get(e, "seconds");
        if (!json_is_object(e) || !tn)
            return mx_err(err, MIXQ_E_FORMAT, "%s: tensors[%zu] must be an object with a \"name\"", name, i);
        if (!only_keys(e, tkeys, &badkey))
            return mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%s\": unknown key \"%.80s\"", name, tn, badkey);
        if (!json_is_number(k) || !(json_number_value(k) >= 0) || !isfinite(json_number_value(k)))
            return mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%s\": \"kld\" must be a non-negative number", name, tn);
        if (sec && !json_is_number(sec))
            return mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%s\": \"seconds\" must be a number", name, tn);
        if (mx_measurement_find(ms, tn)) return mx_err(err, MIXQ_E_FORMAT, "%s: tensor \"%s\" appears twice", name, tn);
        mixq_status s = mx_measurement_add(ms, tn, json_number_value(k), sec ? json_number_value(sec) : NAN, err);
        if (s != MIXQ_OK) return s;
    }
    return MIXQ_OK;
}

mixq_status mx_measurement_read(const char *path, mx_measurement **out, mixq_error *err)
{
    *out = NULL;
    char *text, pb[MX_SHOWN_BUF];
    size_t len;
    const char *name = mx_shown(path, pb);
    mixq_status s = mx_read_small_file(path, "measurement file", MX_CAP_MEASUREMENT, &text, &len, err);
    if (s != MIXQ_OK) return s;
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    bool oom = !root && mx_json_oom(&je, text, len);
    uint64_t h = XXH3_64bits(text, len);
    free(text);
    if (oom) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory reading it", name);
    if (!root) return mx_err(err, MIXQ_E_FORMAT, "%s: line %d: %s", name, je.line, je.text);
    mx_measurement *ms = mx_measurement_new();
    s = ms ? parse_root(name, root, ms, err) : mx_err(err, MIXQ_E_NOMEM, "%s: out of memory", name);
    json_decref(root);
    if (s != MIXQ_OK) {
        mx_measurement_free(ms);
        return s;
    }
    ms->file_xxh3 = h;
    *out = ms;
    return MIXQ_OK;
}

mixq_status mx_measurement_same_settings(const mx_measurement *have, const mx_measurement *want, const char *path,
                                         mixq_error *err)
{
    char b[MX_SHOWN_BUF];
    const char *p = mx_shown(path, b);
    const char *what = NULL;
    char detail[160] = "";
    if (strcmp(have->model_xxh3, want->model_xxh3)) {
        what = "another model";
        snprintf(detail, sizeof detail, "model %s, this one %s", have->model_xxh3, want->model_xxh3);
    } else if (strcmp(have->reference, want->reference)) {
        what = "another reference type";
        snprintf(detail, sizeof detail, "%s, asked %s", have->reference, want->reference);
    } else if (have->rtn != want->rtn) {
        what = "other scales";
        snprintf(detail, sizeof detail, "rtn %s", have->rtn ? "on" : "off");
    } else if (strcmp(have->tokens_xxh3, want->tokens_xxh3) || have->ctx != want->ctx || have->chunks != want->chunks) {
        what = "other calibration input";
        snprintf(detail, sizeof detail, "tokens %s, ctx %llu, %llu chunks; asked %s, ctx %llu, %llu chunks",
                 have->tokens_xxh3, (unsigned long long)have->ctx, (unsigned long long)have->chunks, want->tokens_xxh3,
                 (unsigned long long)want->ctx, (unsigned long long)want->chunks);
    } else if (strcmp(have->imatrix_xxh3, want->imatrix_xxh3) ||
               strcmp(have->imatrix_weighting ? have->imatrix_weighting : "",
                      want->imatrix_weighting ? want->imatrix_weighting : "")) {
        what = "another importance matrix";
        snprintf(detail, sizeof detail, "%s, asked %s", have->imatrix_xxh3[0] ? have->imatrix_xxh3 : "none",
                 want->imatrix_xxh3[0] ? want->imatrix_xxh3 : "none");
    }
    if (!what) return MIXQ_OK;
    return mx_err(err, MIXQ_E_INVALID_ARG,
                  "%s was measured with %s (%s); resume it with the same settings, or write to another file", p, what,
                  detail);
}

mixq_status mx_measure_reference(const char *spec, mx_cand *out, char *norm, size_t cap, mixq_error *err)
{
    mixq_status s = mx_spec_parse(spec, strlen(spec), 0, "the reference type", out, err);
    if (s != MIXQ_OK) return s;
    if (!out->qt->quantized || !mx_qtype_has_kernels(out->qt))
        return mx_err(err, MIXQ_E_INVALID_ARG, "the reference type must be a quantized type with kernels, not %s",
                      out->qt->name);
    mx_spec_string(out, norm, cap);
    return MIXQ_OK;
}
