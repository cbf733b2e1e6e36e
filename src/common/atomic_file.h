/*
 * atomic_file.h - writing a file so that it appears whole or not at all:
 * a temporary beside the destination, fsync, rename, fsync of the directory.
 */
#ifndef MIXQ_ATOMIC_FILE_H
#define MIXQ_ATOMIC_FILE_H

#include <stddef.h>
#include <signal.h>
#include <stdint.h>

#include "mixq.h"

/* Bytes per write-back window (see afile_pwrite). */
#define MX_WRITEBACK_WINDOW (32u << 20)

typedef struct afile {
    int fd;
    int dirfd;             /* the output's directory, opened once: every later step is relative to it */
    char *tmp_path;        /* dir/.NAME.tmp-XXXXXX, for messages */
    char *tmp_name;        /* .NAME.tmp-XXXXXX in dirfd (NAME shortened if the whole would exceed NAME_MAX) */
    char *final_name;      /* NAME in dirfd */
    char *final_path;
    int force;
    volatile sig_atomic_t *cancel; /* if set non-zero before the rename, commit aborts (MIXQ_E_CANCELLED) */
    uint64_t wb_done;      /* [0, wb_done) is on disk and dropped from the page cache */
    uint64_t wb_submitted; /* [wb_done, wb_submitted) is being written back */
    uint64_t wb_high;      /* the highest end offset written so far */
} afile;

/*
 * Creates a fresh temporary file next to final_path.  Fails with
 * MIXQ_E_EXISTS if final_path exists and force is 0, and with
 * MIXQ_E_INVALID_ARG if it exists and is not a regular file (even with
 * force).  The directory is opened here and the temporary created, renamed
 * and removed relative to it, so swapping the directory for another (or a
 * symlink) while the output is written cannot strand the temporary.
 */
mixq_status afile_open(afile *f, const char *final_path, int force, mixq_error *err);

/*
 * Writes len bytes at offset (loops over short writes; EINTR retried).  Once
 * MX_WRITEBACK_WINDOW bytes have accumulated above what was last handed to
 * the disk, starts their write-back and waits for the window before it, then
 * drops that window from the page cache: the dirty pages of a large output
 * stay bounded and the final fsync has little left to do.
 */
mixq_status afile_pwrite(afile *f, const void *buf, size_t len, uint64_t offset, mixq_error *err);

/* fsyncs, renames into place (refusing to replace unless force) and fsyncs the directory. */
mixq_status afile_commit(afile *f, mixq_error *err);

/* Closes and removes the temporary; safe to call after commit or twice. */
void afile_abort(afile *f);

#endif
