/*
 * test_faults.c - the CLI under faults (docs/ROBUSTNESS.md):
 *  - disk full and I/O errors while writing: RLIMIT_FSIZE, and an LD_PRELOAD
 *    shim (tests/fault_write_shim.c, path in MIXQ_FAULT_SHIM) that makes
 *    writes fail with ENOSPC after N bytes, fsync and rename fail;
 *  - SIGINT, SIGTERM and SIGHUP in the middle of a conversion (and an
 *    export) of a ~100 MB checkpoint generated in the test's directory;
 *  - awkward outputs: the input itself, an unwritable or missing directory,
 *    a directory, an existing file, a file appearing during the conversion;
 *  - an input that is a FIFO.
 * Every failure must exit with the documented code, print one line naming
 * the file, leave no output and no temporary, and leave the input untouched.
 * Tests that fail because of a known bug in src/ say "[KNOWN BUG Bn]" (see
 * docs/ROBUSTNESS.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include <criterion/criterion.h>
#include <xxhash.h>

#include "mixq_tools.h"
#include "test_support.h"

extern char **environ;

/*
 * Temporary directories of the running test, removed by the suites' .fini
 * even when an assertion fails (a failing signal test would otherwise leave
 * ~100 MB behind in $TMPDIR).
 */
static char *tracked[32];
static size_t ntracked;

static char *tmpdir(void)
{
    char *d = ts_tmpdir();
    if (ntracked < sizeof tracked / sizeof tracked[0]) tracked[ntracked++] = strdup(d);
    return d;
}

static pid_t running = -1; /* a CLI still running when a test fails is killed */

static void remove_tmpdirs(void)
{
    if (running > 0) {
        kill(running, SIGKILL);
        waitpid(running, NULL, 0);
        running = -1;
    }
    for (size_t i = 0; i < ntracked; i++) {
        chmod(tracked[i], 0700);
        ts_rmtree(tracked[i]);
        free(tracked[i]);
    }
    ntracked = 0;
}
TestSuite(disk_full, .fini = remove_tmpdirs);
TestSuite(signals, .fini = remove_tmpdirs);
TestSuite(output, .fini = remove_tmpdirs);
TestSuite(input, .fini = remove_tmpdirs);


/* ---------------------------------------------------------------------- */
/* Running the CLI with faults                                             */
/* ---------------------------------------------------------------------- */

typedef struct run_opts {
    const char *env[8];        /* extra NAME=VALUE entries, replacing inherited ones */
    long long fsize_limit;     /* RLIMIT_FSIZE in bytes; 0 = no limit (use fsize_set) */
    int fsize_set;
    int ignore_sigxfsz;        /* start with SIGXFSZ ignored (default: the default action, as from a shell) */
    int drop_privileges;       /* run as nobody (65534) */
    const char *stdout_path;   /* open this as standard output instead of the pipe (e.g. /dev/full) */
    long long as_limit;        /* RLIMIT_AS in bytes (ulimit -v); 0 = none */
} run_opts;

/* A running CLI; its stdout and stderr go to pipes (not files: RLIMIT_FSIZE would apply to those). */
typedef struct proc {
    pid_t pid;
    int ofd, efd;           /* read ends, non-blocking */
    char *obuf, *ebuf;
    size_t olen, elen;
} proc;

static int env_overridden(const char *entry, const run_opts *o)
{
    const char *eq = strchr(entry, '=');
    size_t n = eq ? (size_t)(eq - entry) : strlen(entry);
    for (int i = 0; i < 8 && o->env[i]; i++)
        if (!strncmp(o->env[i], entry, n) && o->env[i][n] == '=') return 1;
    return 0;
}

/* The child's environment: ours, with o->env replacing or adding entries. */
static char **make_env(const run_opts *o)
{
    size_t n = 0;
    while (environ[n]) n++;
    char **env = calloc(n + 12, sizeof *env);
    size_t k = 0;
    int preload = 0;
    for (int i = 0; i < 8 && o->env[i]; i++) preload |= !strncmp(o->env[i], "LD_PRELOAD=", 11);
    for (size_t i = 0; i < n; i++) {
        if (env_overridden(environ[i], o)) continue;
        if (preload && !strncmp(environ[i], "ASAN_OPTIONS=", 13)) {
            /* under AddressSanitizer a preloaded library comes before the runtime: allow it */
            cr_assert(asprintf(&env[k++], "%s:verify_asan_link_order=0", environ[i]) > 0);
            preload = 2;
            continue;
        }
        env[k++] = strdup(environ[i]);
    }
    if (preload == 1) env[k++] = strdup("ASAN_OPTIONS=verify_asan_link_order=0");
    for (int i = 0; i < 8 && o->env[i]; i++) env[k++] = strdup(o->env[i]);
    env[k] = NULL;
    return env;
}

static void free_env(char **env)
{
    for (size_t i = 0; env[i]; i++) free(env[i]);
    free(env);
}

/* Starts the CLI with args (argv[0] not included). */
static proc spawn_cli(const char *const *args, const run_opts *o)
{
    static const run_opts none;
    if (!o) o = &none;
    const char *exe = getenv("MIXQ_EXE");
    cr_assert(exe, "MIXQ_EXE is not set (run the tests through meson test)");
    size_t n = 0;
    while (args[n]) n++;
    char **argv = calloc(n + 2, sizeof *argv);
    argv[0] = (char *)exe;
    for (size_t i = 0; i < n; i++) argv[i + 1] = (char *)args[i];
    char **env = make_env(o);
    proc p;
    memset(&p, 0, sizeof p);
    int op[2], ep[2];
    cr_assert(pipe2(op, O_CLOEXEC) == 0 && pipe2(ep, O_CLOEXEC) == 0);
    fflush(NULL);
    p.pid = fork();
    cr_assert(p.pid >= 0);
    if (p.pid == 0) {
        int nul = open("/dev/null", O_RDONLY);
        dup2(nul, 0);
        dup2(op[1], 1);
        dup2(ep[1], 2);
        if (o->stdout_path) {
            int fd = open(o->stdout_path, O_WRONLY);
            if (fd < 0 || dup2(fd, 1) < 0) _exit(124);
        }
        close(op[0]);
        close(ep[0]);
        close(op[1]);
        close(ep[1]);
        /* as started from a shell: default signal actions, nothing blocked */
        for (int s = 1; s < 32; s++)
            if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL);
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        if (o->ignore_sigxfsz) signal(SIGXFSZ, SIG_IGN);
        if (o->fsize_set) {
            struct rlimit rl = {(rlim_t)o->fsize_limit, (rlim_t)o->fsize_limit};
            if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(125);
        }
        if (o->as_limit) {
            struct rlimit rl = {(rlim_t)o->as_limit, (rlim_t)o->as_limit};
            if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(125);
        }
        if (o->drop_privileges) {
            if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0) _exit(126);
        }
        execve(exe, argv, env);
        _exit(127);
    }
    running = p.pid;
    free(argv);
    free_env(env);
    close(op[1]);
    close(ep[1]);
    p.ofd = op[0];
    p.efd = ep[0];
    fcntl(p.ofd, F_SETFL, O_NONBLOCK);
    fcntl(p.efd, F_SETFL, O_NONBLOCK);
    p.obuf = calloc(1, 1);
    p.ebuf = calloc(1, 1);
    return p;
}

/* Appends whatever the pipe holds to *buf. */
static void drain(int fd, char **buf, size_t *len)
{
    char tmp[4096];
    ssize_t got;
    while ((got = read(fd, tmp, sizeof tmp)) > 0) {
        *buf = realloc(*buf, *len + (size_t)got + 1);
        memcpy(*buf + *len, tmp, (size_t)got);
        *len += (size_t)got;
        (*buf)[*len] = 0;
    }
}

/*
 * Waits for the CLI (at most timeout_s seconds, then kills it and returns
 * -2); returns its exit code, or -1 if a signal ended it (*sig gets it).
 */
static int wait_cli(proc *p, double timeout_s, char **out, char **err, int *sig)
{
    int status = 0;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int timed_out = 0;
    for (;;) {
        drain(p->ofd, &p->obuf, &p->olen);
        drain(p->efd, &p->ebuf, &p->elen);
        pid_t r = waitpid(p->pid, &status, WNOHANG);
        if (r == p->pid) break;
        cr_assert(r == 0 || errno == EINTR);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) * 1e-9 > timeout_s) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
            timed_out = 1;
            break;
        }
        usleep(1000);
    }
    running = -1;
    /* the write ends are closed once the process is gone (unless it left children, which mixq does not) */
    fcntl(p->ofd, F_SETFL, 0);
    fcntl(p->efd, F_SETFL, 0);
    drain(p->ofd, &p->obuf, &p->olen);
    drain(p->efd, &p->ebuf, &p->elen);
    close(p->ofd);
    close(p->efd);
    if (out) *out = p->obuf; else free(p->obuf);
    if (err) *err = p->ebuf; else free(p->ebuf);
    if (sig) *sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    if (timed_out) return -2;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int run_cli(const char *const *args, const run_opts *o, char **out, char **err, int *sig)
{
    proc p = spawn_cli(args, o);
    return wait_cli(&p, 120, out, err, sig);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---------------------------------------------------------------------- */
/* Checks                                                                  */
/* ---------------------------------------------------------------------- */

/* xxh3 of every regular file under dir (names, sizes and contents), to prove the input untouched. */
static uint64_t tree_hash(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) return 0;
    if (S_ISREG(st.st_mode)) {
        size_t len;
        uint8_t *b = ts_read_file(path, &len);
        uint64_t h = b ? XXH3_64bits(b, len) : 1;
        free(b);
        return h ^ (uint64_t)st.st_mtim.tv_nsec ^ ((uint64_t)st.st_mtim.tv_sec << 20);
    }
    if (!S_ISDIR(st.st_mode)) return 2;
    uint64_t h = 0;
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *p = ts_path(path, e->d_name);
        h += XXH3_64bits(e->d_name, strlen(e->d_name)) * 31 + tree_hash(p); /* order-independent */
        free(p);
    }
    if (d) closedir(d);
    return h;
}

/* The error output is exactly one line "mixq CMD: ..." containing every given substring. */
static void expect_one_line(const char *tag, const char *e, const char *cmd, const char *want1, const char *want2)
{
    size_t n = strlen(e);
    cr_assert(n > 0 && e[n - 1] == '\n' && strchr(e, '\n') == e + n - 1, "%s: not exactly one line: \"%s\"", tag, e);
    char prefix[32];
    snprintf(prefix, sizeof prefix, "mixq %s: ", cmd);
    cr_assert(!strncmp(e, prefix, strlen(prefix)), "%s: does not start with \"%s\": %s", tag, prefix, e);
    if (want1) cr_assert(strstr(e, want1), "%s: lacks \"%s\": %s", tag, want1, e);
    if (want2) cr_assert(strstr(e, want2), "%s: lacks \"%s\": %s", tag, want2, e);
}

