/* soon.c - see soon.h. */
#include "core/soon.h"

#include <stdlib.h>

#include "core/alloc.h"

struct sp_soon {
    uv_check_t check;
    uv_idle_t idle;     /* active while nodes are queued: poll must not block */
    sp_soon_node *head; /* queued for the next check phase */
    sp_soon_node *cur;  /* being run by this check phase */
    void (*run)(sp_soon_node *node);
    int open_handles; /* freed when both are closed */
};

static void unlink_node(sp_soon *s, sp_soon_node *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else if (n->current)
        s->cur = n->next;
    else
        s->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    n->prev = n->next = NULL;
    n->queued = n->current = false;
}

static void on_idle(uv_idle_t *i)
{
    (void)i; /* being active is its job */
}

static void on_check(uv_check_t *c)
{
    sp_soon *s = c->data;
    uv_idle_stop(&s->idle);
    s->cur = s->head; /* what asks from here on waits for the next turn */
    s->head = NULL;
    for (sp_soon_node *n = s->cur; n; n = n->next)
        n->current = true;
    while (s->cur) {
        sp_soon_node *n = s->cur;
        unlink_node(s, n);
        s->run(n);
    }
}

sp_soon *sp_soon_new(uv_loop_t *loop, void (*run)(sp_soon_node *node))
{
    sp_soon *s = sp_xcalloc(1, sizeof *s);
    s->run = run;
    uv_check_init(loop, &s->check);
    uv_idle_init(loop, &s->idle);
    s->check.data = s->idle.data = s;
    s->open_handles = 2;
    uv_check_start(&s->check, on_check);
    uv_unref((uv_handle_t *)&s->check);
    uv_unref((uv_handle_t *)&s->idle);
    return s;
}

void sp_soon_add(sp_soon *s, sp_soon_node *n)
{
    if (n->queued)
        return;
    if (!s->head)
        uv_idle_start(&s->idle, on_idle);
    n->queued = true;
    n->prev = NULL;
    n->next = s->head;
    if (s->head)
        s->head->prev = n;
    s->head = n;
}

void sp_soon_remove(sp_soon *s, sp_soon_node *n)
{
    if (n->queued)
        unlink_node(s, n);
}

static void on_closed(uv_handle_t *h)
{
    sp_soon *s = h->data;
    if (--s->open_handles == 0)
        free(s);
}

void sp_soon_close(sp_soon *s)
{
    if (!s)
        return;
    while (s->head)
        unlink_node(s, s->head);
    while (s->cur) /* closed from inside a run */
        unlink_node(s, s->cur);
    uv_close((uv_handle_t *)&s->check, on_closed);
    uv_close((uv_handle_t *)&s->idle, on_closed);
}
