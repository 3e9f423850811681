/* http.c — connections, through libmicrohttpd (Debian libmicrohttpd-dev): a thread
 * per connection (a request's generation runs in it; a stream's is pulled by it,
 * token by token, from MHD's content-reader callback), the body cap (413, refused
 * from Content-Length before the body is read, or when a chunked body passes it),
 * Bearer auth on every endpoint but /health (401), the idle timeout that closes
 * slow clients, and one log line per request. Routing is routes.c's. */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "session.h"

struct srv_http {
    struct MHD_Daemon *d;
    srv_server *s;
};

/* One HTTP request on a connection. */
typedef struct exchange {
    unsigned long long rid;
    char *body;                  /* [n] bytes read so far (cap: the server's max_body) */
    size_t n, cap;
    int refuse;                  /* 401 or 413 decided before the body was read, else 0 */
    int streamed;                /* the stream logs itself */
    double t0;
    char method[8], path[80];
    srv_reply log;               /* the answer's log fields (body not kept) */
} exchange;

/* "Authorization: Bearer KEY", compared in constant time. */
static int auth_ok(struct MHD_Connection *c, const char *key) {
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!h || strncmp(h, "Bearer ", 7)) return 0;
    h += 7;
    size_t n = strlen(key), m = strlen(h);
    unsigned diff = n != m;
    for (size_t i = 0; i < n; i++) diff |= (unsigned char)key[i] ^ (unsigned char)(i < m ? h[i] : 0);
    return diff == 0;
}

static ssize_t read_stream(void *cls, uint64_t pos, char *buf, size_t max) {
    size_t n = srv_stream_read(cls, buf, max);
    return n ? (ssize_t)n : MHD_CONTENT_READER_END_OF_STREAM;
}

static void free_stream(void *cls) {
    srv_stream_close(cls);
}

/* Queues r (taking its body or stream) on c. */
static enum MHD_Result send_reply(struct MHD_Connection *c, exchange *x, srv_reply *r) {
    struct MHD_Response *resp;
    if (r->stream) {
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, read_stream, r->stream, free_stream);
        if (!resp) srv_stream_close(r->stream);
        else MHD_add_response_header(resp, "Cache-Control", "no-cache");
        x->streamed = resp != NULL;
    } else {
        const char *body = r->body ? r->body : "";
        resp = MHD_create_response_from_buffer(strlen(body), (void *)body,
                                               r->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
        if (!resp) free(r->body);
    }
    x->log = *r;
    x->log.body = NULL;
    x->log.stream = NULL;
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", r->content_type ? r->content_type : "application/json");
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    srv_http *h = cls;
    srv_server *s = h->s;
    exchange *x = *con_cls;
    if (!x) { /* the headers are in */
        if (!(x = calloc(1, sizeof *x))) return MHD_NO;
        *con_cls = x;
        x->rid = atomic_fetch_add(&s->next_id, 1);
        x->t0 = srv_now_ms();
        snprintf(x->method, sizeof x->method, "%s", method);
        snprintf(x->path, sizeof x->path, "%s", url);
        const char *len = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (s->opt.api_key && strcmp(url, "/health") && !auth_ok(c, s->opt.api_key)) x->refuse = 401;
        else if (len && strtoull(len, NULL, 10) > s->opt.max_body) x->refuse = 413;
        if (!x->refuse) return MHD_YES;
        srv_reply r = {0};
        srv_reply_error(&r, x->refuse, x->refuse == 401 ? "Unauthorized: a valid 'Authorization: Bearer KEY' is "
                                                          "required" : "the request body is too large",
                        "");
        return send_reply(c, x, &r); /* before the body: MHD discards it and closes */
    }
    if (*upload_size) {
        if (!x->refuse && x->n + *upload_size > s->opt.max_body) {
            x->refuse = 413; /* a chunked body past the cap: keep reading, drop it */
            free(x->body);
            x->body = NULL;
            x->n = x->cap = 0;
        }
        if (!x->refuse) {
            if (x->n + *upload_size + 1 > x->cap) {
                size_t cap = (x->n + *upload_size + 1) * 2;
                if (cap > s->opt.max_body + 1) cap = s->opt.max_body + 1;
                char *more = realloc(x->body, cap);
                if (!more) return MHD_NO;
                x->body = more;
                x->cap = cap;
            }
            memcpy(x->body + x->n, upload, *upload_size);
            x->n += *upload_size;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    srv_reply r = {0};
    if (x->refuse) srv_reply_error(&r, 413, "the request body is too large", "");
    else srv_route(s, x->rid, method, url, x->body ? x->body : "", x->n, &r);
    free(x->body);
    x->body = NULL;
    return send_reply(c, x, &r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    srv_http *h = cls;
    exchange *x = *con_cls;
    if (!x) return;
    if (x->log.status) srv_metrics_http(&h->s->metrics, x->log.status);
    if (x->log.status && !x->streamed)
        srv_log_request(h->s, x->rid, x->method, x->path, &x->log, srv_now_ms() - x->t0);
    free(x->body);
    free(x);
    *con_cls = NULL;
}

srv_http *srv_http_start(srv_server *s, char *why, size_t cap) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *ai;
    char port[16];
    snprintf(port, sizeof port, "%d", s->opt.port);
    int rc = getaddrinfo(s->opt.host, port, &hints, &ai);
    if (rc) {
        snprintf(why, cap, "--host %s: %s", s->opt.host, gai_strerror(rc));
        return NULL;
    }
    srv_http *h = calloc(1, sizeof *h);
    if (!h) {
        freeaddrinfo(ai);
        snprintf(why, cap, "out of memory");
        return NULL;
    }
    h->s = s;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
                     (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    h->d = MHD_start_daemon(flags, (uint16_t)s->opt.port, NULL, NULL, on_request, h,
                            MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->opt.idle_timeout_s,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)512,
                            MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->d) {
        snprintf(why, cap, "cannot listen on %s port %d (in use, or not an address of this machine)", s->opt.host,
                 s->opt.port);
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    int bound = info ? info->port : s->opt.port;
    int v6 = strchr(s->opt.host, ':') != NULL;
    fprintf(stderr, "lorajit serve: listening on http://%s%s%s:%d\n", v6 ? "[" : "", s->opt.host, v6 ? "]" : "", bound);
    return h;
}

void srv_http_stop(srv_http *h) {
    if (!h) return;
    MHD_stop_daemon(h->d);
    free(h);
}