static const char *shim_path(void)
{
    const char *s = getenv("MIXQ_FAULT_SHIM");
    if (!s || access(s, R_OK) != 0) cr_skip_test("the fault shim is not built (MIXQ_FAULT_SHIM)");
    return s;
}

static char *env_kv(const char *k, const char *v)
{
    char *s = NULL;
    cr_assert(asprintf(&s, "%s=%s", k, v) > 0);
    return s;
}

static char *env_num(const char *k, long long v)
{
    char *s = NULL;
    cr_assert(asprintf(&s, "%s=%lld", k, v) > 0);
    return s;
}

/* Size of the container `mixq convert IN --type TYPE` writes. */
static long long output_size(const char *in, const char *type)
{
    char *dir = tmpdir(), *out = ts_path(dir, "ref.mxq");
    char *e = NULL;
    int rc = run_cli(ARGS("convert", in, "-o", out, "--type", type, "-q"), NULL, NULL, &e, NULL);
    cr_assert_eq(rc, 0, "reference conversion: %s", e);
    struct stat st;
    cr_assert_eq(stat(out, &st), 0);
    free(e);
    ts_rmtree(dir);
    free(dir); free(out);
    return (long long)st.st_size;
}

static int export_available(void)
{
    char *o = NULL, *e = NULL;
    int rc = run_cli(ARGS("export", "--help"), NULL, &o, &e, NULL);
    free(o); free(e);
    return rc == 0;
}

/* ---------------------------------------------------------------------- */
/* Disk full, I/O errors                                                   */
/* ---------------------------------------------------------------------- */

/* RLIMIT_FSIZE as `ulimit -f` sets it; SIGXFSZ ignored or at its default (which kills). */
static void fsize_limits(int ignore_sigxfsz, const char *bug)
{
    char *in = ts_source_path("testdata/tiny-llama-f32");
    long long size = output_size(in, "f32");
    uint64_t in_hash = tree_hash(in);
    const long long limits[] = {0, 100, 4096, 100000, size / 2, size - 1};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        char *dir = tmpdir(), *out = ts_path(dir, "out.mxq"), *o = NULL, *e = NULL;
        run_opts ro = {.fsize_limit = limits[i], .fsize_set = 1, .ignore_sigxfsz = ignore_sigxfsz};
        int sig = 0;
        int rc = run_cli(ARGS("convert", in, "-o", out, "--type", "f32"), &ro, &o, &e, &sig);
        char tag[200];
        snprintf(tag, sizeof tag, "%sRLIMIT_FSIZE %lld (SIGXFSZ %s)", bug ? bug : "", limits[i],
                 ignore_sigxfsz ? "ignored" : "default");
        cr_assert_eq(rc, 3, "%s: exit %d (signal %d), expected 3; stderr: %s; files left: %d", tag, rc, sig, e,
                     ts_dir_count(dir));
        expect_one_line(tag, e, "convert", out, "File too large");
        cr_assert_str_eq(o, "", "%s: stdout: %s", tag, o);
        cr_assert_eq(ts_dir_count(dir), 0, "%s: output or temporary left behind", tag);
        ts_rmtree(dir);
        free(dir); free(out); free(o); free(e);
    }
    cr_assert_eq(tree_hash(in), in_hash, "the input changed");
    free(in);
}

/* A parent that ignores SIGXFSZ (so write fails with EFBIG): exit 3, nothing left. */
Test(disk_full, rlimit_fsize_sigxfsz_ignored) { fsize_limits(1, NULL); }

/*
 * From a shell (`ulimit -f N; mixq convert ...`) SIGXFSZ has its default
 * action: mixq must still exit 3 and remove its temporary.
 */
Test(disk_full, rlimit_fsize_from_a_shell) { fsize_limits(0, "[KNOWN BUG B1: SIGXFSZ kills mixq, the temporary stays] "); }

/* The shim: writes fail with ENOSPC once N bytes were written, for many N. */
static void enospc_sweep(const char *in_rel, const char *type)
{
    const char *shim = shim_path();
    char *in = ts_source_path(in_rel);
    long long size = output_size(in, type);
    uint64_t in_hash = tree_hash(in);
    const long long limits[] = {0, 1, 63, 64, 65, 1000, 4096, 65536, size / 3, size / 2, size - 65, size - 64,
                                size - 1};
    char *preload = env_kv("LD_PRELOAD", shim);
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        char *dir = tmpdir(), *out = ts_path(dir, "out.mxq"), *o = NULL, *e = NULL;
        char *lim = env_num("MIXQ_FAULT_WRITE_LIMIT", limits[i]);
        run_opts ro = {.env = {preload, lim}};
        int sig = 0;
        int rc = run_cli(ARGS("convert", in, "-o", out, "--type", type), &ro, &o, &e, &sig);
        char tag[160];
        snprintf(tag, sizeof tag, "%s --type %s, ENOSPC after %lld of %lld bytes", in_rel, type, limits[i], size);
        cr_assert_eq(rc, 3, "%s: exit %d (signal %d), expected 3; stderr: %s", tag, rc, sig, e);
        expect_one_line(tag, e, "convert", out, "No space left on device");
        cr_assert_str_eq(o, "", "%s: stdout: %s", tag, o);
        cr_assert_eq(ts_dir_count(dir), 0, "%s: output or temporary left behind", tag);
        ts_rmtree(dir);
        free(dir); free(out); free(o); free(e); free(lim);
    }
    /* exactly enough room: the conversion succeeds and the file verifies */
    char *dir = tmpdir(), *out = ts_path(dir, "out.mxq"), *e = NULL;
    char *lim = env_num("MIXQ_FAULT_WRITE_LIMIT", size);
    run_opts ro = {.env = {preload, lim}};
    cr_assert_eq(run_cli(ARGS("convert", in, "-o", out, "--type", type, "-q"), &ro, NULL, &e, NULL), 0,
                 "exactly %lld bytes of room: %s", size, e);
    free(e);
    cr_assert_eq(run_cli(ARGS("verify", out), NULL, NULL, &e, NULL), 0, "%s", e);
    cr_assert_eq(ts_dir_count(dir), 1);
    ts_rmtree(dir);
    free(dir); free(out); free(e); free(lim); free(preload);
    cr_assert_eq(tree_hash(in), in_hash, "the input changed");
    free(in);
}

Test(disk_full, enospc_after_n_bytes_f32, .timeout = 120) { enospc_sweep("testdata/tiny-llama-f32", "f32"); }
Test(disk_full, enospc_after_n_bytes_int4_sharded, .timeout = 120) { enospc_sweep("testdata/tiny-llama-sharded", "int4"); }

/* Another errno: EIO is reported as such. */
Test(disk_full, eio_while_writing)
{
    const char *shim = shim_path();
    char *in = ts_source_path("testdata/tiny-llama-bf16"), *dir = tmpdir(), *out = ts_path(dir, "out.mxq");
    char *preload = env_kv("LD_PRELOAD", shim), *e = NULL;
    run_opts ro = {.env = {preload, "MIXQ_FAULT_WRITE_LIMIT=5000", "MIXQ_FAULT_ERRNO=5"}};
    int rc = run_cli(ARGS("convert", in, "-o", out), &ro, NULL, &e, NULL);
    cr_assert_eq(rc, 3, "exit %d: %s", rc, e);
    expect_one_line("EIO", e, "convert", out, "Input/output error");
    cr_assert_eq(ts_dir_count(dir), 0);
    ts_rmtree(dir);
    free(dir); free(out); free(in); free(preload); free(e);
}

/* fsync and rename failures: exit 3, the message names the output, nothing left. */
static void commit_failure(const char *env, const char *want)
{
    const char *shim = shim_path();
    char *in = ts_source_path("testdata/tiny-llama-bf16"), *dir = tmpdir(), *out = ts_path(dir, "out.mxq");
    char *preload = env_kv("LD_PRELOAD", shim), *e = NULL;
    run_opts ro = {.env = {preload, env}};
    int rc = run_cli(ARGS("convert", in, "-o", out, "--type", "int4"), &ro, NULL, &e, NULL);
    cr_assert_eq(rc, 3, "%s: exit %d: %s", env, rc, e);
    cr_assert_eq(ts_dir_count(dir), 0, "%s: output or temporary left behind", env);
    expect_one_line(env, e, "convert", want, NULL);
    cr_assert(strstr(e, out), "[KNOWN BUG B2: afile_commit frees the path before formatting the message] %s: the "
              "message does not name the output %s: %s", env, out, e);
    ts_rmtree(dir);
    free(dir); free(out); free(in); free(preload); free(e);
}

Test(disk_full, fsync_failure) { commit_failure("MIXQ_FAULT_FSYNC=1", "fsync failed: Input/output error"); }
Test(disk_full, rename_failure) { commit_failure("MIXQ_FAULT_RENAME=eio", "cannot rename the temporary file into place"); }

/* A file system without RENAME_NOREPLACE: the link() fallback still commits, and leaves no temporary. */
Test(disk_full, rename_noreplace_unsupported)
{
    const char *shim = shim_path();
    char *in = ts_source_path("testdata/tiny-llama-bf16"), *dir = tmpdir(), *out = ts_path(dir, "out.mxq");
    char *preload = env_kv("LD_PRELOAD", shim), *e = NULL;
    run_opts ro = {.env = {preload, "MIXQ_FAULT_RENAME=enosys"}};
    int rc = run_cli(ARGS("convert", in, "-o", out, "-q"), &ro, NULL, &e, NULL);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, e);
    cr_assert_eq(ts_dir_count(dir), 1, "a temporary was left next to the output");
    free(e);
    cr_assert_eq(run_cli(ARGS("verify", out), NULL, NULL, &e, NULL), 0, "%s", e);
    free(e);
    /* and an existing output is still not replaced without --force */
    rc = run_cli(ARGS("convert", in, "-o", out, "-q"), &ro, NULL, &e, NULL);
    cr_assert_eq(rc, 3, "exit %d: %s", rc, e);
    cr_assert_eq(ts_dir_count(dir), 1);
    ts_rmtree(dir);
    free(dir); free(out); free(in); free(preload); free(e);
}

