/* soon.h - "once this loop turn": a per-loop list of objects that asked to
 * have something done (typically: write what they queued) after the
 * loop's I/O callbacks, however many times they asked in between.
 *
 * Streams that receive several records in one loop turn (a hub batch, the
 * acks of pipelined publishes) each ask sp_soon_add; at the turn's check
 * phase every asker's `run` is called once, so each socket gets one write
 * for the turn. An idle handle runs only while the list is non-empty, so a
 * request made outside the I/O callbacks (from a timer, or a message
 * posted to the loop) does not wait for the next poll timeout.
 *
 * Owned by one loop and used only on it. The handles are unreferenced:
 * they never keep the loop alive by themselves. */
#ifndef SP_CORE_SOON_H
#define SP_CORE_SOON_H

#include <stdbool.h>
#include <uv.h>

/* Embedded in each object that may ask; zero-initialized = not queued. */
typedef struct sp_soon_node {
    struct sp_soon_node *prev, *next;
    bool queued;
    bool current; /* in the list the check phase is running */
} sp_soon_node;

typedef struct sp_soon sp_soon;

/* Calls run(node) once per queued node at the check phase, in no
 * particular order; the node is unqueued before its run, so run may queue
 * it again (it then runs at the next turn: a node that always asks again
 * cannot hold the loop in one check phase) or free it, and may remove or
 * add other nodes. */
sp_soon *sp_soon_new(uv_loop_t *loop, void (*run)(sp_soon_node *node));
/* Queues node for this turn's check phase (no-op when already queued). */
void sp_soon_add(sp_soon *s, sp_soon_node *node);
/* Unqueues node (no-op when not queued): before freeing its object. */
void sp_soon_remove(sp_soon *s, sp_soon_node *node);
/* Closes the handles; s is freed once they are closed. Nodes still queued
 * are dropped (not run). NULL is a no-op. */
void sp_soon_close(sp_soon *s);

#endif
