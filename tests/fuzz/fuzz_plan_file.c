/*
 * fuzz_plan_file.c - libFuzzer target: the plan-file parser (mx_plan_parse,
 * the JSON written by `mixq plan -o` and read by `mixq convert --plan`).
 *
 * On success it walks every tensor and the summary through the public
 * accessors and checks what convert relies on: names present, shapes within
 * MIXQ_MAX_DIMS, a known quant type.  A broken promise aborts (a finding).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mixq_tools.h"
#include "plan/plan.h"

#define FUZZ_TARGET "fuzz_plan_file"
#include "fuzz_common.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mixq_plan *plan = NULL;
    mixq_error err;
    /* The text is not NUL-terminated: the parser must honour len. */
    mixq_status s = mx_plan_parse("fuzz.plan.json", (const char *)data, size, &plan, &err);
    if (s != MIXQ_OK) {
        CHECK(plan == NULL);
        fuzz_check_error(&err, s);
        return 0;
    }
    CHECK(plan != NULL);
    size_t n = mixq_plan_tensor_count(plan);
    for (size_t i = 0; i < n; i++) {
        mixq_plan_tensor t;
        CHECK(mixq_plan_tensor_get(plan, i, &t) == MIXQ_OK);
        CHECK(t.name != NULL);
        CHECK(t.ndim <= MIXQ_MAX_DIMS);
        CHECK((unsigned)t.qtype < MIXQ_QT_COUNT && mixq_qtype_name(t.qtype) != NULL);
        CHECK(t.role != NULL && t.reason != NULL);
    }
    mixq_plan_tensor t;
    CHECK(mixq_plan_tensor_get(plan, n, &t) == MIXQ_E_RANGE);
    mixq_plan_summary sum;
    mixq_plan_get_summary(plan, &sum);
    CHECK(sum.n_tensors == n);
    CHECK(sum.strategy != NULL);
    mixq_plan_free(plan);
    return 0;
}
