/* plan_importance.c - importance matrices applied to a checkpoint's tensors (plan_importance.h). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "plan/plan_importance.h"
#include "plan/plan_measure.h"

mixq_status mx_importance_for(const mx_imatrix *im, const char *im_name, const st_tensor *t, const mx_role_info *r,
                              mixq_imatrix_weighting mode, mx_importance *out, bool *missing, mixq_error *err)
{
    out->a = NULL;
    out->n = 0;
    out->mode = mode;
    *missing = false;
    uint64_t rows, row_length;
    if (!mx_tensor_rows(t, &rows, &row_length)) return mx_err(err, MIXQ_E_RANGE, "tensor \"%s\": size overflows", t->name);
    mx_imatrix_view e;
    if (!mx_imatrix_find(im, t->name, r && r->tied, (size_t)row_length, &e)) {
        *missing = true;
        return MIXQ_OK;
    }
    if (e.n != row_length) {
        char b[MX_SHOWN_BUF];
        return mx_err(err, MIXQ_E_INVALID_ARG,
                      "%s: entry '%s' holds %zu values, but tensor \"%s\" has rows of %llu (an importance matrix of "
                      "another model?)",
                      mx_shown(im_name, b), e.name, e.n, t->name, (unsigned long long)row_length);
    }
    return mx_importance_init(out, e.sum2, e.n, e.count, mode, err);
}

void mx_warn(mixq_warning_fn fn, void *ctx, const char *fmt, ...)
{
    if (!fn) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fn(ctx, msg);
}

const char *mx_imatrix_weighting_name(mixq_imatrix_weighting w)
{
    return w == MIXQ_IMATRIX_PLAIN ? "plain" : "sigma";
}

/* A JSON string of s, or of a placeholder if s is not UTF-8. */
static json_t *str_or(const char *s)
{
    json_t *v = json_string(s);
    return v ? v : json_string("(not UTF-8)");
}

json_t *mx_imatrix_record(const mx_imatrix *im, const char *path, mixq_imatrix_weighting w)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char hex[17];
    snprintf(hex, sizeof hex, "%016" PRIx64, im->hash);
    json_t *o = json_object(), *ds = json_array();
    int bad = !o || !ds;
    for (size_t i = 0; !bad && i < im->n_datasets; i++) bad |= json_array_append_new(ds, str_or(im->datasets[i]));
    if (!bad) {
        bad |= json_object_set_new(o, "file", str_or(base));
        bad |= json_object_set_new(o, "xxh3", json_string(hex));
        bad |= json_object_set(o, "datasets", ds);
        bad |= json_object_set_new(o, "chunk_count", json_integer(im->chunk_count));
        bad |= json_object_set_new(o, "chunk_size", json_integer(im->chunk_size));
        bad |= json_object_set_new(o, "entries", json_integer((json_int_t)im->n_entries));
        bad |= json_object_set_new(o, "weighting", json_string(mx_imatrix_weighting_name(w)));
    }
    json_decref(ds);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}