/* export under ENOSPC: exit 3, no output, no temporary. */
Test(disk_full, export_enospc)
{
    const char *shim = shim_path();
    if (!export_available()) cr_skip_test("this mixq has no export command");
    char *in = ts_source_path("testdata/tiny-llama-bf16"), *dir = tmpdir(), *c = ts_path(dir, "c.mxq");
    char *e = NULL;
    cr_assert_eq(run_cli(ARGS("convert", in, "-o", c, "-q", "--type", "int4"), NULL, NULL, &e, NULL), 0, "%s", e);
    free(e);
    char *sub = ts_path(dir, "x");
    cr_assert_eq(mkdir(sub, 0755), 0);
    char *out = ts_path(sub, "out.safetensors"), *preload = env_kv("LD_PRELOAD", shim);
    uint64_t h = tree_hash(c);
    const char *limits[] = {"MIXQ_FAULT_WRITE_LIMIT=0", "MIXQ_FAULT_WRITE_LIMIT=7", "MIXQ_FAULT_WRITE_LIMIT=100000",
                            "MIXQ_FAULT_FSYNC=1"};
    for (int i = 0; i < 4; i++) {
        run_opts ro = {.env = {preload, limits[i]}};
        int rc = run_cli(ARGS("export", c, "-o", out), &ro, NULL, &e, NULL);
        cr_assert_eq(rc, 3, "%s: exit %d: %s", limits[i], rc, e);
        expect_one_line(limits[i], e, "export", NULL, NULL);
        cr_assert(strstr(e, out), "%s%s: the message does not name the output: %s",
                  i == 3 ? "[KNOWN BUG B2: afile_commit frees the path before formatting the message] " : "",
                  limits[i], e);
        cr_assert_eq(ts_dir_count(sub), 0, "%s: output or temporary left behind", limits[i]);
        free(e);
    }
    cr_assert_eq(tree_hash(c), h, "the container changed");
    ts_rmtree(dir);
    free(dir); free(c); free(in); free(sub); free(out); free(preload);
}

/* ---------------------------------------------------------------------- */
/* Signals                                                                 */
/* ---------------------------------------------------------------------- */

enum { BIG_TENSORS = 24, BIG_ROWS = 1024, BIG_COLS = 1024 };

/* Writes a ~100 MB F32 checkpoint (24 tensors of 1024 x 1024) into dir; returns its path. */
static char *make_big_input(const char *dir)
{
    char hdr[8192];
    size_t o = 0, off = 0, tbytes = (size_t)BIG_ROWS * BIG_COLS * 4;
    o += (size_t)snprintf(hdr + o, sizeof hdr - o, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < BIG_TENSORS; i++) {
        o += (size_t)snprintf(hdr + o, sizeof hdr - o,
                              ",\"model.layers.%02d.weight\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[%zu,%zu]}",
                              i, BIG_ROWS, BIG_COLS, off, off + tbytes);
        off += tbytes;
    }
    o += (size_t)snprintf(hdr + o, sizeof hdr - o, "}");
    while ((8 + o) % 8) hdr[o++] = ' ';
    char *path = ts_path(dir, "big.safetensors");
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)o >> (8 * i));
    cr_assert_eq(fwrite(len, 1, 8, f), 8);
    cr_assert_eq(fwrite(hdr, 1, o, f), o);
    float *x = malloc(tbytes);
    uint32_t s = 12345;
    for (size_t k = 0; k < (size_t)BIG_ROWS * BIG_COLS; k++) {
        s = s * 1664525u + 1013904223u;
        x[k] = (float)(int)(s >> 16) / 32768.0f - 1.0f;
    }
    for (int i = 0; i < BIG_TENSORS; i++) {
        x[0] = (float)i;
        cr_assert_eq(fwrite(x, 1, tbytes, f), tbytes);
    }
    free(x);
    cr_assert_eq(fclose(f), 0);
    return path;
}

/* Waits until a temporary ".NAME.tmp-*" appears in dir (1 if so; 0 if the process ended first). */
static int wait_for_temporary(const char *dir, const char *name, pid_t pid)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, ".%s.tmp-", name);
    for (int spin = 0; spin < 600000; spin++) {
        DIR *d = opendir(dir);
        struct dirent *e;
        int found = 0;
        while (d && (e = readdir(d)) != NULL)
            if (!strncmp(e->d_name, prefix, strlen(prefix))) found = 1;
        if (d) closedir(d);
        if (found) return 1;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            cr_assert_fail("mixq ended (status 0x%x) before its temporary appeared", status);
        }
        usleep(200);
    }
    return 0;
}

/*
 * Starts `args`, waits for the temporary of `name` in outdir, waits delay_ms
 * more, sends sig and checks: exit 128 + sig, one line "interrupted", no
 * output or temporary (outdir holds only `keep` files, unchanged).
 */
static void interrupt_run(const char *tag, const char *const *args, const run_opts *ro, const char *outdir,
                          const char *name, const char *cmd, int sig, int delay_ms, int keep, uint64_t keep_hash)
{
    proc p = spawn_cli(args, ro);
    cr_assert(wait_for_temporary(outdir, name, p.pid), "%s: no temporary appeared", tag);
    if (delay_ms) usleep((useconds_t)delay_ms * 1000);
    cr_assert_eq(kill(p.pid, sig), 0);
    char *o = NULL, *e = NULL;
    int got_sig = 0;
    int rc = wait_cli(&p, 120, &o, &e, &got_sig);
    cr_assert_eq(rc, 128 + sig, "%s: exit %d (signal %d), expected %d; stderr: %s", tag, rc, got_sig, 128 + sig, e);
    expect_one_line(tag, e, cmd, "interrupted", NULL);
    cr_assert_str_eq(o, "", "%s: stdout: %s", tag, o);
    cr_assert_eq(ts_dir_count(outdir), keep, "%s: output or temporary left behind", tag);
    if (keep) cr_assert_eq(tree_hash(outdir), keep_hash, "%s: the existing output was changed", tag);
    free(o); free(e);
}

/* SIGINT, SIGTERM and SIGHUP as soon as the conversion has started writing. */
Test(signals, interrupt_conversion, .timeout = 300)
{
    char *dir = tmpdir(), *outdir = ts_path(dir, "out");
    cr_assert_eq(mkdir(outdir, 0755), 0);
    char *in = make_big_input(dir), *out = ts_path(outdir, "out.mxq");
    uint64_t in_hash = tree_hash(in);
    const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    const char *types[] = {"int4", "int8", "f16"};
    for (int i = 0; i < 3; i++) {
        char tag[64];
        snprintf(tag, sizeof tag, "signal %d during convert --type %s", sigs[i], types[i]);
        interrupt_run(tag, ARGS("convert", in, "-o", out, "--type", types[i]), NULL, outdir, "out.mxq", "convert",
                      sigs[i], 0, 0, 0);
    }
    cr_assert_eq(tree_hash(in), in_hash, "the input changed");
    ts_rmtree(dir);
    free(dir); free(outdir); free(in); free(out);
}

/* Interrupted while replacing an existing output with --force: the old file stays as it was. */
Test(signals, interrupt_keeps_existing_output, .timeout = 300)
{
    char *dir = tmpdir(), *outdir = ts_path(dir, "out");
    cr_assert_eq(mkdir(outdir, 0755), 0);
    char *in = make_big_input(dir), *out = ts_path(outdir, "out.mxq");
    ts_write_file(out, "the previous output", 19);
    uint64_t h = tree_hash(outdir), in_hash = tree_hash(in);
    interrupt_run("SIGINT with --force", ARGS("convert", in, "-o", out, "--type", "int8", "--force"), NULL, outdir,
                  "out.mxq", "convert", SIGINT, 0, 1, h);
    cr_assert_eq(tree_hash(in), in_hash, "the input changed");
    ts_rmtree(dir);
    free(dir); free(outdir); free(in); free(out);
}

/* Later in the conversion: writes slowed down by the shim so that the signal lands between tensors. */
Test(signals, interrupt_later, .timeout = 300)
{
    const char *shim = shim_path();
    char *dir = tmpdir(), *outdir = ts_path(dir, "out");
    cr_assert_eq(mkdir(outdir, 0755), 0);
    char *in = make_big_input(dir), *out = ts_path(outdir, "out.mxq");
    char *preload = env_kv("LD_PRELOAD", shim);
    run_opts ro = {.env = {preload, "MIXQ_FAULT_WRITE_DELAY_US=40000"}};
    uint64_t in_hash = tree_hash(in);
    const int delays[] = {50, 300, 600};
    for (int i = 0; i < 3; i++) {
        char tag[64];
        snprintf(tag, sizeof tag, "SIGTERM %d ms into the conversion", delays[i]);
        interrupt_run(tag, ARGS("convert", in, "-o", out, "--type", "int4"), &ro, outdir, "out.mxq", "convert",
                      SIGTERM, delays[i], 0, 0);
    }
    cr_assert_eq(tree_hash(in), in_hash, "the input changed");
    ts_rmtree(dir);
    free(dir); free(outdir); free(in); free(out); free(preload);
}

/*
 * After the last tensor, while the temporary is being fsynced: CLI.md
 * promises that on SIGINT "no output appears"; the rename has not happened
 * yet, so the conversion can still be abandoned.
 */
Test(signals, interrupt_during_fsync, .timeout = 120)
{
    const char *shim = shim_path();
    char *dir = tmpdir(), *in = ts_source_path("testdata/tiny-llama-bf16"), *out = ts_path(dir, "out.mxq");
    char *preload = env_kv("LD_PRELOAD", shim);
    run_opts ro = {.env = {preload, "MIXQ_FAULT_FSYNC_DELAY_US=1500000"}};
    proc p = spawn_cli(ARGS("convert", in, "-o", out), &ro);
    cr_assert(wait_for_temporary(dir, "out.mxq", p.pid));
    usleep(500000); /* the small conversion is done; mixq sleeps in fsync */
    kill(p.pid, SIGINT);
    char *o = NULL, *e = NULL;
    int rc = wait_cli(&p, 60, &o, &e, NULL);
    cr_assert_eq(rc, 130,
                 "[KNOWN BUG B3: a signal after the last tensor is ignored; the output is committed] exit %d, "
                 "expected 130; files in the output directory: %d; stderr: %s", rc, ts_dir_count(dir), e);
    cr_assert_eq(ts_dir_count(dir), 0, "output or temporary left behind");
    ts_rmtree(dir);
    free(dir); free(in); free(out); free(preload); free(o); free(e);
}

/* export of a ~100 MB container, interrupted. */
Test(signals, interrupt_export, .timeout = 300)
{
    if (!export_available()) cr_skip_test("this mixq has no export command");
    char *dir = tmpdir(), *outdir = ts_path(dir, "out");
    cr_assert_eq(mkdir(outdir, 0755), 0);
    char *in = make_big_input(dir), *c = ts_path(dir, "big.mxq"), *out = ts_path(outdir, "out.safetensors");
    char *e = NULL;
    cr_assert_eq(run_cli(ARGS("convert", in, "-o", c, "--type", "int8", "-q"), NULL, NULL, &e, NULL), 0, "%s", e);
    free(e);
    uint64_t h = tree_hash(c);
    interrupt_run("SIGINT during export", ARGS("export", c, "-o", out), NULL, outdir, "out.safetensors", "export",
                  SIGINT, 0, 0, 0);
    interrupt_run("SIGTERM during export", ARGS("export", c, "-o", out, "--dtype", "bf16"), NULL, outdir,
                  "out.safetensors", "export", SIGTERM, 0, 0, 0);
    cr_assert_eq(tree_hash(c), h, "the container changed");
    ts_rmtree(dir);
    free(dir); free(outdir); free(in); free(c); free(out);
}

