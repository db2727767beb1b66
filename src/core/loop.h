/* loop.h - an I/O thread: one libuv loop plus an inbox.
 *
 * Loops share nothing mutable (DESIGN.md "Threads"). The only way another
 * thread touches a loop is sp_loop_post(), which queues a message under a
 * mutex and wakes the loop with uv_async_send; the loop runs every queued
 * message, in order, on its own thread. Messages posted after the loop
 * started closing are run at once on the closing path with `closing` set,
 * so their memory is never lost. */
#ifndef SP_CORE_LOOP_H
#define SP_CORE_LOOP_H

#include <stdbool.h>
#include <uv.h>

typedef struct sp_loop sp_loop;
typedef void (*sp_loop_fn)(sp_loop *loop, void *arg);

typedef struct sp_loop_msg {
    struct sp_loop_msg *next;
    sp_loop_fn fn;
    void *arg;
} sp_loop_msg;

struct sp_loop {
    uv_loop_t uv;
    int index;   /* 0..n-1 among the process's I/O loops */
    void *udata; /* owner's per-loop state (e.g. the HTTP worker) */
    uv_thread_t thread;
    uv_async_t wake;
    uv_mutex_t lock;
    sp_loop_msg *head, *tail; /* guarded by lock */
    bool closing;             /* guarded by lock */
    bool started;
    sp_loop_fn init_fn;
    void *init_arg;
};

/* Initializes the loop and its inbox on the calling thread. Returns 0 or a
 * negative libuv error. */
int sp_loop_init(sp_loop *loop, int index);
/* Starts a thread that calls init(loop, arg) and then runs the loop until
 * it has no active handles (after sp_loop_close_inbox). Returns 0 or a
 * negative libuv error (init never runs then). */
int sp_loop_start(sp_loop *loop, sp_loop_fn init, void *arg);
/* Queues fn(loop, arg) to run on the loop's thread. Thread-safe; never
 * fails (the message is allocated with sp_xmalloc). */
void sp_loop_post(sp_loop *loop, sp_loop_fn fn, void *arg);
/* Says the owner is done: the inbox stops keeping the loop alive. Call on
 * the loop's thread as the last step of shutdown. Messages are still
 * delivered on the loop while anything else keeps it running; once the
 * loop runs dry the inbox closes, and later posts run on the poster's
 * thread with loop == NULL. */
void sp_loop_close_inbox(sp_loop *loop);
/* Waits for the thread (or, when it was never started, runs what was
 * queued and closes the inbox on the calling thread), then closes the uv
 * loop. Returns 0 or UV_EBUSY if
 * a handle was leaked (the loop is left open and the leak is logged). */
int sp_loop_join(sp_loop *loop);
/* Frees the inbox's lock. Only once no thread can post any more: after the
 * store and anything else that posts from its own thread is closed. */
void sp_loop_destroy(sp_loop *loop);

#endif
