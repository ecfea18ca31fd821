/* gzin.c - see gzin.h. Own inflate loop rather than gzdopen: the two magic bytes were
 * already taken from the stream to tell gzip from pcap (a pipe cannot be rewound), and a
 * damaged or cut-off stream must be told apart from a clean end. */
#include "gzin.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include <zlib.h>

#include "mem.h"

#define GZIN_CHUNK (256 * 1024)

struct gzin {
    FILE *in;
    z_stream z;
    int z_ok;
    unsigned char *inbuf;
    int in_eof;
    int boundary; /* a member ended: what follows must be another one, or the end */
    int ended;    /* a clean end after a whole member */
    int failed, cut_off;
    char reason[160];
    uint64_t out_pos;  /* decompressed bytes handed out */
    uint64_t in_bytes; /* compressed bytes read */
};

static void
gzin_fail(struct gzin *g, int cut_off, const char *what)
{
    g->failed = 1;
    g->cut_off = cut_off;
    if (cut_off)
        snprintf(g->reason, sizeof g->reason, "gzip data ends in the middle of the stream");
    else
        snprintf(g->reason, sizeof g->reason, "damaged gzip data (%s)", what ? what : "zlib");
}

static ssize_t
gzin_read(void *cookie, char *buf, size_t size)
{
    struct gzin *g = cookie;
    size_t done = 0;
    if (g->failed) {
        errno = EIO;
        return -1;
    }
    while (done < size && !g->ended) {
        if (g->z.avail_in == 0 && !g->in_eof) {
            size_t n = fread(g->inbuf, 1, GZIN_CHUNK, g->in);
            if (n == 0) {
                if (ferror(g->in)) {
                    if (done)
                        break;
                    return -1; /* errno from the read: EINTR when a signal stops us */
                }
                g->in_eof = 1;
            }
            g->in_bytes += n;
            g->z.next_in = g->inbuf;
            g->z.avail_in = (uInt)n;
        }
        if (g->z.avail_in == 0 && g->in_eof) {
            if (g->boundary)
                g->ended = 1; /* after a whole member */
            else
                gzin_fail(g, 1, NULL);
            break;
        }
        if (g->boundary) {
            /* gzip(1) concatenates members; bytes after the last one that start no member
             * (padding) are ignored, as gzip -d ignores trailing garbage. */
            if (g->z.next_in[0] != 0x1f) {
                g->ended = 1;
                break;
            }
            g->boundary = 0;
        }
        size_t want = size - done;
        if (want > UINT32_MAX)
            want = UINT32_MAX;
        g->z.next_out = (Bytef *)buf + done;
        g->z.avail_out = (uInt)want;
        int rc = inflate(&g->z, Z_NO_FLUSH);
        size_t got = want - g->z.avail_out;
        done += got;
        g->out_pos += got;
        if (rc == Z_STREAM_END) {
            g->boundary = 1;
            if (inflateReset(&g->z) != Z_OK) {
                gzin_fail(g, 0, "reset");
                break;
            }
            continue;
        }
        if (rc == Z_BUF_ERROR)
            continue; /* needs more input */
        if (rc != Z_OK) {
            gzin_fail(g, 0, g->z.msg);
            break;
        }
    }
    if (done == 0 && g->failed) {
        errno = EIO;
        return -1;
    }
    return (ssize_t)done;
}

/* Only telling the position is supported (ftello): the decompressed offset. */
static int
gzin_seek(void *cookie, off64_t *off, int whence)
{
    struct gzin *g = cookie;
    if (whence == SEEK_CUR && *off == 0) {
        *off = (off64_t)g->out_pos;
        return 0;
    }
    errno = ESPIPE;
    return -1;
}

static int
gzin_close(void *cookie)
{
    struct gzin *g = cookie;
    if (g->z_ok)
        inflateEnd(&g->z);
    g->z_ok = 0;
    if (g->in && g->in != stdin)
        fclose(g->in);
    g->in = NULL;
    return 0;
}

FILE *
gzin_open(FILE *in, const unsigned char magic[2], struct gzin **state)
{
    *state = NULL;
    struct gzin *g = mem_calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->inbuf = mem_alloc(GZIN_CHUNK);
    /* 16 + MAX_WBITS: a gzip header and trailer, checked (CRC-32, length). */
    if (!g->inbuf || inflateInit2(&g->z, 16 + MAX_WBITS) != Z_OK) {
        mem_free(g->inbuf);
        mem_free(g);
        return NULL;
    }
    g->z_ok = 1;
    g->in = in;
    memcpy(g->inbuf, magic, 2);
    g->z.next_in = g->inbuf;
    g->z.avail_in = 2;
    g->in_bytes = 2;
    cookie_io_functions_t io = {.read = gzin_read, .seek = gzin_seek, .close = gzin_close};
    FILE *f = fopencookie(g, "rb", io);
    if (!f) {
        inflateEnd(&g->z);
        mem_free(g->inbuf);
        mem_free(g);
        return NULL;
    }
    *state = g;
    return f;
}

int
gzin_failed(const struct gzin *g, const char **reason, int *cut_off)
{
    if (!g || !g->failed)
        return 0;
    if (reason)
        *reason = g->reason;
    if (cut_off)
        *cut_off = g->cut_off;
    return 1;
}

uint64_t
gzin_in_bytes(const struct gzin *g)
{
    return g ? g->in_bytes : 0;
}

void
gzin_free(struct gzin *g)
{
    if (!g)
        return;
    if (g->z_ok)
        inflateEnd(&g->z);
    mem_free(g->inbuf);
    mem_free(g);
}
