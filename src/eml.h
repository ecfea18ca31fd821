/* eml.h - the --eml writer: one file per message, streamed as its bytes are read, created
 * in a directory opened once at start-up so that what its path names later changes nothing.
 * Files are created new (never an existing name, never through a symlink), mode 0600. */
#ifndef SMTPSNIFF_EML_H
#define SMTPSNIFF_EML_H

#include <stddef.h>
#include <stdint.h>

/* What became of one message's file (the report's data.eml_status). */
enum eml_status {
    EML_OPEN,    /* still being written */
    EML_WHOLE,   /* the whole message, as the report's bytes and sha256 describe it */
    EML_PARTIAL, /* the capture lacks part of the message: the file holds what it has */
    EML_FAILED,  /* the file could not be created or written whole */
};

struct eml;
struct eml_file;

struct eml_stats {
    uint64_t written; /* files holding their whole message */
    uint64_t partial; /* files of messages the capture did not hold whole */
    uint64_t errors;  /* messages whose file could not be created or written whole */
    uint64_t renamed; /* files written under another name because theirs was taken */
};

/* Opens the directory the files go to: it must be a directory, and not one anyone may write
 * to without the sticky bit (others could then replace the files written there). Returns the
 * descriptor, or -1 with the reason in err. Raises the soft limit on open files to the hard
 * one: every message being read holds its file open (when none is left, the message is a
 * counted failure). */
int eml_dir_open(const char *path, char *err, size_t errlen);

/* dirfd: from eml_dir_open, borrowed; path: how it was named, for messages on stderr. */
struct eml *eml_create(int dirfd, const char *path);
void eml_destroy(struct eml *e);

/* The file for transaction txn (0-based) of session id: DIR/session-<id>-<txn+1>.eml, or the
 * next free name session-<id>-<txn+1>.<k>.eml when that one is taken. NULL only without
 * memory (counted in errors); a file that could not be created comes back EML_FAILED. */
struct eml_file *eml_begin(struct eml *e, uint64_t id, uint64_t txn);
void eml_write(struct eml_file *f, const uint8_t *p, size_t n);
/* The envelope, as a delivering MTA records it, before any byte of the message: a
 * "Return-Path: <from>" line (when from is not NULL; the null path gives "<>") and one
 * "X-Smtpsniff-Rcpt-To: <addr>" line per accepted recipient. Wire bytes: a CR, LF or other
 * control byte in an address is written as '?', so no address can end its line or start a
 * header field of its own; an address is cut at 900 bytes. */
void eml_envelope(struct eml_file *f, const uint8_t *from, size_t from_len,
                  const uint8_t *const *rcpt, const size_t *rcpt_len, size_t nrcpt);
/* Bytes of envelope lines at the start of the file, before the message. */
uint64_t eml_file_envelope_bytes(const struct eml_file *f);
/* Closes the file; whole: the message came through to its end with no byte missing. */
void eml_end(struct eml_file *f, int whole);
void eml_file_free(struct eml_file *f);

uint64_t eml_file_txn(const struct eml_file *f);
/* The name in DIR, NULL when no file was created. */
const char *eml_file_name(const struct eml_file *f);
enum eml_status eml_file_status(const struct eml_file *f);
const char *eml_status_name(enum eml_status st);

/* The lost message of a caller that could not keep track of it (no memory): counted. */
void eml_lost(struct eml *e);
void eml_get_stats(const struct eml *e, struct eml_stats *st);
/* At the end of the run: the totals of what went wrong, on stderr (nothing when all went
 * well). Returns 1 when a message could not be written. */
int eml_finish(struct eml *e);

#endif
