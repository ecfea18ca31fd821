/* workers.c - fork the workers, merge their framed reports (see workers.h). */
#include "workers.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mem.h"
#include "summary.h"

#define WRK_MAX 64
#define WRK_PIPE_BYTES (1 << 20)
/* Bytes of records the parent holds that it cannot write yet, all workers together, past
 * which it reads no more from a worker that has records waiting: that worker then blocks on
 * its full pipe until the one that holds the merge back (one with nothing waiting, always
 * read) has caught up. So a worker busy with a long session cannot make the parent buffer
 * everything the others find meanwhile. The bound is this plus, per worker, one read and
 * the record it completes. */
#define WRK_WINDOW_BYTES ((size_t)8 << 20)

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
    size_t queued; /* bytes of the records in head..tail */
    json_t *summary;
    int max_severity;
};

/* Summary fields every worker counts alike when each reads the whole capture file: taken
 * once. Live workers each see their own share of the interface, so these are summed there,
 * except the ones below. */
static const char *const wrk_global_fields[] = {"packets",
                                                "bytes",
                                                "kernel_drops",
                                                "interface_drops",
                                                "first_packet",
                                                "last_packet",
                                                "truncated_packets",
                                                "timestamps_backwards",
                                                "ipv4_reserved",
                                                "fragments_dropped",
                                                "fragment_conflicts",
                                                "non_ip",
                                                "malformed",
                                                "unsupported_link",
                                                "capture_truncated",
                                                "capture_truncated_file",
                                                "capture_damaged",
                                                "interrupted",
                                                "tls_keylog_dropped",
                                                "type",
                                                "schema",
                                                NULL};

/* Live: the interface's own drop counter (not per socket), the labels, and the earliest
 * first and latest last packet. */
static const char *const wrk_live_global_fields[] = {"interface_drops", "tls_keylog_dropped",
                                                     "type", "schema", NULL};

static int
wrk_in(const char *key, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(key, list[i]) == 0)
            return 1;
    return 0;
}

/* Live: a top-level field merged otherwise than by sum. Returns 1 when handled. */
static int
wrk_merge_live(json_t *dst, const char *k, json_t *d, json_t *v)
{
    if (wrk_in(k, wrk_live_global_fields))
        return 1;
    if (json_is_string(v) && json_is_string(d)) {
        /* RFC 3339 times in UTC with the same precision: ordered as strings */
        int later = strcmp(json_string_value(v), json_string_value(d)) > 0;
        if ((strcmp(k, "first_packet") == 0 && !later) || (strcmp(k, "last_packet") == 0 && later))
            json_object_set(dst, k, v);
        return 1;
    }
    if (json_is_boolean(v) && json_is_boolean(d)) {
        if (json_is_true(v))
            json_object_set(dst, k, v);
        return 1;
    }
    return 0;
}

