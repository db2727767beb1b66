/* api_int.h - shared by the files of src/api. */
#ifndef SP_API_INT_H
#define SP_API_INT_H

#include "api/api.h"
#include "core/json.h"
#include "hub/hub.h"

#define SP_API_TOPIC_MAX 249

/* Copies the {t} path parameter into out as a C string; answers 400/404
 * itself and returns false when the name is not a valid topic name or the
 * topic does not exist (when must_exist). */
bool sp__api_topic_param(sp_http_req *req, sp_api *api, char out[SP_API_TOPIC_MAX + 1],
                         bool must_exist);
/* Answers {"detail": "<fmt...>"} with status. */
/* The HTTP status and message for a failed append (REST, seed routes,
 * WebSocket publishes): err is the backend's negative errno, detail its
 * own text (the broker's error on Kafka) or NULL, appended to the message
 * in out. -ETIMEDOUT is 504, an unreachable log (-ENOTCONN), a full queue
 * and shutdown 503, a missing topic 404. */
int sp__api_append_error(int err, const char *detail, char *out, size_t cap);
void sp__api_errorf(sp_http_req *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Parses an unsigned integer query parameter; missing -> def. Answers 422
 * and returns false when present but not a number in [min, max]. */
bool sp__api_query_u64(sp_http_req *req, const char *name, uint64_t def, uint64_t min, uint64_t max,
                       uint64_t *out);

/* A produce request's records, parsed and checked (validate.c). `raw[i]`
 * is the i-th record's bytes exactly as sent; `doc[i]` its parsed form.
 * For one record raw/doc point into the struct itself: never copy it. */
typedef struct sp__api_batch {
    sp_slice *raw;
    void **doc; /* json_t *, borrowed from root; NULL when parsed without docs */
    void *root; /* json_t * owning every doc */
    size_t n;
    bool is_batch; /* array or NDJSON: 422 locations carry the index */
    sp_slice raw1; /* raw and doc of a one-record body, without allocating */
    void *doc1;
} sp__api_batch;

/* Parses the request body by Content-Type (JSON value, JSON array, or
 * NDJSON) with strict JSON rules and the configured limits. With `single`
 * (declared routes such as POST /items) the body is exactly one JSON value
 * (an array is that value, not a batch) and NDJSON is refused. Answers
 * 400/415/422 itself and returns false on any problem.
 * With need_docs false (a topic without a schema) the records are only
 * checked, and trees are built only for a body the allocation-free check
 * cannot vouch for (sp_json_valid_plain), so the same bodies are accepted
 * and refused with the same answers either way. */
bool sp__api_parse_records(sp_http_req *req, sp_api *api, bool single, bool need_docs,
                           sp__api_batch *out);
void sp__api_batch_free(sp__api_batch *b);
/* Validates every record against the topic's schema (may be NULL: then
 * always true). Answers 422 with FastAPI's body, all violations listed,
 * and returns false when anything fails. */
bool sp__api_validate(sp_http_req *req, sp_api *api, const sp_hub_schema *schema,
                      const sp__api_batch *b);

/* Percent-decodes a query value into out (cap bytes); returns its length
 * or -1 on a bad escape or overflow. */
long sp__api_unescape(sp_slice in, char *out, size_t cap);

/* Validates and appends a request's records to `topic`; answers through
 * `respond` once durable (ack=durable) or 202 (ack=none). */
void sp__api_produce(sp_http_req *req, sp_api *api, const char *topic, bool single,
                     void (*respond)(sp_http_req *, const sp_store_ack *, int64_t, size_t));

/* Answers 200 with a JSON array of the records (their envelopes, or with
 * values_only their values, as /latest-news serves them), or 500 when the
 * array would not fit http.max_output_bytes: never a truncated body. */
void sp__api_respond_recs(sp_http_req *req, const sp_hub_rec *const *recs, size_t n,
                          bool values_only);

/* Reads a live subscription's query parameters into o: ?partition=,
 * ?policy=disconnect|skip, ?from_time=<ms> and ?from= (see
 * sp_hub_start_parse; a cursor's positions go to *pos, which the caller
 * frees). `what` names the resume token in the error ("an event id").
 * Answers 422 and returns false on a bad value. */
bool sp__api_sub_query(sp_http_req *req, sp_hub_sub_options *o, sp_hub_pos **pos, const char *what);

int sp__api_register_topics(sp_router *r, sp_api *api);
int sp__api_register_records(sp_router *r, sp_api *api);
int sp__api_register_seed(sp_router *r, sp_api *api);
int sp__api_register_docs(sp_router *r, sp_api *api);
int sp__api_register_sse(sp_router *r, sp_api *api);
int sp__api_register_ws(sp_router *r, sp_api *api);
int sp__api_register_chat(sp_router *r, sp_api *api);

#endif
