/* workers.c - fork the workers, merge their framed reports (see workers.h). */
#include "workers.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mem.h"

#define WRK_MAX 64

struct wrk_rec {
    struct wrk_rec *next;
    struct report_frame h;
    char *data; /* json_len + text_len bytes */
};

struct wrk {
    pid_t pid;
    int fd;
    int done;
    uint64_t watermark; /* every later session ends after this frame */
    uint8_t *buf;       /* bytes read, not yet a whole record */
    size_t len, alloc;
    struct wrk_rec *head, *tail;
    json_t *summary;
    int max_severity;
};

/* Summary fields every worker counts alike (each reads the whole capture): taken once. */
static const char *const wrk_global_fields[] = {"packets",
                                                "bytes",
                                                "kernel_drops",
                                                "interface_drops",
                                                "first_packet",
                                                "last_packet",
                                                "truncated_packets",
                                                "non_ip",
                                                "malformed",
                                                "unsupported_link",
                                                "capture_truncated",
                                                "capture_truncated_file",
                                                "interrupted",
                                                "type",
                                                "schema",
                                                NULL};

static int
wrk_is_global(const char *key)
{
    for (size_t i = 0; wrk_global_fields[i]; i++)
        if (strcmp(key, wrk_global_fields[i]) == 0)
            return 1;
    return 0;
}

/* Adds the counts of src into dst: integers summed, objects merged key by key. */
static void
wrk_sum(json_t *dst, json_t *src, int top)
{
    const char *k;
    json_t *v;
    json_object_foreach (src, k, v) {
        json_t *d = json_object_get(dst, k);
        if (!d) {
            json_object_set(dst, k, v);
            continue;
        }
        if (top && wrk_is_global(k))
            continue;
        if (json_is_integer(v) && json_is_integer(d))
            json_object_set_new(dst, k,
                                json_integer(json_integer_value(d) + json_integer_value(v)));
        else if (json_is_object(v) && json_is_object(d))
            wrk_sum(d, v, 0);
    }
}

static int
wrk_key_less(const struct report_frame *a, const struct report_frame *b)
{
    return a->key[0] != b->key[0] ? a->key[0] < b->key[0] : a->key[1] < b->key[1];
}

/* Parses whole records out of w->buf. Returns -1 on a malformed stream. */
static int
wrk_parse(struct wrk *w)
{
    size_t off = 0;
    while (w->len - off >= sizeof(struct report_frame)) {
        struct report_frame h;
        memcpy(&h, w->buf + off, sizeof h);
        size_t body = (size_t)h.json_len + h.text_len;
        if (body > ((size_t)1 << 30))
            return -1;
        if (w->len - off - sizeof h < body)
            break;
        const char *p = (const char *)w->buf + off + sizeof h;
        if (h.kind == REPORT_FRAME_PROGRESS) {
            w->watermark = h.key[0];
        } else if (h.kind == REPORT_FRAME_SUMMARY) {
            json_decref(w->summary);
            w->summary = json_loadb(p, h.json_len, 0, NULL);
            w->max_severity = h.max_severity;
        } else if (h.kind == REPORT_FRAME_SESSION) {
            struct wrk_rec *r = mem_alloc(sizeof *r);
            char *data = mem_alloc(body + 1);
            if (!r || !data) {
                mem_free(r);
                mem_free(data);
                return -1;
            }
            memcpy(data, p, body);
            r->h = h;
            r->data = data;
            r->next = NULL;
            if (w->tail)
                w->tail->next = r;
            else
                w->head = r;
            w->tail = r;
        } else {
            return -1;
        }
        off += sizeof h + body;
    }
    memmove(w->buf, w->buf + off, w->len - off);
    w->len -= off;
    return 0;
}

static int
wrk_read(struct wrk *w)
{
    if (w->alloc - w->len < 65536) {
        size_t n = w->alloc ? w->alloc * 2 : 131072;
        uint8_t *b = mem_realloc(w->buf, n);
        if (!b)
            return -1;
        w->buf = b;
        w->alloc = n;
    }
    ssize_t got = read(w->fd, w->buf + w->len, w->alloc - w->len);
    if (got < 0)
        return errno == EINTR || errno == EAGAIN ? 0 : -1;
    if (got == 0) {
        w->done = 1;
        w->watermark = UINT64_MAX;
        return 0;
    }
    w->len += (size_t)got;
    return wrk_parse(w);
}

