/* cmd_dump.c - `mixq dump FILE [--json] [--tensor NAME]`: what a container holds. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli_util.h"
#include "commands.h"

static const char usage[] =
    "Usage: mixq dump FILE [--json] [--tensor NAME]\n"
    "\n"
    "Lists the tensors of a container: name, shape, quant_type, group size,\n"
    "stored bytes, bits per weight and xxh3 checksum, then totals (source size,\n"
    "output size, compression, bits per weight). Checksums are listed, not\n"
    "checked: use 'mixq verify'.\n"
    "\n"
    "Options:\n"
    "  -j, --json          print one JSON object instead of a table\n"
    "  -t, --tensor NAME   show only this tensor, with its sections\n"
    "  -h, --help          show this help\n"
    "\n"
    "Exit status: 0 success; 1 malformed file or no such tensor; 2 usage error;\n"
    "3 the file cannot be read.\n";

typedef struct totals {
    uint64_t source, stored, elements;
} totals;

static void add_totals(totals *t, const mixq_tensor_info *in)
{
    t->source += in->n_elements * cli_dtype_size(in->source_dtype);
    t->stored += in->nbytes;
    t->elements += in->n_elements;
}

static double bpw_of(uint64_t bytes, uint64_t elems)
{
    return elems ? (double)bytes * 8.0 / (double)elems : 0.0;
}

/* The JSON description of one tensor. */
static json_t *tensor_json(const mixq_tensor *t, int with_sections)
{
    mixq_tensor_info in;
    mixq_tensor_get_info(t, &in);
    json_t *shape = json_array();
    for (unsigned i = 0; i < in.ndim; i++) json_array_append_new(shape, json_integer((json_int_t)in.shape[i]));
    char hex[17];
    snprintf(hex, sizeof hex, "%016" PRIx64, in.checksum);
    json_t *o = json_pack("{s:s,s:o,s:s,s:s,s:i,s:b,s:I,s:I,s:f,s:s}", "name", in.name, "shape", shape,
                          "source_dtype", in.source_dtype, "quant_type", in.quant_type, "group_size",
                          (int)in.group_size, "symmetric", in.symmetric, "offset", (json_int_t)in.offset, "bytes",
                          (json_int_t)in.nbytes, "bits_per_weight", in.bits_per_weight, "xxh3", hex);
    if (o && with_sections) {
        json_t *secs = json_object();
        for (int k = 0; k < MIXQ_SECTION_COUNT; k++) {
            mixq_section sec;
            if (mixq_tensor_section(t, (mixq_section_kind)k, &sec) != MIXQ_OK) continue;
            json_object_set_new(secs, mixq_section_name((mixq_section_kind)k),
                                json_pack("{s:I,s:I,s:I}", "offset",
                                          (json_int_t)sec.offset,
                                          "length", (json_int_t)sec.size, "row_stride", (json_int_t)sec.row_stride));
        }
        json_object_set_new(o, "sections", secs);
    }
    return o;
}

static int dump_json(const char *path, mixq_file *f, const char *only)
{
    json_t *root;
    if (only) {
        root = tensor_json(mixq_find(f, only), 1);
    } else {
        size_t hlen;
        const char *htext = mixq_header_json(f, &hlen);
        json_t *header = json_loadb(htext, hlen, 0, NULL);
        json_t *meta = header ? json_object_get(header, "metadata") : NULL;
        json_t *arr = json_array();
        totals t = {0, 0, 0};
        for (size_t i = 0; i < mixq_tensor_count(f); i++) {
            const mixq_tensor *tn = mixq_tensor_at(f, i);
            mixq_tensor_info in;
            mixq_tensor_get_info(tn, &in);
            add_totals(&t, &in);
            json_t *o = tensor_json(tn, 0);
            json_t *ee = json_object_get(json_array_get(json_object_get(header, "tensors"), i), "estimated_error");
            if (o && json_is_number(ee)) json_object_set(o, "estimated_error", ee);
            json_array_append_new(arr, o);
        }
        root = json_pack("{s:s,s:I,s:i,s:O,s:o,s:{s:i,s:I,s:I,s:I,s:f,s:f}}", "file", path, "file_size",
                         (json_int_t)mixq_file_size(f), "format_version", MIXQ_FORMAT_VERSION,
                         "metadata", meta ? meta : json_null(), "tensors", arr, "totals", "tensors",
                         (int)mixq_tensor_count(f), "source_bytes", (json_int_t)t.source, "stored_bytes",
                         (json_int_t)t.stored, "file_bytes", (json_int_t)mixq_file_size(f), "compression",
                         t.stored ? (double)t.source / (double)t.stored : 0.0, "bits_per_weight",
                         bpw_of(t.stored, t.elements));
        json_decref(header);
    }
    if (!root) {
        cli_error("dump", "%s: out of memory", path);
        return EXIT_SYSTEM;
    }
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(root);
    if (!s) return EXIT_SYSTEM;
    puts(s);
    free(s);
    return EXIT_OK;
}

