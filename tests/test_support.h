/* test_support.h - helpers shared by the Criterion tests. */
#ifndef MIXQ_TEST_SUPPORT_H
#define MIXQ_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

/*
 * A Criterion check that reports only failures: cr_assert reports every
 * passing check to the runner, which is slow in loops of thousands.
 */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            cr_assert_fail(__VA_ARGS__);                                                           \
    } while (0)

/* Runs the mixq CLI with the listed arguments (ts_run_cli). */
#define RUN(out, err, ...) ts_run_cli((const char *const[]){__VA_ARGS__, NULL}, out, err)

/* Creates a fresh temporary directory (removed by ts_rmtree); returns its malloc'd path. */
char *ts_tmpdir(void);
/*
 * ts_tmpdir, also remembered for ts_remove_tracked: a suite's .fini removes
 * the directories of its tests even when an assertion ends one early (a
 * failing signal test would otherwise leave ~100 MB behind in $TMPDIR).
 */
char *ts_tmpdir_tracked(void);
/* Removes (made writable first) every directory ts_tmpdir_tracked made in this process. */
void ts_remove_tracked(void);
/* Removes a directory tree (best effort). */
void ts_rmtree(const char *path);
/* Joins dir and name into a malloc'd path. */
char *ts_path(const char *dir, const char *name);
/* Writes len bytes to path (creating or truncating); aborts the test on failure. */
void ts_write_file(const char *path, const void *data, size_t len);
/* Reads a whole file into a malloc'd buffer; *len gets its size; NULL if it cannot. */
uint8_t *ts_read_file(const char *path, size_t *len);
/* True if path exists. */
int ts_exists(const char *path);
/* Number of entries in a directory other than . and .. */
int ts_dir_count(const char *path);

/*
 * Builds safetensors bytes: the 8-byte little-endian length of header_json,
 * the header, then data_len bytes (data, or a deterministic pattern if NULL).
 * Returns a malloc'd buffer; *len gets its size.
 */
uint8_t *ts_safetensors(const char *header_json, const void *data, size_t data_len, size_t *len);

/* Path of a file under the source tree (MIXQ_SOURCE_ROOT), malloc'd. */
char *ts_source_path(const char *rel);
/* Path of the shared models folder (../shared/models beside the source tree), or NULL if absent. */
char *ts_models_dir(void);

/*
 * Runs the mixq CLI (MIXQ_EXE) with the given NULL-terminated argument list
 * (argv[0] not included), capturing stdout and stderr into malloc'd strings
 * (either may be NULL to discard).  Returns the exit status, or -1 if it did
 * not exit normally (*signal_out gets the signal if non-NULL).
 */
int ts_run_cli(const char *const *args, char **out, char **err);

/*
 * Writes dir/model.safetensors, a LLaMA checkpoint of F32 tensors with the
 * shapes of hidden H, intermediate I, L layers, nh heads, nkv kv heads and
 * vocabulary V (no lm_head: tie it in cfg_json, or add one), values from an
 * LCG in [-0.5, 0.5), and dir/config.json = cfg_json.
 */
void ts_write_llama(const char *dir, int H, int I, int L, int nh, int nkv, int V, const char *cfg_json);

/* Independent references: the value of an fp8 E4M3 / E5M2 byte from its bit fields (NaN codes: NAN). */
double ts_ref_e4m3(uint8_t b);
double ts_ref_e5m2(uint8_t b);

#endif