/* ---------------------------------------------------------------------- */
/* Awkward outputs                                                         */
/* ---------------------------------------------------------------------- */

/* The output is the input: refused (exit 2) even with --force, whichever name reaches it. */
Test(output, same_as_input)
{
    char *dir = tmpdir(), *src = ts_source_path("testdata/tiny-llama-sharded");
    /* a private copy of the sharded checkpoint */
    const char *files[] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                           "model.safetensors.index.json"};
    for (int i = 0; i < 3; i++) {
        char *a = ts_path(src, files[i]), *b = ts_path(dir, files[i]);
        size_t len;
        uint8_t *d = ts_read_file(a, &len);
        ts_write_file(b, d, len);
        free(d); free(a); free(b);
    }
    char *shard = ts_path(dir, files[0]), *index = ts_path(dir, files[2]), *hard = ts_path(dir, "hard.mxq");
    char *sym = ts_path(dir, "sym.mxq"), *dotted = NULL;
    cr_assert_eq(link(shard, hard), 0);
    cr_assert_eq(symlink(files[1], sym), 0);
    cr_assert(asprintf(&dotted, "%s/./%s", dir, files[1]) > 0);
    uint64_t h = tree_hash(dir);
    struct { const char *in, *out; } cases[] = {
        {shard, shard}, {dir, shard}, {dir, index}, {index, index}, {dir, hard}, {dir, sym}, {dir, dotted},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int force = 0; force < 2; force++) {
            char *o = NULL, *e = NULL;
            int rc = force ? run_cli(ARGS("convert", cases[i].in, "-o", cases[i].out, "--force"), NULL, &o, &e, NULL)
                           : run_cli(ARGS("convert", cases[i].in, "-o", cases[i].out), NULL, &o, &e, NULL);
            char tag[600];
            snprintf(tag, sizeof tag, "convert %s -o %s%s", cases[i].in, cases[i].out, force ? " --force" : "");
            cr_assert_eq(rc, 2, "%s: exit %d, expected 2: %s", tag, rc, e);
            expect_one_line(tag, e, "convert", "is the input file", cases[i].out);
            cr_assert_eq(tree_hash(dir), h, "%s: the input changed", tag);
            free(o); free(e);
        }
    /* export: the output may not be the container */
    if (export_available()) {
        char *c = ts_path(dir, "c.mxq"), *e = NULL;
        cr_assert_eq(run_cli(ARGS("convert", dir, "-o", c, "-q"), NULL, NULL, &e, NULL), 0, "%s", e);
        free(e);
        uint64_t hc = tree_hash(dir);
        int rc = run_cli(ARGS("export", c, "-o", c, "--force"), NULL, NULL, &e, NULL);
        cr_assert_eq(rc, 2, "export onto its input: exit %d: %s", rc, e);
        expect_one_line("export onto its input", e, "export", "is the input container", NULL);
        cr_assert_eq(tree_hash(dir), hc, "export onto its input changed it");
        free(e); free(c);
    }
    ts_rmtree(dir);
    free(dir); free(src); free(shard); free(index); free(hard); free(sym); free(dotted);
}

/*
 * A directory the user cannot write to.  Root ignores permissions, so as
 * root the CLI runs as nobody (65534); if that is not possible the test is
 * skipped.
 */
Test(output, unwritable_directory)
{
    char *dir = tmpdir(), *ro_dir = ts_path(dir, "ro"), *out = ts_path(ro_dir, "out.mxq");
    cr_assert_eq(chmod(dir, 0755), 0);
    cr_assert_eq(mkdir(ro_dir, 0755), 0);
    cr_assert_eq(chmod(ro_dir, 0555), 0);
    char *in = ts_source_path("testdata/tiny-llama-f16"), *model = ts_path(in, "model.safetensors");
    run_opts ro = {0};
    if (geteuid() == 0) {
        /* nobody must be able to read the input and reach the directory */
        if (access(model, R_OK) != 0) cr_skip_test("cannot check the input's permissions");
        ro.drop_privileges = 1;
    }
    char *o = NULL, *e = NULL;
    int rc = run_cli(ARGS("convert", in, "-o", out), &ro, &o, &e, NULL);
    if (rc == 126) cr_skip_test("running as root and cannot switch to user nobody to test permissions");
    cr_assert_eq(rc, 3, "exit %d: %s", rc, e);
    expect_one_line("unwritable directory", e, "convert", out, "cannot create a temporary file in");
    cr_assert(strstr(e, "Permission denied"), "%s", e);
    cr_assert_eq(ts_dir_count(ro_dir), 0);
    cr_assert_str_eq(o, "");
    chmod(ro_dir, 0755);
    ts_rmtree(dir);
    free(dir); free(ro_dir); free(out); free(in); free(model); free(o); free(e);
}

Test(output, missing_directory)
{
    char *dir = tmpdir(), *out = ts_path(dir, "no/such/dir/out.mxq"), *in = ts_source_path("testdata/tiny-llama-f16");
    char *e = NULL;
    int rc = run_cli(ARGS("convert", in, "-o", out), NULL, NULL, &e, NULL);
    cr_assert_eq(rc, 3, "exit %d: %s", rc, e);
    expect_one_line("missing directory", e, "convert", out, "No such file or directory");
    cr_assert_eq(ts_dir_count(dir), 0);
    ts_rmtree(dir);
    free(dir); free(out); free(in); free(e);
}

Test(output, is_a_directory)
{
    char *dir = tmpdir(), *in = ts_source_path("testdata/tiny-llama-f16"), *e = NULL;
    for (int force = 0; force < 2; force++) {
        int rc = force ? run_cli(ARGS("convert", in, "-o", dir, "--force"), NULL, NULL, &e, NULL)
                       : run_cli(ARGS("convert", in, "-o", dir), NULL, NULL, &e, NULL);
        cr_assert_eq(rc, 2, "exit %d: %s", rc, e);
        expect_one_line("output is a directory", e, "convert", dir, "is a directory");
        cr_assert_eq(ts_dir_count(dir), 0);
        free(e);
    }
    ts_rmtree(dir);
    free(dir); free(in);
}

/* An existing output without --force: exit 3, untouched, no temporary; for convert and export. */
Test(output, existing_without_force)
{
    char *dir = tmpdir(), *out = ts_path(dir, "out.mxq"), *in = ts_source_path("testdata/tiny-llama-f16");
    ts_write_file(out, "precious", 8);
    uint64_t h = tree_hash(dir);
    char *o = NULL, *e = NULL;
    int rc = run_cli(ARGS("convert", in, "-o", out, "--type", "int4"), NULL, &o, &e, NULL);
    cr_assert_eq(rc, 3, "exit %d: %s", rc, e);
    expect_one_line("existing output", e, "convert", out, "already exists; pass --force to replace it");
    cr_assert_str_eq(o, "");
    cr_assert_eq(tree_hash(dir), h, "the existing output changed or a temporary was left");
    free(o); free(e);
    if (export_available()) {
        char *c = ts_path(dir, "c.mxq"), *st = ts_path(dir, "out.safetensors");
        cr_assert_eq(run_cli(ARGS("convert", in, "-o", c, "-q"), NULL, NULL, &e, NULL), 0, "%s", e);
        free(e);
        ts_write_file(st, "precious", 8);
        h = tree_hash(dir);
        rc = run_cli(ARGS("export", c, "-o", st), NULL, NULL, &e, NULL);
        cr_assert_eq(rc, 3, "export: exit %d: %s", rc, e);
        expect_one_line("existing export output", e, "export", st, "already exists");
        cr_assert_eq(tree_hash(dir), h);
        free(e); free(c); free(st);
    }
    ts_rmtree(dir);
    free(dir); free(out); free(in);
}

/* An output that appears while the conversion runs is not replaced (RENAME_NOREPLACE): exit 3. */
Test(output, appears_during_conversion, .timeout = 300)
{
    const char *shim = shim_path();
    char *dir = tmpdir(), *outdir = ts_path(dir, "out");
    cr_assert_eq(mkdir(outdir, 0755), 0);
    char *in = make_big_input(dir), *out = ts_path(outdir, "out.mxq"), *preload = env_kv("LD_PRELOAD", shim);
    run_opts ro = {.env = {preload, "MIXQ_FAULT_WRITE_DELAY_US=10000"}};
    proc p = spawn_cli(ARGS("convert", in, "-o", out, "--type", "int8"), &ro);
    cr_assert(wait_for_temporary(outdir, "out.mxq", p.pid));
    ts_write_file(out, "someone else's file", 19);
    uint64_t h = tree_hash(out);
    char *e = NULL;
    int rc = wait_cli(&p, 120, NULL, &e, NULL);
    cr_assert_eq(rc, 3, "exit %d: %s", rc, e);
    expect_one_line("output appeared", e, "convert", "already exists; pass --force to replace it", NULL);
    cr_assert(strstr(e, out), "[KNOWN BUG B2: afile_commit frees the path before formatting the message] the "
              "message does not name the output %s: %s", out, e);
    cr_assert_eq(ts_dir_count(outdir), 1, "a temporary was left");
    cr_assert_eq(tree_hash(out), h, "the other file was replaced");
    ts_rmtree(dir);
    free(dir); free(outdir); free(in); free(out); free(preload); free(e);
}

/* Output paths that cannot be a file: an error naming the path, nothing left behind. */
Test(output, paths_that_cannot_be_files)
{
    char *dir = tmpdir(), *in = ts_source_path("testdata/tiny-llama-f16");
    char *slash = ts_path(dir, "newdir/"), *e = NULL;
    const char *outs[] = {slash, ""};
    for (int i = 0; i < 2; i++) {
        int rc = run_cli(ARGS("convert", in, "-o", outs[i]), NULL, NULL, &e, NULL);
        char tag[300];
        snprintf(tag, sizeof tag, "-o '%s'", outs[i]);
        cr_assert(rc == 2 || rc == 3, "%s: exit %d: %s", tag, rc, e);
        expect_one_line(tag, e, "convert", NULL, NULL);
        cr_assert_null(strstr(e, "(null)"), "[KNOWN BUG B2: afile_commit frees the path before formatting the "
                       "message; B6: the output path is only checked after the whole conversion] %s: %s", tag, e);
        if (outs[i][0]) cr_assert(strstr(e, outs[i]), "%s: the message does not name the output: %s", tag, e);
        cr_assert_eq(ts_dir_count(dir), 0, "%s: something was left in the directory", tag);
        free(e);
    }
    ts_rmtree(dir);
    free(dir); free(in); free(slash);
}

