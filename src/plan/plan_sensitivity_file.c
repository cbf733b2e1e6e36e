/*
 * plan_sensitivity_file.c - the external sensitivity file (--sensitivity):
 * per-tensor scores that scale the planner's error weights.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "format/jansson_util.h"
#include "common/small_file.h"
#include "plan/plan.h"
#include "plan/plan_measure.h"
#include "kernels/simd.h"
#include "plan/plan_internal.h"

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
mixq_status mx_plan_load_sensitivity(const char *path, const mx_plan_entry *t, size_t n, double *ext,
                                     mixq_error *err)
{
    json_error_t je;
    char *text, pb[200];
    size_t len;
    mixq_status rs = mx_read_small_file(path, "sensitivity file", MX_CAP_SENSITIVITY, &text, &len, err);
    if (rs != MIXQ_OK) return rs;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    bool oom = !root && mx_json_oom(&je, text, len);
    free(text);
    if (oom) return mx_err(err, MIXQ_E_NOMEM, "%s: out of memory reading it", mx_printable(pb, sizeof pb, path, 0));
    if (!root)
        return mx_err(err, MIXQ_E_FORMAT, "%s: line %d: %s", mx_printable(pb, sizeof pb, path, 0), je.line, je.text);
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
