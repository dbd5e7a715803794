/* Line scanning, field parsing and buffer handling shared by all databases. */
#include "nss_determined.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

enum nss_status nssdet_scan(FILE *fp, nssdet_line_fn fn, void *arg, int rewind_on_erange,
                            int *errnop)
{
    char *line = NULL;
    size_t cap = 0;
    enum nss_status status = NSS_STATUS_NOTFOUND;

    *errnop = ENOENT;
    for (;;) {
        off_t start = ftello(fp);
        ssize_t n = getline(&line, &cap, fp);
        if (n < 0) {
            if (!feof(fp) && errno == ENOMEM) {
                *errnop = ENOMEM;
                status = NSS_STATUS_TRYAGAIN;
            }
            break;
        }
        if (n > 0 && line[n - 1] == '\n')
            line[--n] = '\0';
        /* A NUL byte inside a line makes it malformed. */
        if (strlen(line) != (size_t)n)
            continue;
        if (n == 0 || line[0] == '#')
            continue;

        enum nssdet_line r = fn(line, arg);
        if (r == NSSDET_FOUND) {
            *errnop = 0;
            status = NSS_STATUS_SUCCESS;
            break;
        }
        if (r == NSSDET_ERANGE) {
            if (rewind_on_erange && start >= 0)
                fseeko(fp, start, SEEK_SET);
            *errnop = ERANGE;
            status = NSS_STATUS_TRYAGAIN;
            break;
        }
    }
    free(line);
    return status;
}

void nssdet_debug(const char *fmt, ...)
{
    const char *on = secure_getenv("LIBNSS_DETERMINED_DEBUG");
    if (on == NULL || on[0] == '\0')
        return;
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    fputs("libnss_determined: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    errno = saved;
}

const char *nssdet_status_name(enum nss_status status)
{
    switch (status) {
    case NSS_STATUS_SUCCESS:
        return "SUCCESS";
    case NSS_STATUS_NOTFOUND:
        return "NOTFOUND";
    case NSS_STATUS_UNAVAIL:
        return "UNAVAIL";
    case NSS_STATUS_TRYAGAIN:
        return "TRYAGAIN";
    case NSS_STATUS_RETURN:
        return "RETURN";
    }
    return "?";
}

static FILE *open_db(const char *path, enum nss_status *status, int *errnop)
{
    FILE *fp = fopen(path, "re");
    if (fp != NULL)
        return fp;
    nssdet_debug("%s: cannot open: %s", path, strerror(errno));
    if (errno == ENOENT || errno == ENOTDIR) {
        *errnop = ENOENT;
        *status = NSS_STATUS_NOTFOUND;
    } else {
        *errnop = errno;
        *status = NSS_STATUS_UNAVAIL;
    }
    return NULL;
}

enum nss_status nssdet_lookup(const char *path, nssdet_line_fn fn, void *arg, int *errnop)
{
    enum nss_status status;
    FILE *fp = open_db(path, &status, errnop);
    if (fp == NULL)
        return status;
    status = nssdet_scan(fp, fn, arg, 0, errnop);
    fclose(fp);
    nssdet_debug("%s: lookup -> %s", path, nssdet_status_name(status));
    return status;
}

enum nss_status nssdet_setent(struct nssdet_ent *ent)
{
    pthread_mutex_lock(&ent->lock);
    if (ent->fp != NULL) {
        rewind(ent->fp);
    } else {
        enum nss_status ignored;
        int err;
        /* A missing file is fine here: getent will report "not found". */
        ent->fp = open_db(ent->path, &ignored, &err);
    }
    pthread_mutex_unlock(&ent->lock);
    return NSS_STATUS_SUCCESS;
}

enum nss_status nssdet_getent(struct nssdet_ent *ent, nssdet_line_fn fn, void *arg, int *errnop)
{
    enum nss_status status;

    pthread_mutex_lock(&ent->lock);
    if (ent->fp == NULL)
        ent->fp = open_db(ent->path, &status, errnop);
    if (ent->fp != NULL)
        status = nssdet_scan(ent->fp, fn, arg, 1, errnop);
    pthread_mutex_unlock(&ent->lock);
    return status;
}

enum nss_status nssdet_endent(struct nssdet_ent *ent)
{
    pthread_mutex_lock(&ent->lock);
    if (ent->fp != NULL) {
        fclose(ent->fp);
        ent->fp = NULL;
    }
    pthread_mutex_unlock(&ent->lock);
    return NSS_STATUS_SUCCESS;
}

int nssdet_split(char *line, char sep, char **fields, size_t n)
{
    size_t i = 0;
    char *p = line;

    for (;;) {
        if (i == n)
            return -1;
        fields[i++] = p;
        char *end = strchr(p, sep);
        if (end == NULL)
            break;
        *end = '\0';
        p = end + 1;
    }
    return i == n ? 0 : -1;
}

static int parse_ulong(const char *s, unsigned long *out)
{
    unsigned long v = 0;

    if (*s == '\0')
        return -1;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        unsigned long d = (unsigned long)(*s - '0');
        if (v > (ULONG_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int nssdet_parse_id(const char *s, unsigned int *out)
{
    unsigned long v;

    /* (uid_t)-1 is never a valid id. */
    if (parse_ulong(s, &v) != 0 || v >= (unsigned long)UINT32_MAX)
        return -1;
    *out = (unsigned int)v;
    return 0;
}

int nssdet_parse_long(const char *s, long *out)
{
    unsigned long v;

    if (*s == '\0') {
        *out = -1;
        return 0;
    }
    if (parse_ulong(s, &v) != 0 || v > (unsigned long)LONG_MAX)
        return -1;
    *out = (long)v;
    return 0;
}

char *nssdet_buf_str(struct nssdet_buf *b, const char *s)
{
    size_t n = strlen(s) + 1;
    if (n > b->left)
        return NULL;
    char *dst = b->p;
    memcpy(dst, s, n);
    b->p += n;
    b->left -= n;
    return dst;
}

char **nssdet_buf_ptrs(struct nssdet_buf *b, size_t n)
{
    uintptr_t addr = (uintptr_t)b->p;
    size_t pad = (sizeof(char *) - addr % sizeof(char *)) % sizeof(char *);

    if (pad > b->left || n > (b->left - pad) / sizeof(char *))
        return NULL;
    char **ptrs = (char **)(void *)(b->p + pad);
    b->p += pad + n * sizeof(char *);
    b->left -= pad + n * sizeof(char *);
    return ptrs;
}
