/* eml.c - the --eml writer. The message bytes come from whoever is on the wire and
 * smtpsniff runs as root: every file is made new with openat(O_CREAT | O_EXCL | O_NOFOLLOW)
 * under the directory descriptor opened at start-up, so a symlink or a file planted at a
 * name is never followed nor overwritten, and renaming the directory's path changes nothing.
 * Each message is written as it is read: nothing of it is kept in memory. */
#include "eml.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem.h"

/* Other names tried when a file's own is taken, before giving up on the message. */
#define EML_MAX_TRIES 1000

enum eml_fail { EML_F_CREATE, EML_F_WRITE, EML_F_NOMEM, EML_F_COUNT };

struct eml {
    int dirfd;
    const char *path;
    struct eml_stats st;
    int told[EML_F_COUNT]; /* each kind of failure is told once, then counted */
    int told_renamed;
};

struct eml_file {
    struct eml *e;
    uint64_t txn;
    int fd;
    enum eml_status status;
    uint64_t env_bytes;
    char name[80];
};

int
eml_dir_open(const char *path, char *err, size_t errlen)
{
    struct stat sb;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0) {
        snprintf(err, errlen, "--eml %s: %s", path,
                 errno == ENOTDIR ? "not a directory" : strerror(errno));
        return -1;
    }
    if (fstat(fd, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        snprintf(err, errlen, "--eml %s: not a directory", path);
        close(fd);
        return -1;
    }
    /* Anyone could rename or delete the files there and put others in their place. */
    if ((sb.st_mode & S_IWOTH) && !(sb.st_mode & S_ISVTX)) {
        snprintf(err, errlen,
                 "--eml %s: anyone may write to this directory and it has no sticky bit: "
                 "refused",
                 path);
        close(fd);
        return -1;
    }
    /* Each message being read holds its file open: as many as the hard limit allows. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    return fd;
}

struct eml *
eml_create(int dirfd, const char *path)
{
    struct eml *e = mem_calloc(1, sizeof *e);

    if (!e)
        return NULL;
    e->dirfd = dirfd;
    e->path = path;
    return e;
}

void
eml_destroy(struct eml *e)
{
    mem_free(e);
}

static void
eml_fail(struct eml *e, enum eml_fail kind, const char *name, int err)
{
    static const char *const what[EML_F_COUNT] = {"cannot create", "cannot write",
                                                  "out of memory for"};

    e->st.errors++;
    if (e->told[kind])
        return;
    e->told[kind] = 1;
    fprintf(stderr, "smtpsniff: %s %s/%s: %s (further such failures are only counted)\n",
            what[kind], e->path, name, strerror(err));
}

void
eml_lost(struct eml *e)
{
    if (e)
        eml_fail(e, EML_F_NOMEM, "a message", ENOMEM);
}

/* Creates the file under its own name or, when that is taken, the first free other one. */
static void
eml_open_file(struct eml_file *f, uint64_t id)
{
    struct eml *e = f->e;
    char first[sizeof f->name];
    int err = 0;

    for (unsigned k = 0; k < EML_MAX_TRIES; k++) {
        if (k == 0)
            snprintf(f->name, sizeof f->name, "session-%" PRIu64 "-%" PRIu64 ".eml", id,
                     f->txn + 1);
        else
            snprintf(f->name, sizeof f->name, "session-%" PRIu64 "-%" PRIu64 ".%u.eml", id,
                     f->txn + 1, k);
        f->fd =
            openat(e->dirfd, f->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (f->fd >= 0) {
            if (k > 0) {
                e->st.renamed++;
                if (!e->told_renamed)
                    fprintf(stderr,
                            "smtpsniff: %s/%s exists: written as %s instead (the other "
                            "taken names are only counted)\n",
                            e->path, first, f->name);
                e->told_renamed = 1;
            }
            return;
        }
        err = errno;
        if (err != EEXIST)
            break;
        if (k == 0)
            memcpy(first, f->name, sizeof first);
    }
    eml_fail(e, EML_F_CREATE, err == EEXIST ? first : f->name, err);
    f->name[0] = '\0';
    f->status = EML_FAILED;
}

struct eml_file *
eml_begin(struct eml *e, uint64_t id, uint64_t txn)
{
    struct eml_file *f;

    if (!e)
        return NULL;
    f = mem_calloc(1, sizeof *f);
    if (!f) {
        eml_lost(e);
        return NULL;
    }
    f->e = e;
    f->txn = txn;
    f->fd = -1;
    f->status = EML_OPEN;
    eml_open_file(f, id);
    return f;
}

static void
eml_file_failed(struct eml_file *f, enum eml_fail kind, int err)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    f->status = EML_FAILED;
    eml_fail(f->e, kind, f->name, err);
}

void
eml_write(struct eml_file *f, const uint8_t *p, size_t n)
{
    if (!f || f->fd < 0)
        return;
    while (n > 0) {
        ssize_t w = write(f->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            eml_file_failed(f, EML_F_WRITE, w < 0 ? errno : EIO);
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Longest address written: a header line stays under RFC 5322's 998 characters. */
#define EML_MAX_ADDR 900

static void
eml_env_line(struct eml_file *f, const char *name, const uint8_t *p, size_t n)
{
    uint8_t line[EML_MAX_ADDR + 64];
    size_t len = strlen(name), i;

    if (n > EML_MAX_ADDR)
        n = EML_MAX_ADDR;
    memcpy(line, name, len);
    line[len++] = '<';
    for (i = 0; i < n; i++)
        line[len++] = p[i] < 0x20 || p[i] == 0x7f ? '?' : p[i];
    line[len++] = '>';
    line[len++] = '\r';
    line[len++] = '\n';
    eml_write(f, line, len);
    f->env_bytes += len;
}

void
eml_envelope(struct eml_file *f, const uint8_t *from, size_t from_len, const uint8_t *const *rcpt,
             const size_t *rcpt_len, size_t nrcpt)
{
    size_t i;

    if (!f || f->fd < 0)
        return;
    if (from)
        eml_env_line(f, "Return-Path: ", from, from_len);
    for (i = 0; i < nrcpt; i++)
        eml_env_line(f, "X-Smtpsniff-Rcpt-To: ", rcpt[i], rcpt_len[i]);
}

uint64_t
eml_file_envelope_bytes(const struct eml_file *f)
{
    return f->env_bytes;
}

void
eml_end(struct eml_file *f, int whole)
{
    if (!f || f->status != EML_OPEN)
        return;
    /* Some file systems tell a failed write only here. */
    if (close(f->fd) != 0) {
        f->fd = -1;
        eml_file_failed(f, EML_F_WRITE, errno);
        return;
    }
    f->fd = -1;
    f->status = whole ? EML_WHOLE : EML_PARTIAL;
    if (whole)
        f->e->st.written++;
    else
        f->e->st.partial++;
}

void
eml_file_free(struct eml_file *f)
{
    if (!f)
        return;
    /* A file still open here is one whose message never ended: it is cut. */
    eml_end(f, 0);
    mem_free(f);
}

uint64_t
eml_file_txn(const struct eml_file *f)
{
    return f->txn;
}

const char *
eml_file_name(const struct eml_file *f)
{
    return f->name[0] ? f->name : NULL;
}

enum eml_status
eml_file_status(const struct eml_file *f)
{
    return f->status;
}

const char *
eml_status_name(enum eml_status st)
{
    static const char *const names[] = {"open", "whole", "partial", "failed"};

    return (unsigned)st < sizeof names / sizeof names[0] ? names[st] : "failed";
}

void
eml_get_stats(const struct eml *e, struct eml_stats *st)
{
    if (e)
        *st = e->st;
    else
        memset(st, 0, sizeof *st);
}

int
eml_finish(struct eml *e)
{
    if (!e)
        return 0;
    if (e->st.renamed > 1)
        fprintf(stderr,
                "smtpsniff: %" PRIu64 " .eml files were written under another name "
                "(theirs was taken)\n",
                e->st.renamed);
    if (e->st.errors)
        fprintf(stderr, "smtpsniff: %" PRIu64 " messages could not be written to %s\n",
                e->st.errors, e->path);
    return e->st.errors > 0;
}