/* Writes every record that no worker can still precede. */
static int
wrk_emit(struct wrk *ws, unsigned n, struct report *rep)
{
    for (;;) {
        struct wrk *best = NULL;
        for (unsigned i = 0; i < n; i++)
            if (ws[i].head && (!best || wrk_key_less(&ws[i].head->h, &best->head->h)))
                best = &ws[i];
        if (!best)
            return 0;
        for (unsigned i = 0; i < n; i++)
            if (!ws[i].head && ws[i].watermark < best->head->h.key[0])
                return 0;
        struct wrk_rec *r = best->head;
        best->head = r->next;
        if (!best->head)
            best->tail = NULL;
        int rc = report_raw(rep, r->data, r->h.json_len, r->data + r->h.json_len, r->h.text_len);
        mem_free(r->data);
        mem_free(r);
        if (rc < 0)
            return -1;
    }
}

json_t *
wrk_run(unsigned count, wrk_child_fn child, void *ctx, struct report *rep, int *status)
{
    struct wrk ws[WRK_MAX];
    memset(ws, 0, sizeof ws);
    if (count > WRK_MAX)
        count = WRK_MAX;
    *status = 0;
    fflush(NULL);
    for (unsigned i = 0; i < count; i++) {
        int p[2];
        if (pipe(p) < 0) {
            *status = 3;
            count = i;
            break;
        }
        pid_t pid = fork();
        if (pid < 0) {
            close(p[0]);
            close(p[1]);
            *status = 3;
            count = i;
            break;
        }
        if (pid == 0) {
            close(p[0]);
            for (unsigned j = 0; j < i; j++)
                close(ws[j].fd);
            FILE *out = fdopen(p[1], "w");
            int rc = out ? child(ctx, i, count, out) : 3;
            if (out && fclose(out) != 0 && rc == 0)
                rc = 3;
            _exit(rc);
        }
        close(p[1]);
        ws[i].pid = pid;
        ws[i].fd = p[0];
        ws[i].max_severity = -1;
    }
    /* The parent only merges; a SIGINT reaches the workers, which finish their sessions. */
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    int write_failed = 0;
    for (;;) {
        struct pollfd pf[WRK_MAX];
        unsigned np = 0, idx[WRK_MAX];
        for (unsigned i = 0; i < count; i++) {
            if (!ws[i].done) {
                pf[np].fd = ws[i].fd;
                pf[np].events = POLLIN;
                idx[np++] = i;
            }
        }
        if (np == 0)
            break;
        if (poll(pf, np, -1) < 0) {
            if (errno == EINTR)
                continue;
            *status = 3;
            break;
        }
        for (unsigned k = 0; k < np; k++) {
            if (pf[k].revents & (POLLIN | POLLHUP | POLLERR)) {
                if (wrk_read(&ws[idx[k]]) < 0) {
                    ws[idx[k]].done = 1;
                    ws[idx[k]].watermark = UINT64_MAX;
                    *status = 3;
                }
            }
        }
        if (!write_failed && wrk_emit(ws, count, rep) < 0)
            write_failed = 1;
    }
    if (!write_failed && wrk_emit(ws, count, rep) < 0)
        write_failed = 1;
    json_t *summary = NULL;
    for (unsigned i = 0; i < count; i++) {
        int st = 0;
        if (waitpid(ws[i].pid, &st, 0) < 0 || !WIFEXITED(st))
            *status = 3;
        else if (WEXITSTATUS(st) > *status)
            *status = WEXITSTATUS(st);
        if (ws[i].summary) {
            if (!summary)
                summary = json_deep_copy(ws[i].summary);
            else
                wrk_sum(summary, ws[i].summary, 1);
        } else {
            *status = 3; /* a worker that said nothing did not finish its work */
        }
        report_note_severity(rep, ws[i].max_severity);
        close(ws[i].fd);
        mem_free(ws[i].buf);
        json_decref(ws[i].summary);
        while (ws[i].head) {
            struct wrk_rec *r = ws[i].head;
            ws[i].head = r->next;
            mem_free(r->data);
            mem_free(r);
        }
    }
    if (write_failed) {
        *status = 3;
        errno = errno ? errno : EIO;
    }
    return summary;
}
