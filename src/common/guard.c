/* guard.c - SIGBUS on a mapped file that shrank, turned into an error (see guard.h). */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>

#include "common/guard.h"

static _Thread_local sigjmp_buf *volatile guard_jump; /* non-NULL inside mx_guarded on this thread */
static _Thread_local const void *fault_addr;
static struct sigaction previous;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;

static void on_sigbus(int sig, siginfo_t *info, void *uctx)
{
    sigjmp_buf *jb = guard_jump;
    if (jb) {
        guard_jump = NULL;
        fault_addr = info ? info->si_addr : NULL;
        siglongjmp(*jb, 1);
    }
    /* not ours: hand it on */
    if ((previous.sa_flags & SA_SIGINFO) && previous.sa_sigaction) {
        previous.sa_sigaction(sig, info, uctx);
        return;
    }
    if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN && previous.sa_handler) {
        previous.sa_handler(sig);
        return;
    }
    signal(SIGBUS, SIG_DFL); /* the faulting access repeats and the default action applies */
}

static void install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &previous);
}

int mx_guarded(void (*fn)(void *ctx), void *ctx)
{
    pthread_once(&install_once, install);
    sigjmp_buf jb;
    sigjmp_buf *outer = guard_jump;
    /* no mask saved (cheap enough to guard each row): the handler runs with SA_NODEFER and an empty
       sa_mask, so jumping out of it leaves this thread's signal mask as it was */
    if (sigsetjmp(jb, 0)) {
        guard_jump = outer;
        return MX_GUARD_FAULT;
    }
    guard_jump = &jb;
    fn(ctx);
    guard_jump = outer;
    return MX_GUARD_OK;
}

const void *mx_guard_fault_addr(void) { return fault_addr; }

typedef struct copy_args {
    void *dst;
    const void *src;
    size_t n;
} copy_args;

static void do_copy(void *ctx)
{
    copy_args *a = ctx;
    memcpy(a->dst, a->src, a->n);
}

int mx_guarded_copy(void *dst, const void *src, size_t n)
{
    copy_args a = {dst, src, n};
    return n ? mx_guarded(do_copy, &a) : MX_GUARD_OK;
}