static void print_one(const mixq_tensor *t)
{
    mixq_tensor_info in;
    mixq_tensor_get_info(t, &in);
    char shape[256];
    printf("name          %s\n", in.name);
    printf("shape         %s (%llu rows of %llu)\n", cli_shape(&in, shape, sizeof shape),
           (unsigned long long)in.rows, (unsigned long long)in.row_length);
    printf("source dtype  %s\n", in.source_dtype);
    printf("quant_type    %s%s\n", in.quant_type, in.quantized ? (in.symmetric ? " (symmetric)" : " (asymmetric)") : "");
    if (in.quantized) {
        if (in.group_size) printf("group size    %u\n", in.group_size);
        else printf("group size    per row (%llu)\n", (unsigned long long)in.row_length);
    }
    printf("offset        %llu\n", (unsigned long long)in.offset);
    printf("bytes         %llu\n", (unsigned long long)in.nbytes);
    printf("bits/weight   %.3f\n", in.bits_per_weight);
    printf("xxh3          %016" PRIx64 "\n", in.checksum);
    for (int k = 0; k < MIXQ_SECTION_COUNT; k++) {
        mixq_section sec;
        if (mixq_tensor_section(t, (mixq_section_kind)k, &sec) != MIXQ_OK) continue;
        printf("section       %-7s %llu bytes, %llu per row\n", mixq_section_name((mixq_section_kind)k),
               (unsigned long long)sec.size, (unsigned long long)sec.row_stride);
    }
}

