/*
 * guard.h - reading a mapped file that may shrink under us.
 *
 * A page of a MAP_SHARED/MAP_PRIVATE file mapping that lies beyond the
 * file's current end raises SIGBUS when touched.  mx_guarded() runs a
 * function with this thread's SIGBUS turned into a return value: the
 * function is cut short (siglongjmp to a thread-local jump buffer) and
 * mx_guarded returns MX_GUARD_FAULT.  The function must therefore only read
 * the mapping and write memory it does not own the allocation of: no locks,
 * no malloc, no stdio, nothing that must be undone.
 *
 * The SIGBUS handler is installed on first use (process-wide).  A SIGBUS on
 * a thread that is not inside mx_guarded is handed on: to the previous
 * handler if there was one, otherwise the default action is restored and
 * the fault repeats (the process dies as it would have without mixq).
 */
#ifndef MIXQ_GUARD_H
#define MIXQ_GUARD_H

#include <stddef.h>

enum { MX_GUARD_OK = 0, MX_GUARD_FAULT = -1 };

/* Runs fn(ctx); MX_GUARD_OK, or MX_GUARD_FAULT if it touched a page beyond the end of a mapped file. */
int mx_guarded(void (*fn)(void *ctx), void *ctx);

/* The address of this thread's last guarded fault (which mapping shrank). */
const void *mx_guard_fault_addr(void);

/* memcpy(dst, src, n) under the guard. */
int mx_guarded_copy(void *dst, const void *src, size_t n);

#endif