/* ---------------------------------------------------------------------- */
/* Standard output that cannot be written                                  */
/* ---------------------------------------------------------------------- */

/*
 * `mixq dump --json FILE > out.json` on a full disk must not exit 0 with a
 * truncated file: a write error on standard output is an I/O error (exit 3).
 */
Test(output, stdout_write_error)
{
    if (access("/dev/full", W_OK) != 0) cr_skip_test("no /dev/full");
    char *dir = tmpdir(), *c = ts_path(dir, "c.mxq"), *in = ts_source_path("testdata/tiny-llama-f16"), *e = NULL;
    cr_assert_eq(run_cli(ARGS("convert", in, "-o", c, "-q"), NULL, NULL, &e, NULL), 0, "%s", e);
    free(e);
    const char *const *cmds[] = {ARGS("dump", c), ARGS("dump", c, "--json"), ARGS("verify", c),
                                 ARGS("compare", in, c)};
    const char *names[] = {"dump", "dump --json", "verify", "compare"};
    run_opts ro = {.stdout_path = "/dev/full"};
    for (int i = 0; i < 4; i++) {
        int rc = run_cli(cmds[i], &ro, NULL, &e, NULL);
        cr_assert_eq(rc, 3, "[KNOWN BUG B7: write errors on standard output are ignored] mixq %s > /dev/full: exit "
                     "%d, expected 3; stderr: %s", names[i], rc, e);
        cr_assert(strchr(e, '\n') == e + strlen(e) - 1, "%s: not one line: %s", names[i], e);
        free(e);
    }
    ts_rmtree(dir);
    free(dir); free(c); free(in);
}

/* ---------------------------------------------------------------------- */
/* Inputs that are not regular files                                       */
/* ---------------------------------------------------------------------- */

/* A FIFO (nobody writing to it): an immediate "not a regular file", not a hang. */
Test(input, fifo_is_refused_without_blocking, .timeout = 60)
{
    char *dir = tmpdir(), *fifo = ts_path(dir, "model.safetensors"), *out = ts_path(dir, "o.mxq");
    cr_assert_eq(mkfifo(fifo, 0644), 0);
    const char *const *cmds[] = {ARGS("convert", fifo, "-o", out), ARGS("verify", fifo), ARGS("dump", fifo)};
    const char *names[] = {"convert", "verify", "dump"};
    for (int i = 0; i < 3; i++) {
        proc p = spawn_cli(cmds[i], NULL);
        char *e = NULL;
        int rc = wait_cli(&p, 5, NULL, &e, NULL);
        cr_assert_neq(rc, -2, "[KNOWN BUG B4: open() of a FIFO blocks] mixq %s on a FIFO still blocked after 5 s",
                      names[i]);
        cr_assert_eq(rc, 3, "%s: exit %d: %s", names[i], rc, e);
        expect_one_line(names[i], e, names[i], fifo, "not a regular file");
        free(e);
    }
    cr_assert_eq(ts_dir_count(dir), 1);
    ts_rmtree(dir);
    free(dir); free(fifo); free(out);
}

/* ---------------------------------------------------------------------- */
/* Inputs that change while they are read (#16 items 1 and 2)              */
/* ---------------------------------------------------------------------- */

TestSuite(changing, .fini = remove_tmpdirs);

enum { CH_TENSORS = 8, CH_ROWS = 256, CH_COLS = 512 };

/* An F32 checkpoint of CH_TENSORS tensors of CH_ROWS x CH_COLS (4 MB) in dir; *data_start gets 8 + N. */
static char *make_change_input(const char *dir, uint64_t *data_start)
{
    char hdr[4096];
    size_t o = 0, off = 0, tbytes = (size_t)CH_ROWS * CH_COLS * 4;
    o += (size_t)snprintf(hdr + o, sizeof hdr - o, "{");
    for (int i = 0; i < CH_TENSORS; i++) {
        o += (size_t)snprintf(hdr + o, sizeof hdr - o,
                              "%s\"l.%d.weight\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[%zu,%zu]}",
                              i ? "," : "", i, CH_ROWS, CH_COLS, off, off + tbytes);
        off += tbytes;
    }
    o += (size_t)snprintf(hdr + o, sizeof hdr - o, "}");
    float *x = malloc(off);
    uint32_t s = 777;
    for (size_t k = 0; k < off / 4; k++) {
        s = s * 1664525u + 1013904223u;
        x[k] = (float)(int)(s >> 16) / 32768.0f - 1.0f;
    }
    size_t len;
    uint8_t *buf = ts_safetensors(hdr, x, off, &len);
    char *path = ts_path(dir, "in.safetensors");
    ts_write_file(path, buf, len);
    *data_start = 8 + o;
    free(buf);
    free(x);
    return path;
}

/* What a progress callback does to a file after the tensor number `at`. */
typedef struct change_action {
    const char *path;
    size_t at;
    int rewrite;         /* 0: truncate to `size`; 1: overwrite 4096 bytes at `offset`, same size */
    uint64_t size, offset;
    int done;
} change_action;

static void change_file(void *ctx, size_t done, size_t total, const char *name)
{
    (void)total;
    (void)name;
    change_action *a = ctx;
    if (done != a->at || a->done) return;
    a->done = 1;
    if (!a->rewrite) {
        cr_assert_eq(truncate(a->path, (off_t)a->size), 0, "truncate %s: %s", a->path, strerror(errno));
        return;
    }
    int fd = open(a->path, O_WRONLY);
    cr_assert(fd >= 0);
    uint8_t junk[4096];
    memset(junk, 0x5a, sizeof junk);
    cr_assert_eq(pwrite(fd, junk, sizeof junk, (off_t)a->offset), (ssize_t)sizeof junk);
    close(fd);
    struct timespec ts = {0, 2000000}; /* distinct timestamps even on coarse clocks */
    nanosleep(&ts, NULL);
}

/* In-process convert of a generated input; the progress callback changes it after tensor 2. */
static void convert_while_changing(const char *type, int rewrite)
{
    char *dir = tmpdir(), *outdir = ts_path(dir, "out");
    cr_assert_eq(mkdir(outdir, 0755), 0);
    uint64_t data_start;
    char *in = make_change_input(dir, &data_start), *out = ts_path(outdir, "out.mxq");
    uint64_t tbytes = (uint64_t)CH_ROWS * CH_COLS * 4;
    /* truncate inside tensor 5 (not read yet), or rewrite 4 KB of tensor 0 (already read and written) */
    change_action a = {.path = in, .at = 2, .rewrite = rewrite, .size = data_start + 5 * tbytes + 100,
                       .offset = data_start + 4096};
    mixq_convert_options o;
    mixq_convert_options_init(&o);
    cr_assert_eq(mixq_qtype_from_name(type, &o.type), MIXQ_OK);
    o.progress = change_file;
    o.progress_ctx = &a;
    mixq_error err;
    mixq_status s = mixq_convert(in, out, &o, &err);
    cr_assert(a.done, "the callback never ran");
    cr_assert_eq(s, MIXQ_E_IO, "convert --type %s, input %s: status %d: %s", type, rewrite ? "rewritten" : "truncated",
                 (int)s, err.message);
    cr_assert(strstr(err.message, "changed while it was read") && strstr(err.message, "in.safetensors"), "%s",
              err.message);
    cr_assert(!strchr(err.message, '\n'));
    cr_assert_eq(ts_dir_count(outdir), 0, "output or temporary left behind");
    ts_rmtree(dir);
    free(dir); free(outdir); free(in); free(out);
}

Test(changing, input_truncated_while_converting_int8) { convert_while_changing("int8", 0); }
Test(changing, input_truncated_while_converting_f32) { convert_while_changing("f32", 0); }
Test(changing, input_rewritten_while_converting_int4) { convert_while_changing("int4", 1); }
Test(changing, input_rewritten_while_converting_f32) { convert_while_changing("f32", 1); }

/* A container of the generated input (f32: every tensor's bytes are plain) in dir. */
static char *make_change_container(const char *dir, const char *in, const char *type)
{
    char *c = ts_path(dir, "c.mxq");
    mixq_convert_options o;
    mixq_convert_options_init(&o);
    cr_assert_eq(mixq_qtype_from_name(type, &o.type), MIXQ_OK);
    mixq_error err;
    cr_assert_eq(mixq_convert(in, c, &o, &err), MIXQ_OK, "%s", err.message);
    return c;
}

/* verify: a container that shrinks after it was opened gives an error (the SIGBUS guard), not a crash. */
Test(changing, container_truncated_under_verify)
{
    char *dir = tmpdir();
    uint64_t ds;
    char *in = make_change_input(dir, &ds), *c = make_change_container(dir, in, "f32");
    mixq_error err;
    mixq_file *f = mixq_open(c, 0, &err);
    cr_assert_not_null(f, "%s", err.message);
    struct stat st;
    cr_assert_eq(stat(c, &st), 0);
    cr_assert_eq(truncate(c, st.st_size / 3), 0);
    mixq_status s = mixq_verify(f, &err);
    cr_assert_eq(s, MIXQ_E_IO, "status %d: %s", (int)s, err.message);
    cr_assert(strstr(err.message, "changed while it was read") && strstr(err.message, "c.mxq"), "%s", err.message);
    mixq_close(f);
    ts_rmtree(dir);
    free(dir); free(in); free(c);
}

/* export: the container shrinks after the first tensor: an error naming it, nothing written. */
Test(changing, container_truncated_under_export)
{
    const char *types[] = {"f32", "int8"};
    for (int k = 0; k < 2; k++) {
        char *dir = tmpdir(), *outdir = ts_path(dir, "out");
        cr_assert_eq(mkdir(outdir, 0755), 0);
        uint64_t ds;
        char *in = make_change_input(dir, &ds), *c = make_change_container(dir, in, types[k]);
        char *out = ts_path(outdir, "x.safetensors");
        struct stat st;
        cr_assert_eq(stat(c, &st), 0);
        change_action a = {.path = c, .at = 1, .size = (uint64_t)st.st_size / 3};
        mixq_export_options o;
        mixq_export_options_init(&o);
        o.progress = change_file;
        o.progress_ctx = &a;
        mixq_error err;
        mixq_status s = mixq_export(c, out, &o, &err);
        cr_assert(a.done);
        cr_assert_eq(s, MIXQ_E_IO, "%s: status %d: %s", types[k], (int)s, err.message);
        cr_assert(strstr(err.message, "changed while it was read") && strstr(err.message, "c.mxq"), "%s",
                  err.message);
        cr_assert_eq(ts_dir_count(outdir), 0, "output or temporary left behind");
        ts_rmtree(dir);
        free(dir); free(outdir); free(in); free(c); free(out);
    }
}