/* Adds the counts of src into dst: integers summed, objects merged key by key. */
static void
wrk_sum(json_t *dst, json_t *src, int top, int live)
{
    const char *k;
    json_t *v;
    json_object_foreach (src, k, v) {
        json_t *d = json_object_get(dst, k);
        if (!d) {
            json_object_set(dst, k, v);
            continue;
        }
        if (top && !live && wrk_in(k, wrk_global_fields))
            continue;
        if (top && live && wrk_merge_live(dst, k, d, v))
            continue;
        if (json_is_integer(v) && json_is_integer(d))
            json_object_set_new(dst, k,
                                json_integer(json_integer_value(d) + json_integer_value(v)));
        else if (json_is_object(v) && json_is_object(d))
            wrk_sum(d, v, 0, live);
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
        } else if (h.kind == REPORT_FRAME_SESSION || h.kind == REPORT_FRAME_LIVE) {
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
            w->queued += body;
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

/* Writes every record that no worker can still precede; live, every record as it came. */
static int
wrk_emit(struct wrk *ws, unsigned n, struct report *rep, int live)
{
    for (;;) {
        struct wrk *best = NULL;
        for (unsigned i = 0; i < n; i++)
            if (ws[i].head && (!best || (!live && wrk_key_less(&ws[i].head->h, &best->head->h))))
                best = &ws[i];
        if (!best)
            return 0;
        for (unsigned i = 0; i < n && !live; i++)
            if (!ws[i].head && ws[i].watermark < best->head->h.key[0])
                return 0;
        struct wrk_rec *r = best->head;
        best->queued -= (size_t)r->h.json_len + r->h.text_len;
        best->head = r->next;
        if (!best->head)
            best->tail = NULL;
        int rc = report_raw(rep, r->h.kind == REPORT_FRAME_SESSION, r->data, r->h.json_len,
                            r->data + r->h.json_len, r->h.text_len);
        mem_free(r->data);
        mem_free(r);
        if (rc < 0)
            return -1;
    }
}

static volatile sig_atomic_t wrk_stop_requested;

static void
wrk_on_signal(int sig)
{
    (void)sig;
    wrk_stop_requested = 1;
}

/* Asks every worker still running to finish: it writes its open sessions and its summary.
 * sig: SIGINT passes on the user's interruption; WRK_SIG_PEER_ENDED says the capture ended
 * in another worker (see workers.h). */
static void
wrk_stop_all(struct wrk *ws, unsigned n, int sig)
{
    for (unsigned i = 0; i < n; i++)
        if (!ws[i].done)
            kill(ws[i].pid, sig);
}

/* Ends every worker still running at once: the run is over without them (the output is
 * gone). SIGKILL, so that none writes a word about its pipe closing. */
static void
wrk_kill_all(struct wrk *ws, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (!ws[i].done) {
            kill(ws[i].pid, SIGKILL);
            ws[i].done = 1;
            ws[i].watermark = UINT64_MAX;
        }
}

/* In the child, first thing: it dies with its parent, whatever killed the parent, so that
 * no worker goes on capturing (live, as the user -Z named) with nobody to read it. The
 * parent may have died before the request took effect: then the child is already an
 * orphan, which getppid tells. Privileges are dropped before the fork, never after (a
 * change of credentials would clear the death signal). */
static void
wrk_child_bind(pid_t parent)
{
#ifdef PR_SET_PDEATHSIG
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        _exit(3);
#endif
    if (getppid() != parent)
        _exit(3);
}

json_t *
wrk_run(unsigned count, wrk_child_fn child, void *ctx, struct report *rep, int live, int *status,
        int *write_errno)
{
    struct wrk ws[WRK_MAX];
    memset(ws, 0, sizeof ws);
    if (count > WRK_MAX)
        count = WRK_MAX;
    *status = 0;
    *write_errno = 0;
    pid_t self = getpid();
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
            wrk_child_bind(self);
            close(p[0]);
            for (unsigned j = 0; j < i; j++)
                close(ws[j].fd);
            FILE *out = fdopen(p[1], "w");
            /* Records leave in large writes: every pipe write wakes the parent, and on a
             * machine with as many workers as cores the parent's wake-ups take their time.
             * (Live workers flush each record anyway.) glibc ignores the size unless it is
             * given the buffer too. */
            char *obuf = out ? mem_alloc(WRK_PIPE_BYTES) : NULL;
            if (obuf)
                setvbuf(out, obuf, _IOFBF, WRK_PIPE_BYTES);
            int rc = out ? child(ctx, i, count, out) : 3;
            if (out && fclose(out) != 0 && rc == 0)
                rc = 3;
            mem_free(obuf);
            _exit(rc);
        }
        close(p[1]);
#ifdef F_SETPIPE_SZ
        /* Room for a worker's whole write buffer; refused beyond the system's limit, which is
         * harmless (the default works, with more wake-ups). */
        (void)fcntl(p[0], F_SETPIPE_SZ, WRK_PIPE_BYTES);
#endif
        ws[i].pid = pid;
        ws[i].fd = p[0];
        ws[i].max_severity = -1;
    }
    /* The parent only merges. A SIGINT or SIGTERM (sent to it alone, or to the whole process
     * group from a terminal) is passed to the workers, which finish their sessions. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = wrk_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int write_failed = 0, stopping = 0;
    for (;;) {
        if (wrk_stop_requested && !stopping) {
            stopping = 1;
            wrk_stop_all(ws, count, SIGINT);
        }
        struct pollfd pf[WRK_MAX];
        unsigned np = 0, idx[WRK_MAX], nrun = 0;
        size_t held = 0;
        for (unsigned i = 0; i < count; i++) {
            held += ws[i].queued;
            nrun += !ws[i].done;
        }
        /* Live, records are written as they come: nothing is held back. A worker the
         * merge waits for has nothing waiting, so it is always read; the second pass only
         * guards that claim. */
        for (int pass = 0; pass < 2 && np == 0; pass++) {
            for (unsigned i = 0; i < count; i++) {
                if (pass == 0 && !live && ws[i].head && held >= WRK_WINDOW_BYTES)
                    continue;
                if (!ws[i].done) {
                    pf[np].fd = ws[i].fd;
                    pf[np].events = POLLIN;
                    idx[np++] = i;
                }
            }
        }
        if (nrun == 0)
            break;
        /* Bounded wait: a stop request that lands just before poll is still seen. */
        if (poll(pf, np, 200) < 0) {
            if (errno == EINTR)
                continue;
            *status = 3;
            wrk_kill_all(ws, count);
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
        if (!write_failed && wrk_emit(ws, count, rep, live) < 0) {
            /* The output is gone (a closed pipe, a full disk): nothing the workers still
             * find can be written, so they are stopped now rather than left to run on. */
            write_failed = 1;
            *write_errno = errno ? errno : EIO;
            wrk_kill_all(ws, count);
            break;
        }
        /* Live, workers share one interface: when one stops (the packet count reached, an
         * error), the capture is over for all of them. */
        if (live && !stopping && np > 0) {
            for (unsigned k = 0; k < np; k++)
                if (ws[idx[k]].done) {
                    stopping = 1;
                    wrk_stop_all(ws, count, WRK_SIG_PEER_ENDED);
                    break;
                }
        }
    }
    if (!write_failed && wrk_emit(ws, count, rep, live) < 0) {
        write_failed = 1;
        *write_errno = errno ? errno : EIO;
    }
    json_t *summary = NULL;
    /* The figures whose merge is not a sum (percentiles, kept session ids) come as each
     * worker's state, added up here and set once (summary.h). */
    struct summary *figures = summary_create();
    if (!figures)
        *status = 3;
    for (unsigned i = 0; i < count; i++) {
        int st = 0;
        pid_t got;
        while ((got = waitpid(ws[i].pid, &st, 0)) < 0 && errno == EINTR)
            ;
        if (got < 0 || !WIFEXITED(st))
            *status = 3;
        else if (WEXITSTATUS(st) > *status)
            *status = WEXITSTATUS(st);
        if (ws[i].summary) {
            json_t *state = json_object_get(ws[i].summary, SUMMARY_STATE_KEY);
            if (figures && summary_merge_state(figures, state) < 0)
                *status = 3;
            json_object_del(ws[i].summary, SUMMARY_STATE_KEY);
            if (!summary)
                summary = json_deep_copy(ws[i].summary);
            else
                wrk_sum(summary, ws[i].summary, 1, live);
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
    if (summary && figures && summary_figures(figures, summary) < 0)
        *status = 3;
    summary_destroy(figures);
    if (write_failed) {
        *status = 3;
        json_decref(summary);
        summary = NULL;
    }
    return summary;
}