static int dump_table(const char *path, mixq_file *f)
{
    size_t n = mixq_tensor_count(f), w = 4;
    for (size_t i = 0; i < n; i++) {
        mixq_tensor_info in;
        mixq_tensor_get_info(mixq_tensor_at(f, i), &in);
        size_t l = strlen(in.name);
        if (l > w) w = l;
    }
    if (w > 60) w = 60;
    printf("%s: mixq container, format %d, %zu tensors\n\n", path, MIXQ_FORMAT_VERSION, n);
    /* a planned container records each tensor's estimated squared error and the plan */
    size_t hlen;
    const char *htext = mixq_header_json(f, &hlen);
    json_t *header = json_loadb(htext, hlen, 0, NULL);
    json_t *hts = json_object_get(header, "tensors"), *plan = json_object_get(json_object_get(header, "metadata"), "plan");
    int has_est = 0;
    for (size_t i = 0; i < json_array_size(hts); i++)
        has_est |= json_is_number(json_object_get(json_array_get(hts, i), "estimated_error"));
    printf("%-*s  %-18s  %-5s  %-5s  %12s  %6s  %-16s%s\n", (int)w, "name", "shape", "type", "group", "bytes", "bpw",
           "xxh3", has_est ? "  est.sq.err" : "");
    totals t = {0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        mixq_tensor_info in;
        mixq_tensor_get_info(mixq_tensor_at(f, i), &in);
        add_totals(&t, &in);
        char shape[256], group[16];
        if (!in.quantized) snprintf(group, sizeof group, "-");
        else if (in.group_size == 0) snprintf(group, sizeof group, "row");
        else snprintf(group, sizeof group, "%u", in.group_size);
        printf("%-*s  %-18s  %-5s  %5s  %12llu  %6.3f  %016" PRIx64, (int)w, in.name,
               cli_shape(&in, shape, sizeof shape), in.quant_type, group, (unsigned long long)in.nbytes,
               in.bits_per_weight, in.checksum);
        json_t *ee = json_object_get(json_array_get(hts, i), "estimated_error");
        if (has_est && json_is_number(ee)) printf("  %11.4g", json_number_value(ee));
        else if (has_est) printf("  %11s", "-");
        putchar('\n');
    }
    char a[32], b[32], c[32];
    printf("\ntotal: %zu tensors, %llu weights; source %s, stored %s, file %s; %.2fx smaller; %.3f bits per weight\n",
           n, (unsigned long long)t.elements, cli_bytes(t.source, a, sizeof a), cli_bytes(t.stored, b, sizeof b),
           cli_bytes(mixq_file_size(f), c, sizeof c), t.stored ? (double)t.source / (double)t.stored : 0.0,
           bpw_of(t.stored, t.elements));
    if (json_is_object(plan)) {
        json_t *bpw = json_object_get(plan, "target_bpw"), *size = json_object_get(plan, "target_size");
        json_t *est = json_object_get(plan, "estimated_error");
        const char *strategy = json_string_value(json_object_get(plan, "strategy"));
        printf("plan: strategy %s", strategy ? strategy : "?");
        if (json_is_number(bpw)) printf(", target %.4g bits per weight", json_number_value(bpw));
        if (json_is_integer(size)) printf(", target %lld bytes", (long long)json_integer_value(size));
        if (json_is_string(json_object_get(plan, "weights")))
            printf(", weights %s", json_string_value(json_object_get(plan, "weights")));
        if (json_is_number(est)) printf(", estimated squared error %.6g", json_number_value(est));
        json_t *ms = json_object_get(plan, "measure_sample");
        if (json_is_number(est) && json_is_integer(ms) && json_integer_value(ms) > 0)
            printf(" (errors of tensors over %lld elements estimated from a sample of rows)",
                   (long long)json_integer_value(ms));
        putchar('\n');
    }
    json_t *im = json_object_get(json_object_get(header, "metadata"), "imatrix");
    if (json_is_object(im)) {
        const char *file = json_string_value(json_object_get(im, "file"));
        const char *hash = json_string_value(json_object_get(im, "xxh3"));
        const char *wt = json_string_value(json_object_get(im, "weighting"));
        json_t *ds = json_object_get(im, "datasets");
        printf("imatrix: %s (xxh3 %s), %lld chunks of %lld tokens, %lld entries, weighting %s", file ? file : "?",
               hash ? hash : "?", (long long)json_integer_value(json_object_get(im, "chunk_count")),
               (long long)json_integer_value(json_object_get(im, "chunk_size")),
               (long long)json_integer_value(json_object_get(im, "entries")), wt ? wt : "?");
        for (size_t i = 0; i < json_array_size(ds); i++) {
            const char *d = json_string_value(json_array_get(ds, i));
            if (d) printf("%s%s", i ? ", " : "; dataset ", d);
        }
        putchar('\n');
    }
    json_decref(header);
    return EXIT_OK;
}

int cmd_dump(int argc, char **argv)
{
    static const struct option longopts[] = {{"json", no_argument, NULL, 'j'},
                                              {"tensor", required_argument, NULL, 't'},
                                              {"help", no_argument, NULL, 'h'},
                                              {NULL, 0, NULL, 0}};
    int json = 0, c;
    const char *only = NULL;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":jt:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 't': only = optarg; break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        case ':': return cli_usage_error("dump", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("dump", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 1) return cli_usage_error("dump", "expected exactly one FILE");
    const char *path = argv[optind];
    mixq_error err;
    mixq_file *f = mixq_open(path, 0, &err);
    if (!f) {
        cli_lib_error("dump", &err);
        return cli_exit_code(err.code);
    }
    int rc;
    if (only && !mixq_find(f, only)) {
        cli_error("dump", "%s: no tensor named \"%s\"; run 'mixq dump %s' to list them", path, only, path);
        rc = EXIT_BAD_DATA;
    } else if (json) {
        rc = dump_json(path, f, only);
    } else if (only) {
        print_one(mixq_find(f, only));
        rc = EXIT_OK;
    } else {
        rc = dump_table(path, f);
    }
    mixq_close(f);
    return rc;
}
