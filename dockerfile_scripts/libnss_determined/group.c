/* group database: /run/determined/etc/group */
#include "nss_determined.h"

#include <grp.h>
#include <string.h>
#include <sys/types.h>

enum gr_match { GR_ANY, GR_BY_NAME, GR_BY_GID };

struct gr_query {
    enum gr_match match;
    const char *name;
    gid_t gid;
    struct group *result;
    char *buf;
    size_t buflen;
};

static enum nssdet_line gr_line(char *line, void *arg)
{
    struct gr_query *q = arg;
    char *f[4];
    unsigned int gid;

    /* name:password:GID:member,member,... */
    if (nssdet_split(line, ':', f, 4) != 0 || f[0][0] == '\0' ||
        nssdet_parse_id(f[2], &gid) != 0)
        return NSSDET_SKIP;
    if (q->match == GR_BY_NAME && strcmp(f[0], q->name) != 0)
        return NSSDET_SKIP;
    if (q->match == GR_BY_GID && gid != q->gid)
        return NSSDET_SKIP;

    /* Count the members: "a,b,,c" has three (empty names are dropped). */
    size_t nmem = 0;
    for (char *p = f[3]; *p != '\0';) {
        size_t len = strcspn(p, ",");
        if (len > 0)
            nmem++;
        p += len;
        if (*p == ',')
            p++;
    }

    struct nssdet_buf b = { q->buf, q->buflen };
    struct group *gr = q->result;
    char **mem = nssdet_buf_ptrs(&b, nmem + 1);
    if (mem == NULL || (gr->gr_name = nssdet_buf_str(&b, f[0])) == NULL ||
        (gr->gr_passwd = nssdet_buf_str(&b, f[1])) == NULL)
        return NSSDET_ERANGE;

    size_t i = 0;
    for (char *p = f[3]; *p != '\0';) {
        size_t len = strcspn(p, ",");
        char *next = p + len;
        int more = *next == ',';
        *next = '\0';
        if (len > 0 && (mem[i++] = nssdet_buf_str(&b, p)) == NULL)
            return NSSDET_ERANGE;
        p = more ? next + 1 : next;
    }
    mem[i] = NULL;
    gr->gr_mem = mem;
    gr->gr_gid = gid;
    return NSSDET_FOUND;
}

enum nss_status _nss_determined_getgrnam_r(const char *name, struct group *result, char *buf,
                                           size_t buflen, int *errnop)
{
    struct gr_query q = { GR_BY_NAME, name, 0, result, buf, buflen };
    return nssdet_lookup(NSSDET_GROUP_PATH, gr_line, &q, errnop);
}

enum nss_status _nss_determined_getgrgid_r(gid_t gid, struct group *result, char *buf,
                                           size_t buflen, int *errnop)
{
    struct gr_query q = { GR_BY_GID, NULL, gid, result, buf, buflen };
    return nssdet_lookup(NSSDET_GROUP_PATH, gr_line, &q, errnop);
}

static struct nssdet_ent gr_ent = NSSDET_ENT_INIT(NSSDET_GROUP_PATH);

enum nss_status _nss_determined_setgrent(int stayopen)
{
    (void)stayopen;
    return nssdet_setent(&gr_ent);
}

enum nss_status _nss_determined_getgrent_r(struct group *result, char *buf, size_t buflen,
                                           int *errnop)
{
    struct gr_query q = { GR_ANY, NULL, 0, result, buf, buflen };
    return nssdet_getent(&gr_ent, gr_line, &q, errnop);
}

enum nss_status _nss_determined_endgrent(void)
{
    return nssdet_endent(&gr_ent);
}
