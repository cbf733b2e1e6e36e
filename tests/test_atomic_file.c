/* test_atomic_file.c - the temporary + fsync + rename writer. */
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>

#include "common/atomic_file.h"
#include "test_support.h"

Test(atomic_file, commit_makes_the_file_appear_whole)
{
    char *dir = ts_tmpdir(), *p = ts_path(dir, "out.bin");
    afile f;
    mixq_error err;
    cr_assert_eq(afile_open(&f, p, 0, &err), MIXQ_OK, "%s", err.message);
    cr_assert(!ts_exists(p), "nothing may appear before commit");
    cr_assert_eq(ts_dir_count(dir), 1);
    cr_assert_eq(afile_pwrite(&f, "world", 5, 6, &err), MIXQ_OK);
    cr_assert_eq(afile_pwrite(&f, "hello ", 6, 0, &err), MIXQ_OK);
    cr_assert_eq(afile_commit(&f, &err), MIXQ_OK, "%s", err.message);
    size_t len;
    uint8_t *d = ts_read_file(p, &len);
    cr_assert(len == 11 && memcmp(d, "hello world", 11) == 0);
    cr_assert_eq(ts_dir_count(dir), 1, "the temporary is gone");
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    mode_t um = umask(0);
    umask(um);
    cr_assert_eq(st.st_mode & 0777, 0666 & ~um, "usual permissions, not mkstemp's 0600");
    afile_abort(&f); /* harmless after commit */
    free(d);
    ts_rmtree(dir);
    free(dir); free(p);
}

Test(atomic_file, abort_removes_the_temporary)
{
    char *dir = ts_tmpdir(), *p = ts_path(dir, "out.bin");
    afile f;
    mixq_error err;
    cr_assert_eq(afile_open(&f, p, 0, &err), MIXQ_OK);
    cr_assert_eq(afile_pwrite(&f, "x", 1, 0, &err), MIXQ_OK);
    afile_abort(&f);
    afile_abort(&f);
    cr_assert_eq(ts_dir_count(dir), 0);
    ts_rmtree(dir);
    free(dir); free(p);
}

Test(atomic_file, existing_file_needs_force)
{
    char *dir = ts_tmpdir(), *p = ts_path(dir, "out.bin");
    ts_write_file(p, "old", 3);
    afile f;
    mixq_error err;
    cr_assert_eq(afile_open(&f, p, 0, &err), MIXQ_E_EXISTS);
    cr_assert(strstr(err.message, "out.bin") && strstr(err.message, "set force to replace it"), "%s", err.message);
    cr_assert_eq(ts_dir_count(dir), 1);
    cr_assert_eq(afile_open(&f, p, 1, &err), MIXQ_OK);
    cr_assert_eq(afile_pwrite(&f, "new!", 4, 0, &err), MIXQ_OK);
    cr_assert_eq(afile_commit(&f, &err), MIXQ_OK);
    size_t len;
    uint8_t *d = ts_read_file(p, &len);
    cr_assert(len == 4 && memcmp(d, "new!", 4) == 0);
    free(d);
    ts_rmtree(dir);
    free(dir); free(p);
}

/* A file created by someone else while we write is not replaced without force. */
Test(atomic_file, race_with_new_file_is_not_clobbered)
{
    char *dir = ts_tmpdir(), *p = ts_path(dir, "out.bin");
    afile f;
    mixq_error err;
    cr_assert_eq(afile_open(&f, p, 0, &err), MIXQ_OK);
    cr_assert_eq(afile_pwrite(&f, "mine", 4, 0, &err), MIXQ_OK);
    ts_write_file(p, "theirs", 6);
    cr_assert_eq(afile_commit(&f, &err), MIXQ_E_EXISTS);
    size_t len;
    uint8_t *d = ts_read_file(p, &len);
    cr_assert(len == 6 && memcmp(d, "theirs", 6) == 0);
    cr_assert_eq(ts_dir_count(dir), 1, "temporary removed");
    free(d);
    ts_rmtree(dir);
    free(dir); free(p);
}

Test(atomic_file, directory_as_output)
{
    char *dir = ts_tmpdir();
    afile f;
    mixq_error err;
    cr_assert_eq(afile_open(&f, dir, 1, &err), MIXQ_E_INVALID_ARG);
    cr_assert(strstr(err.message, "directory"), "%s", err.message);
    ts_rmtree(dir);
    free(dir);
}