/* export: the container rewritten in place (same size) while exported: refused. */
Test(changing, container_rewritten_under_export)
{
    char *dir = tmpdir(), *outdir = ts_path(dir, "out");
    cr_assert_eq(mkdir(outdir, 0755), 0);
    uint64_t ds;
    char *in = make_change_input(dir, &ds), *c = make_change_container(dir, in, "int8");
    char *out = ts_path(outdir, "x.safetensors");
    change_action a = {.path = c, .at = 1, .rewrite = 1, .offset = 64};
    mixq_export_options o;
    mixq_export_options_init(&o);
    o.progress = change_file;
    o.progress_ctx = &a;
    mixq_error err;
    mixq_status s = mixq_export(c, out, &o, &err);
    cr_assert_eq(s, MIXQ_E_IO, "status %d: %s", (int)s, err.message);
    cr_assert(strstr(err.message, "changed while it was read"), "%s", err.message);
    cr_assert_eq(ts_dir_count(outdir), 0, "output or temporary left behind");
    ts_rmtree(dir);
    free(dir); free(outdir); free(in); free(c); free(out);
}

/* compare: the container, then the source, shrinks during the comparison: an error naming the file. */
Test(changing, files_truncated_under_compare)
{
    for (int which = 0; which < 2; which++) {
        char *dir = tmpdir();
        uint64_t ds;
        char *in = make_change_input(dir, &ds), *c = make_change_container(dir, in, "int8");
        const char *victim = which ? in : c;
        struct stat st;
        cr_assert_eq(stat(victim, &st), 0);
        change_action a = {.path = victim, .at = 1, .size = (uint64_t)st.st_size / 3};
        mixq_compare_options o;
        mixq_compare_options_init(&o);
        o.progress = change_file;
        o.progress_ctx = &a;
        mixq_error err;
        mixq_compare_result *r = NULL;
        mixq_status s = mixq_compare(in, c, &o, &r, &err);
        cr_assert(a.done);
        cr_assert_eq(s, MIXQ_E_IO, "status %d: %s", (int)s, err.message);
        cr_assert(strstr(err.message, "changed while it was read") &&
                  strstr(err.message, which ? "in.safetensors" : "c.mxq"), "%s", err.message);
        cr_assert_null(r);
        ts_rmtree(dir);
        free(dir); free(in); free(c);
    }
}

/*
 * The race from a second process: `mixq convert` runs (writes slowed by the
 * shim), the test truncates or rewrites its input as soon as the temporary
 * appears.  Exit 3, one line "changed while it was read", nothing left.
 */
static void cli_race(const char *type, int rewrite)
{
    const char *shim = shim_path();
    char *dir = tmpdir(), *outdir = ts_path(dir, "out");
    cr_assert_eq(mkdir(outdir, 0755), 0);
    uint64_t ds;
    char *in = make_change_input(dir, &ds), *out = ts_path(outdir, "out.mxq");
    char *preload = env_kv("LD_PRELOAD", shim);
    run_opts ro = {.env = {preload, "MIXQ_FAULT_WRITE_DELAY_US=30000"}};
    proc p = spawn_cli(ARGS("convert", in, "-o", out, "--type", type, "-j", "1"), &ro);
    cr_assert(wait_for_temporary(outdir, "out.mxq", p.pid));
    if (rewrite) {
        int fd = open(in, O_WRONLY);
        cr_assert(fd >= 0);
        uint8_t junk[4096];
        memset(junk, 0x33, sizeof junk);
        cr_assert_eq(pwrite(fd, junk, sizeof junk, (off_t)ds), (ssize_t)sizeof junk); /* tensor 0, read already */
        close(fd);
    } else {
        cr_assert_eq(truncate(in, (off_t)(ds + 100)), 0);
    }
    char *o = NULL, *e = NULL;
    int rc = wait_cli(&p, 60, &o, &e, NULL);
    char tag[64];
    snprintf(tag, sizeof tag, "convert --type %s, input %s", type, rewrite ? "rewritten" : "truncated");
    cr_assert_eq(rc, 3, "%s: exit %d: %s", tag, rc, e);
    expect_one_line(tag, e, "convert", "changed while it was read", "in.safetensors");
    cr_assert_str_eq(o, "");
    cr_assert_eq(ts_dir_count(outdir), 0, "%s: output or temporary left behind", tag);
    ts_rmtree(dir);
    free(dir); free(outdir); free(in); free(out); free(preload); free(o); free(e);
}

Test(changing, cli_input_truncated_by_another_process, .timeout = 60) { cli_race("int8", 0); }
Test(changing, cli_input_rewritten_by_another_process, .timeout = 60) { cli_race("f32", 1); }

/* ---------------------------------------------------------------------- */
/* Outputs that are inputs, outputs that are not files (#16 items 4, 5)    */
/* ---------------------------------------------------------------------- */

/* A private copy of testdata/tiny-llama-sharded in dir. */
static void copy_sharded(const char *dir)
{
    char *src = ts_source_path("testdata/tiny-llama-sharded");
    const char *files[] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                           "model.safetensors.index.json"};
    for (int i = 0; i < 3; i++) {
        char *a = ts_path(src, files[i]), *b = ts_path(dir, files[i]);
        size_t len;
        uint8_t *d = ts_read_file(a, &len);
        ts_write_file(b, d, len);
        free(d); free(a); free(b);
    }
    free(src);
}

/* plan -o, convert -o and export -o never write over any of their inputs, whatever the spelling. */
Test(output, no_command_writes_over_its_inputs)
{
    char *dir = tmpdir();
    copy_sharded(dir);
    char *shard = ts_path(dir, "model-00001-of-00002.safetensors"), *index = ts_path(dir, "model.safetensors.index.json");
    char *hard = ts_path(dir, "hard.json"), *sym = ts_path(dir, "sym.json"), *sens = ts_path(dir, "sens.json");
    char *plan = ts_path(dir, "plan.json"), *dotted = NULL, *e = NULL;
    const char *stext = "{\"lm_head.weight\":{\"gradient_norm\":1,\"weight_variance\":1,\"activation_range\":1,"
                        "\"output_sensitivity\":1}}";
    ts_write_file(sens, stext, strlen(stext));
    cr_assert_eq(run_cli(ARGS("plan", dir, "-o", plan, "-q"), NULL, NULL, &e, NULL), 0, "%s", e);
    free(e);
    cr_assert_eq(link(shard, hard), 0);
    cr_assert_eq(symlink("model-00002-of-00002.safetensors", sym), 0);
    cr_assert(asprintf(&dotted, "%s/./model.safetensors.index.json", dir) > 0);
    uint64_t h = tree_hash(dir);
    const char *outs[] = {shard, index, hard, sym, dotted, sens};
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
        char tag[700];
        snprintf(tag, sizeof tag, "plan %s -o %s --force", dir, outs[i]);
        int rc = run_cli(ARGS("plan", dir, "--strategy", "sensitivity", "--sensitivity", sens, "-o", outs[i],
                              "--force", "-q"), NULL, NULL, &e, NULL);
        cr_assert_eq(rc, 2, "%s: exit %d: %s", tag, rc, e);
        expect_one_line(tag, e, "plan", "is the input file", NULL);
        cr_assert_eq(tree_hash(dir), h, "%s: the input changed", tag);
        free(e);
    }
    /* convert: its plan file and its sensitivity file are inputs too */
    int rc = run_cli(ARGS("convert", dir, "--plan", plan, "-o", plan, "--force"), NULL, NULL, &e, NULL);
    cr_assert_eq(rc, 2, "convert --plan P -o P: exit %d: %s", rc, e);
    expect_one_line("convert --plan P -o P", e, "convert", "is the input file", NULL);
    free(e);
    rc = run_cli(ARGS("convert", dir, "--strategy", "sensitivity", "--sensitivity", sens, "-o", sens, "--force"), NULL,
                 NULL, &e, NULL);
    cr_assert_eq(rc, 2, "convert --sensitivity S -o S: exit %d: %s", rc, e);
    expect_one_line("convert --sensitivity S -o S", e, "convert", "is the input file", NULL);
    free(e);
    cr_assert_eq(tree_hash(dir), h, "the inputs changed");
    ts_rmtree(dir);
    free(dir); free(shard); free(index); free(hard); free(sym); free(sens); free(plan); free(dotted);
}

/* An existing output that is a FIFO, or a symlink to a character device, is refused even with --force. */
Test(output, non_regular_output_is_never_replaced, .timeout = 60)
{
    char *dir = tmpdir(), *in = ts_source_path("testdata/tiny-llama-f32");
    char *fifo = ts_path(dir, "fifo.mxq"), *dev = ts_path(dir, "null.mxq"), *c = ts_path(dir, "c.mxq"), *e = NULL;
    cr_assert_eq(mkfifo(fifo, 0644), 0);
    cr_assert_eq(symlink("/dev/null", dev), 0);
    cr_assert_eq(run_cli(ARGS("convert", in, "-o", c, "-q"), NULL, NULL, &e, NULL), 0, "%s", e);
    free(e);
    const char *outs[] = {fifo, dev};
    for (int i = 0; i < 2; i++) {
        const char *const *cmds[] = {
            ARGS("convert", in, "-o", outs[i], "--force"),
            ARGS("plan", in, "-o", outs[i], "--force", "-q"),
            ARGS("export", c, "-o", outs[i], "--force"),
        };
        const char *names[] = {"convert", "plan", "export"};
        for (int k = 0; k < 3; k++) {
            if (k == 2 && !export_available()) continue;
            char tag[600];
            snprintf(tag, sizeof tag, "%s -o %s --force", names[k], outs[i]);
            int rc = run_cli(cmds[k], NULL, NULL, &e, NULL);
            cr_assert_eq(rc, 2, "%s: exit %d: %s", tag, rc, e);
            expect_one_line(tag, e, names[k], "not a regular file", NULL);
            free(e);
        }
    }
    struct stat st;
    cr_assert_eq(lstat(fifo, &st), 0);
    cr_assert(S_ISFIFO(st.st_mode), "the FIFO was replaced");
    cr_assert_eq(lstat(dev, &st), 0);
    cr_assert(S_ISLNK(st.st_mode), "the symlink was replaced");
    cr_assert_eq(ts_dir_count(dir), 3, "a temporary was left behind");
    ts_rmtree(dir);
    free(dir); free(in); free(fifo); free(dev); free(c);
}

/*
 * Every file input (plans, sensitivity files, indexes) is a regular file of
 * bounded size: a FIFO is refused at once, /dev/zero is refused without
 * reading it, a file over the cap is refused before it is read (#16 item 7).
 */
