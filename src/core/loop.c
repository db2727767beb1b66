/* loop.c - see loop.h. */
#include "core/loop.h"

#include <signal.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "core/log.h"

static void drain(sp_loop *loop)
{
    uv_mutex_lock(&loop->lock);
    sp_loop_msg *m = loop->head;
    loop->head = loop->tail = NULL;
    uv_mutex_unlock(&loop->lock);
    while (m) {
        sp_loop_msg *next = m->next;
        m->fn(loop, m->arg);
        free(m);
        m = next;
    }
}

static void on_wake(uv_async_t *h)
{
    drain(h->data);
}

int sp_loop_init(sp_loop *loop, int index)
{
    memset(loop, 0, sizeof *loop);
    loop->index = index;
    int rc = uv_loop_init(&loop->uv);
    if (rc)
        return rc;
    loop->uv.data = loop;
    rc = uv_async_init(&loop->uv, &loop->wake, on_wake);
    if (rc)
        goto fail_async;
    loop->wake.data = loop;
    rc = uv_mutex_init(&loop->lock);
    if (rc)
        goto fail_mutex;
    return 0;
fail_mutex:
    uv_close((uv_handle_t *)&loop->wake, NULL);
    uv_run(&loop->uv, UV_RUN_NOWAIT);
fail_async:
    uv_loop_close(&loop->uv);
    return rc;
}

/* The inbox's last act, on the loop's own thread once nothing else keeps
 * the loop running: from now on posts run at once on the poster's thread
 * (with loop NULL); what was queued runs here, then the handle closes. */
static void finish_inbox(sp_loop *loop)
{
    uv_mutex_lock(&loop->lock);
    loop->closing = true;
    uv_mutex_unlock(&loop->lock);
    drain(loop);
    if (!uv_is_closing((uv_handle_t *)&loop->wake))
        uv_close((uv_handle_t *)&loop->wake, NULL);
    uv_run(&loop->uv, UV_RUN_DEFAULT);
}

static void thread_main(void *arg)
{
    sp_loop *loop = arg;
    /* Signals belong to the main thread's loop. */
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    if (loop->init_fn)
        loop->init_fn(loop, loop->init_arg);
    uv_run(&loop->uv, UV_RUN_DEFAULT);
    finish_inbox(loop);
}

int sp_loop_start(sp_loop *loop, sp_loop_fn init, void *arg)
{
    loop->init_fn = init;
    loop->init_arg = arg;
    int rc = uv_thread_create(&loop->thread, thread_main, loop);
    if (rc == 0)
        loop->started = true;
    return rc;
}

void sp_loop_post(sp_loop *loop, sp_loop_fn fn, void *arg)
{
    sp_loop_msg *m = sp_xmalloc(sizeof *m);
    m->next = NULL;
    m->fn = fn;
    m->arg = arg;
    uv_mutex_lock(&loop->lock);
    bool closing = loop->closing;
    if (!closing) {
        if (loop->tail)
            loop->tail->next = m;
        else
            loop->head = m;
        loop->tail = m;
    }
    if (!closing)
        uv_async_send(&loop->wake); /* under the lock: the handle cannot close meanwhile */
    uv_mutex_unlock(&loop->lock);
    if (closing) {
        /* Nobody will run it: give the owner its memory back on this thread. */
        fn(NULL, arg);
        free(m);
    }
}

void sp_loop_close_inbox(sp_loop *loop)
{
    /* The inbox no longer keeps the loop alive, but keeps delivering while
     * anything else does (a pending acknowledgement's timer, say); it
     * closes when the loop runs out of work (finish_inbox). */
    uv_unref((uv_handle_t *)&loop->wake);
}

static void report_leak(uv_handle_t *h, void *arg)
{
    (void)arg;
    SP_LOG_ERROR("leaked libuv handle at loop close",
                 SP_LF_STR("type", uv_handle_type_name(h->type))
                     SP_LF_BOOL("active", uv_is_active(h)));
}

int sp_loop_join(sp_loop *loop)
{
    if (loop->started) {
        uv_thread_join(&loop->thread);
    } else if (!uv_is_closing((uv_handle_t *)&loop->wake)) {
        /* never ran: run the queued messages and close here */
        sp_loop_close_inbox(loop);
        uv_run(&loop->uv, UV_RUN_DEFAULT);
        finish_inbox(loop);
    }
    loop->started = false;
    int rc = uv_loop_close(&loop->uv);
    if (rc == UV_EBUSY) {
        uv_walk(&loop->uv, report_leak, NULL);
        return rc;
    }
    return 0;
}

void sp_loop_destroy(sp_loop *loop)
{
    uv_mutex_destroy(&loop->lock);
}
