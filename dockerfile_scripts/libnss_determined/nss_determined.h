/*
 * nss_determined: a glibc NSS module (service name "determined") that resolves
 * users, groups and shadow entries from files Determined writes into a running
 * container:
 *
 *   /run/determined/etc/passwd   (passwd(5) format)
 *   /run/determined/etc/group    (group(5) format)
 *   /run/determined/etc/shadow   (shadow(5) format)
 *
 * The images list "determined" first on the passwd, group and shadow lines of
 * /etc/nsswitch.conf (as the 0.22.1 images did: OpenShift appends the running
 * UID to /etc/passwd, and Determined's entry must win). A missing file, or a
 * malformed line, is never an error: the file or line is treated as if it
 * held no entry (NSS_STATUS_NOTFOUND / skipped).
 *
 * LIBNSS_DETERMINED_DEBUG set to a non-empty value (in the environment of a
 * process that is not setuid) makes every lookup print one line on stderr:
 * "libnss_determined: <file>: <what> -> <result>".
 *
 * Internal declarations shared by the per-database sources. Only the
 * _nss_determined_* entry points are exported from the shared object.
 */
#ifndef NSS_DETERMINED_H
#define NSS_DETERMINED_H

/* getline, ftello/fseeko: POSIX.1-2008. Every source includes this header first. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <nss.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>

#define NSSDET_HIDDEN __attribute__((visibility("hidden")))

#define NSSDET_PASSWD_PATH "/run/determined/etc/passwd"
#define NSSDET_GROUP_PATH "/run/determined/etc/group"
#define NSSDET_SHADOW_PATH "/run/determined/etc/shadow"

/* What a line callback tells the scanner. */
enum nssdet_line {
    NSSDET_SKIP,   /* malformed or not the wanted entry: read on */
    NSSDET_FOUND,  /* the result was filled in */
    NSSDET_ERANGE, /* the wanted entry does not fit in the caller's buffer */
};

/*
 * Called with one line of a database file (newline removed, NUL-terminated,
 * writable: the callback may split it in place).
 */
typedef enum nssdet_line (*nssdet_line_fn)(char *line, void *arg);

/*
 * Reads lines from fp and hands each non-empty, non-comment line to fn until
 * fn returns NSSDET_FOUND (NSS_STATUS_SUCCESS) or NSSDET_ERANGE
 * (NSS_STATUS_TRYAGAIN, *errnop = ERANGE) or the file ends
 * (NSS_STATUS_NOTFOUND, *errnop = ENOENT). With rewind_on_erange, the file
 * position is put back to the start of the line that did not fit, so that a
 * retry with a larger buffer returns the same entry.
 */
NSSDET_HIDDEN enum nss_status nssdet_scan(FILE *fp, nssdet_line_fn fn, void *arg,
                                          int rewind_on_erange, int *errnop);

/*
 * Opens path and scans it (no rewinding). A file that cannot be opened
 * because it does not exist yields NSS_STATUS_NOTFOUND; any other open
 * error yields NSS_STATUS_UNAVAIL with *errnop set.
 */
/* nssdet_debug prints "libnss_determined: " and the message on stderr when
 * LIBNSS_DETERMINED_DEBUG is set and not empty. */
NSSDET_HIDDEN void nssdet_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* nssdet_status_name is "SUCCESS", "NOTFOUND", "UNAVAIL" or "TRYAGAIN". */
NSSDET_HIDDEN const char *nssdet_status_name(enum nss_status status);

NSSDET_HIDDEN enum nss_status nssdet_lookup(const char *path, nssdet_line_fn fn, void *arg,
                                            int *errnop);

/* Enumeration state of one database (setXXent/getXXent_r/endXXent). */
struct nssdet_ent {
    pthread_mutex_t lock;
    FILE *fp;
    const char *path;
};

#define NSSDET_ENT_INIT(p) { PTHREAD_MUTEX_INITIALIZER, NULL, (p) }

NSSDET_HIDDEN enum nss_status nssdet_setent(struct nssdet_ent *ent);
NSSDET_HIDDEN enum nss_status nssdet_getent(struct nssdet_ent *ent, nssdet_line_fn fn, void *arg,
                                            int *errnop);
NSSDET_HIDDEN enum nss_status nssdet_endent(struct nssdet_ent *ent);

/*
 * Splits line in place at every sep into exactly n fields. Returns 0 on
 * success and -1 when the line does not have exactly n fields.
 */
NSSDET_HIDDEN int nssdet_split(char *line, char sep, char **fields, size_t n);

/* Parses a decimal id (uid_t/gid_t range, no sign, no spaces). 0 or -1. */
NSSDET_HIDDEN int nssdet_parse_id(const char *s, unsigned int *out);

/*
 * Parses an optional decimal long: the empty string gives -1 (the shadow(5)
 * convention for "unset"). Returns 0 or -1.
 */
NSSDET_HIDDEN int nssdet_parse_long(const char *s, long *out);

/* Bump allocator over the caller's buffer. */
struct nssdet_buf {
    char *p;
    size_t left;
};

/* Copies s into the buffer; NULL when it does not fit. */
NSSDET_HIDDEN char *nssdet_buf_str(struct nssdet_buf *b, const char *s);

/* Reserves n pointers, aligned; NULL when they do not fit. */
NSSDET_HIDDEN char **nssdet_buf_ptrs(struct nssdet_buf *b, size_t n);

#endif /* NSS_DETERMINED_H */