Test(input, small_file_inputs_are_regular_and_capped, .timeout = 60)
{
    char *dir = tmpdir(), *in = ts_source_path("testdata/tiny-llama-f32"), *out = ts_path(dir, "o.mxq");
    char *fifo = ts_path(dir, "fifo.json"), *big = ts_path(dir, "big.json"), *idx = ts_path(dir, "idx");
    cr_assert_eq(mkfifo(fifo, 0644), 0);
    int fd = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0644); /* sparse: 300 MiB, over every cap */
    cr_assert(fd >= 0);
    cr_assert_eq(ftruncate(fd, (off_t)300 << 20), 0);
    close(fd);
    cr_assert_eq(mkdir(idx, 0755), 0);
    char *idxfifo = ts_path(idx, "model.safetensors.index.json");
    cr_assert_eq(mkfifo(idxfifo, 0644), 0);
    struct {
        const char *const *args;
        const char *cmd, *want1, *want2;
        int code;
    } cases[] = {
        {ARGS("convert", in, "-o", out, "--plan", fifo), "convert", "fifo.json", "not a regular file", 3},
        {ARGS("convert", in, "-o", out, "--plan", "/dev/zero"), "convert", "/dev/zero", "not a regular file", 3},
        {ARGS("convert", in, "-o", out, "--plan", big), "convert", "big.json", "exceeds the limit of", 1},
        {ARGS("plan", in, "--strategy", "sensitivity", "--sensitivity", fifo), "plan", "fifo.json", "not a regular file", 3},
        {ARGS("plan", in, "--strategy", "sensitivity", "--sensitivity", "/dev/zero"), "plan", "/dev/zero",
         "not a regular file", 3},
        {ARGS("plan", in, "--strategy", "sensitivity", "--sensitivity", big), "plan", "big.json", "exceeds the limit of", 1},
        {ARGS("convert", in, "-o", out, "--strategy", "sensitivity", "--sensitivity", fifo), "convert", "fifo.json",
         "not a regular file", 3},
        {ARGS("convert", idx, "-o", out), "convert", "model.safetensors.index.json", "not a regular file", 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        proc p = spawn_cli(cases[i].args, NULL);
        char *e = NULL;
        int rc = wait_cli(&p, 10, NULL, &e, NULL);
        cr_assert_neq(rc, -2, "case %zu (%s %s): still running after 10 s", i, cases[i].cmd, cases[i].want1);
        cr_assert_eq(rc, cases[i].code, "case %zu: exit %d: %s", i, rc, e);
        expect_one_line(cases[i].cmd, e, cases[i].cmd, cases[i].want1, cases[i].want2);
        free(e);
    }
    cr_assert(!ts_exists(out), "an output was written");
    ts_rmtree(dir);
    free(dir); free(in); free(out); free(fifo); free(big); free(idx); free(idxfifo);
}

/* ---------------------------------------------------------------------- */
/* Names from a hostile checkpoint never reach the terminal raw (#16 item 8) */
/* ---------------------------------------------------------------------- */

TestSuite(terminal, .fini = remove_tmpdirs);

#include <sys/ioctl.h>

/*
 * Runs the CLI with stdout on a pipe and stderr on a pseudo-terminal (so the
 * progress line is drawn); returns the exit status and both outputs.
 */
static int run_on_pty(const char *const *args, char **out, char **err)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    cr_assert(m >= 0 && grantpt(m) == 0 && unlockpt(m) == 0);
    char *sname = ptsname(m);
    cr_assert(sname);
    int op[2];
    cr_assert_eq(pipe(op), 0);
    const char *exe = getenv("MIXQ_EXE");
    cr_assert(exe);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int s = open(sname, O_RDWR);
        if (s < 0) _exit(126);
        dup2(op[1], 1);
        dup2(s, 2);
        close(op[0]);
        close(m);
        const char *argv[16] = {exe};
        size_t n = 1;
        for (; args[n - 1] && n < 15; n++) argv[n] = args[n - 1];
        argv[n] = NULL;
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    close(op[1]);
    /* read both until the child ends (the pty gives EIO once the slave is closed) */
    size_t ol = 0, el = 0, oc = 1 << 16, ec = 1 << 16;
    *out = malloc(oc);
    *err = malloc(ec);
    int ofd = op[0], status = 0, done = 0;
    fcntl(ofd, F_SETFL, O_NONBLOCK);
    fcntl(m, F_SETFL, O_NONBLOCK);
    for (int spin = 0; spin < 20000; spin++) {
        ssize_t r;
        while (ofd >= 0 && (r = read(ofd, *out + ol, oc - ol - 1)) > 0) ol += (size_t)r;
        while ((r = read(m, *err + el, ec - el - 1)) > 0) el += (size_t)r;
        if (done) break;
        if (waitpid(pid, &status, WNOHANG) == pid) done = 1; /* one more round of reads */
        else usleep(1000);
    }
    (*out)[ol] = '\0';
    (*err)[el] = '\0';
    close(ofd);
    close(m);
    cr_assert(done, "the CLI did not finish");
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Fails if text holds ESC, BEL, a C1 control (UTF-8 C2 80..9F) or a raw 0x9b, other than the allowed sequence. */
static void expect_no_controls(const char *tag, const char *text, const char *allowed)
{
    size_t al = allowed ? strlen(allowed) : 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (al && !strncmp((const char *)p, allowed, al)) {
            p += al - 1;
            continue;
        }
        int bad = *p == 0x1b || *p == 0x07 || *p == 0x9b || (*p == 0xc2 && p[1] >= 0x80 && p[1] < 0xa0) ||
                  (*p < 0x20 && *p != '\n' && *p != '\r');
        cr_assert(!bad, "%s: a control byte 0x%02x reached the terminal at offset %zu: %s", tag, *p,
                  (size_t)((const char *)p - text), text);
    }
    cr_assert(!strstr(text, "\nverify: OK") && strncmp(text, "verify: OK", 10), "%s: a faked line: %s", tag, text);
}

Test(terminal, hostile_names_are_escaped_everywhere, .timeout = 120)
{
    char *dir = tmpdir();
    /* names that retitle the window, clear the screen (ESC and 8-bit CSI), ring the bell, fake a line */
    const char *hdr =
        "{\"\\u001b]0;pwned\\u0007.weight\":{\"dtype\":\"F32\",\"shape\":[2,4],\"data_offsets\":[0,32]},"
        "\"\\u001b[2J\\u001b[H.weight\":{\"dtype\":\"F32\",\"shape\":[2,4],\"data_offsets\":[32,64]},"
        "\"\\u009b2J.weight\":{\"dtype\":\"F32\",\"shape\":[2,4],\"data_offsets\":[64,96]},"
        "\"x\\nverify: OK\\r.weight\":{\"dtype\":\"F32\",\"shape\":[2,4],\"data_offsets\":[96,128]}}";
    float data[32];
    for (int i = 0; i < 32; i++) data[i] = (float)i / 7.0f - 2.0f;
    size_t len;
    uint8_t *b = ts_safetensors(hdr, data, sizeof data, &len);
    char *in = ts_path(dir, "in.safetensors"), *c = ts_path(dir, "c.mxq"), *plan = ts_path(dir, "p.json");
    ts_write_file(in, b, len);
    free(b);
    char *o = NULL, *e = NULL;
    int rc = run_on_pty(ARGS("convert", in, "-o", c, "-j", "1"), &o, &e); /* stderr a terminal: progress drawn */
    cr_assert_eq(rc, 0, "convert: %s", e);
    expect_no_controls("convert progress", e, "\r\033[K");
    expect_no_controls("convert summary", o, NULL);
    free(o); free(e);
    const char *const *cmds[] = {
        ARGS("dump", c), ARGS("dump", c, "--tensor", "\x1b[2J\x1b[H.weight"), ARGS("compare", in, c),
        ARGS("plan", in), ARGS("plan", in, "--explain"), ARGS("verify", c),
        ARGS("plan", in, "--strategy", "budget", "--target-bpw", "32"), ARGS("export", c, "-o", plan),
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        rc = run_on_pty(cmds[i], &o, &e);
        char tag[64];
        snprintf(tag, sizeof tag, "%s (#%zu)", cmds[i][0], i);
        cr_assert_eq(rc, 0, "%s: exit %d: %s", tag, rc, e);
        expect_no_controls(tag, o, NULL);
        expect_no_controls(tag, e, "\r\033[K");
        free(o); free(e);
    }
    ts_rmtree(dir);
    free(dir); free(in); free(c); free(plan);
}

/* ---------------------------------------------------------------------- */
/* Out of memory is reported as such (#16 item 10)                         */
/* ---------------------------------------------------------------------- */

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/*
 * A valid checkpoint whose header is ~3.5 MB (50 000 zero-element tensors),
 * read under a sweep of address-space limits (ulimit -v): every run ends in
 * exit 3 -- "out of memory", or "already exists" once the header fits (the
 * output is there on purpose, so nothing is converted) -- never in exit 1
 * "not valid JSON" or a crash, and the smaller limits do run out.
 */
Test(input, out_of_memory_is_not_bad_input, .timeout = 120)
{
#ifdef UNDER_ASAN
    cr_skip_test("RLIMIT_AS cannot be used under AddressSanitizer");
#endif
    char *dir = tmpdir();
    size_t cap = 16u << 20, o = 0;
    char *hdr = malloc(cap);
    o += (size_t)snprintf(hdr + o, cap - o, "{");
    for (int i = 0; i < 50000; i++)
        o += (size_t)snprintf(hdr + o, cap - o, "%s\"model.layers.%d.t\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}",
                              i ? "," : "", i);
    o += (size_t)snprintf(hdr + o, cap - o, "}");
    size_t len;
    uint8_t *b = ts_safetensors(hdr, NULL, 0, &len);
    char *in = ts_path(dir, "in.safetensors"), *out = ts_path(dir, "out.mxq");
    ts_write_file(in, b, len);
    ts_write_file(out, "x", 1);
    free(b);
    free(hdr);
    const long long limits[] = {40LL << 20, 56LL << 20, 80LL << 20, 160LL << 20};
    int oom = 0;
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        run_opts ro = {.as_limit = limits[i]};
        char *e = NULL;
        int rc = run_cli(ARGS("convert", in, "-o", out, "-j", "1"), &ro, NULL, &e, NULL);
        char tag[64];
        snprintf(tag, sizeof tag, "ulimit -v %lld KiB", limits[i] >> 10);
        if (rc == 127 || rc == 125 || (rc != 3 && e && strstr(e, "error while loading"))) {
            free(e);
            continue; /* too small to even start the program */
        }
        cr_assert_eq(rc, 3, "%s: exit %d, expected 3: %s", tag, rc, e);
        if (strstr(e, "out of memory")) {
            oom++;
            expect_one_line(tag, e, "convert", "out of memory", NULL);
        } else {
            expect_one_line(tag, e, "convert", "already exists", NULL);
        }
        free(e);
    }
    cr_assert(oom > 0, "no limit made mixq run out of memory");

    /* dump and dump --json of a container of those 50 000 tensors: complete output or "out of memory", exit 3 */
    char *c = ts_path(dir, "c.mxq"), *e = NULL;
    cr_assert_eq(run_cli(ARGS("convert", in, "-o", c, "-q", "-j", "1"), NULL, NULL, &e, NULL), 0, "%s", e);
    free(e);
    const long long dlimits[] = {48LL << 20, 64LL << 20, 96LL << 20, 256LL << 20};
    int dump_oom = 0, dump_ok = 0;
    for (size_t i = 0; i < sizeof dlimits / sizeof dlimits[0]; i++)
        for (int json = 0; json < 2; json++) {
            run_opts ro = {.as_limit = dlimits[i]};
            char *o = NULL;
            int rc = json ? run_cli(ARGS("dump", c, "--json"), &ro, &o, &e, NULL)
                          : run_cli(ARGS("dump", c), &ro, &o, &e, NULL);
            char tag[64];
            snprintf(tag, sizeof tag, "dump%s, ulimit -v %lld KiB", json ? " --json" : "", dlimits[i] >> 10);
            if (rc == 0) {
                dump_ok++;
                size_t lines = 0;
                for (const char *q = o; (q = strstr(q, "model.layers.")) != NULL; q++) lines++;
                cr_assert_eq(lines, 50000, "%s: exit 0 but %zu of 50000 tensors listed", tag, lines);
                cr_assert(strstr(o, json ? "\"totals\"" : "\ntotal: "), "%s: no totals", tag);
            } else if (rc != 125 && rc != 127) {
                cr_assert_eq(rc, 3, "%s: exit %d: %s", tag, rc, e);
                expect_one_line(tag, e, "dump", "out of memory", NULL);
                dump_oom++;
            }
            free(o); free(e);
        }
    cr_assert(dump_ok > 0 && dump_oom > 0, "dump: %d complete, %d out of memory: the sweep missed a side", dump_ok,
              dump_oom);
    free(c);
    ts_rmtree(dir);
    free(dir); free(in); free(out);
}

/* File names that are not UTF-8 work everywhere; JSON gets U+FFFD for the bad bytes (#16 item 9). */
Test(input, non_utf8_file_names, .timeout = 60)
{
    char *dir = tmpdir(), *src = ts_source_path("testdata/tiny-llama-f32/model.safetensors");
    char *in = ts_path(dir, "m\xff\xfe.safetensors"), *c = ts_path(dir, "c\xe9.mxq"), *x = ts_path(dir, "x\x80.st");
    size_t len;
    uint8_t *b = ts_read_file(src, &len);
    ts_write_file(in, b, len);
    free(b);
    char *o = NULL, *e = NULL;
    int rc = run_cli(ARGS("convert", in, "-o", c), NULL, &o, &e, NULL);
    cr_assert_eq(rc, 0, "convert: exit %d: %s", rc, e);
    free(o); free(e);
    const char *const *cmds[] = {ARGS("verify", c), ARGS("dump", c), ARGS("dump", c, "--json"),
                                 ARGS("compare", in, c), ARGS("compare", in, c, "--json"), ARGS("export", c, "-o", x),
                                 ARGS("plan", in, "-o", "-")};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        rc = run_cli(cmds[i], NULL, &o, &e, NULL);
        cr_assert_eq(rc, 0, "%s (#%zu): exit %d: %s", cmds[i][0], i, rc, e);
        cr_assert(!strstr(e, "out of memory"), "%s", e);
        if (i == 2 || i == 4) cr_assert(strstr(o, "\xef\xbf\xbd"), "%s --json: no U+FFFD for the bad bytes: %s",
                                        cmds[i][0], o);
        free(o); free(e);
    }
    /* the container header records the source file name with U+FFFD */
    uint8_t *cb = ts_read_file(c, &len);
    cr_assert(cb && memmem(cb, len, "m\xef\xbf\xbd\xef\xbf\xbd.safetensors", 18), "source_files name not recorded");
    free(cb);
    ts_rmtree(dir);
    free(dir); free(src); free(in); free(c); free(x);
}

/* A plan's strategy, weights and candidates must be values mixq knows (#16 item 12). */
Test(input, plan_strings_are_validated, .timeout = 60)
{
    char *dir = tmpdir(), *in = ts_source_path("testdata/tiny-llama-f32"), *plan = ts_path(dir, "p.json");
    char *bad = ts_path(dir, "bad.json"), *out = ts_path(dir, "o.mxq"), *e = NULL;
    cr_assert_eq(run_cli(ARGS("plan", in, "--strategy", "budget", "--target-bpw", "6", "--weights", "role", "-o", plan,
                              "-q"), NULL, NULL, &e, NULL), 0, "%s", e);
    free(e);
    size_t len;
    char *text = (char *)ts_read_file(plan, &len);
    text = realloc(text, len + 1);
    text[len] = '\0';
    struct { const char *from, *to, *want; } cases[] = {
        {"\"strategy\": \"budget\"", "\"strategy\":\"\\u001b[2Jbudget\"", "\"strategy\" is"},
        {"\"strategy\": \"budget\"", "\"strategy\":\"greedy\"", "\"strategy\" is \"greedy\"; expected"},
        {"\"weights\": \"role\"", "\"weights\":\"role\\nplan: strategy uniform\"", "\"weights\" is"},
        {"\"candidates\": \"", "\"candidates\":\"int5,", "\"candidates\" is"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *at = strstr(text, cases[i].from);
        cr_assert(at, "case %zu: %s not in the plan: %s", i, cases[i].from, text);
        char *edited = NULL;
        cr_assert(asprintf(&edited, "%.*s%s%s", (int)(at - text), text, cases[i].to, at + strlen(cases[i].from)) > 0);
        ts_write_file(bad, edited, strlen(edited));
        free(edited);
        int rc = run_cli(ARGS("convert", in, "--plan", bad, "-o", out), NULL, NULL, &e, NULL);
        cr_assert_eq(rc, 1, "case %zu: exit %d: %s", i, rc, e);
        expect_one_line("bad plan", e, "convert", cases[i].want, "bad.json");
        cr_assert(!strchr(e, '\x1b'), "%s", e);
        free(e);
    }
    cr_assert(!ts_exists(out));
    free(text);
    ts_rmtree(dir);
    free(dir); free(in); free(plan); free(bad); free(out);
}

/* Output names up to NAME_MAX work (the temporary's name is shortened to fit); longer ones are refused. */
Test(output, long_file_names)
{
    char *dir = tmpdir(), *in = ts_source_path("testdata/tiny-llama-f32");
    const size_t lens[] = {240, 250, 255, 256};
    for (size_t i = 0; i < 4; i++) {
        char name[300];
        memset(name, 'n', lens[i]);
        memcpy(name + lens[i] - 4, ".mxq", 5);
        char *out = ts_path(dir, name), *e = NULL;
        int rc = run_cli(ARGS("convert", in, "-o", out, "-q"), NULL, NULL, &e, NULL);
        if (lens[i] <= 255) {
            cr_assert_eq(rc, 0, "a %zu-byte name: exit %d: %s", lens[i], rc, e);
            cr_assert(ts_exists(out));
            cr_assert_eq(ts_dir_count(dir), 1, "a %zu-byte name: a temporary was left", lens[i]);
            cr_assert_eq(unlink(out), 0);
        } else {
            cr_assert_eq(rc, 2, "a %zu-byte name: exit %d: %s", lens[i], rc, e);
            expect_one_line("256-byte name", e, "convert", "longer than 255 bytes", NULL);
            cr_assert_eq(ts_dir_count(dir), 0);
        }
        free(e); free(out);
    }
    ts_rmtree(dir);
    free(dir); free(in);
}

/* The output directory is swapped for a symlink while the output is written: refused, no temporary anywhere. */
Test(output, directory_swapped_mid_run, .timeout = 60)
{
    const char *shim = shim_path();
    char *dir = tmpdir(), *outdir = ts_path(dir, "out"), *moved = ts_path(dir, "moved"), *other = ts_path(dir, "other");
    cr_assert_eq(mkdir(outdir, 0755), 0);
    cr_assert_eq(mkdir(other, 0755), 0);
    uint64_t ds;
    char *in = make_change_input(dir, &ds), *out = ts_path(outdir, "out.mxq");
    char *preload = env_kv("LD_PRELOAD", shim);
    run_opts ro = {.env = {preload, "MIXQ_FAULT_WRITE_DELAY_US=30000"}};
    proc p = spawn_cli(ARGS("convert", in, "-o", out, "-j", "1"), &ro);
    cr_assert(wait_for_temporary(outdir, "out.mxq", p.pid));
    cr_assert_eq(rename(outdir, moved), 0);
    cr_assert_eq(symlink("other", outdir), 0);
    char *o = NULL, *e = NULL;
    int rc = wait_cli(&p, 60, &o, &e, NULL);
    cr_assert_eq(rc, 3, "exit %d: %s", rc, e);
    expect_one_line("directory swapped", e, "convert", "output directory was moved or replaced", NULL);
    cr_assert_eq(ts_dir_count(moved), 0, "a temporary or output was left in the original directory");
    cr_assert_eq(ts_dir_count(other), 0, "something was written through the symlink");
    ts_rmtree(dir);
    free(dir); free(outdir); free(moved); free(other); free(in); free(out); free(preload); free(o); free(e);
}

/* Planning (mixq plan, convert with a strategy) reads the mapping under the guard: a shrinking input is an error. */
Test(changing, input_truncated_while_planning)
{
    for (int via_convert = 0; via_convert < 2; via_convert++) {
        char *dir = tmpdir(), *outdir = ts_path(dir, "out");
        cr_assert_eq(mkdir(outdir, 0755), 0);
        uint64_t ds;
        char *in = make_change_input(dir, &ds), *out = ts_path(outdir, "o.mxq");
        uint64_t tbytes = (uint64_t)CH_ROWS * CH_COLS * 4;
        change_action a = {.path = in, .at = 2, .size = ds + 3 * tbytes + 100};
        mixq_plan_options po;
        mixq_plan_options_init(&po);
        po.strategy = MIXQ_STRATEGY_BUDGET;
        po.target_bpw = 5;
        po.threads = 1;
        po.progress = change_file;
        po.progress_ctx = &a;
        mixq_error err;
        mixq_status s;
        if (via_convert) {
            mixq_convert_options co;
            mixq_convert_options_init(&co);
            co.plan_options = &po;
            co.threads = 1;
            s = mixq_convert(in, out, &co, &err);
        } else {
            mixq_plan *p = NULL;
            s = mixq_plan_create(in, &po, &p, &err);
            mixq_plan_free(p);
        }
        cr_assert(a.done, "the callback never ran");
        cr_assert_eq(s, MIXQ_E_IO, "%s: status %d: %s", via_convert ? "convert" : "plan", (int)s, err.message);
        cr_assert(strstr(err.message, "changed while it was read") && strstr(err.message, "in.safetensors"), "%s",
                  err.message);
        cr_assert_eq(ts_dir_count(outdir), 0);
        ts_rmtree(dir);
        free(dir); free(outdir); free(in); free(out);
    }
}
