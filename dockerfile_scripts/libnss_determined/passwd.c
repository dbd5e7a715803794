/* passwd database: /run/determined/etc/passwd */
#include "nss_determined.h"

#include <pwd.h>
#include <string.h>
#include <sys/types.h>

enum pw_match { PW_ANY, PW_BY_NAME, PW_BY_UID };

struct pw_query {
    enum pw_match match;
    const char *name;
    uid_t uid;
    struct passwd *result;
    char *buf;
    size_t buflen;
};

static enum nssdet_line pw_line(char *line, void *arg)
{
    struct pw_query *q = arg;
    char *f[7];
    unsigned int uid, gid;

    /* name:password:UID:GID:GECOS:directory:shell */
    if (nssdet_split(line, ':', f, 7) != 0 || f[0][0] == '\0' ||
        nssdet_parse_id(f[2], &uid) != 0 || nssdet_parse_id(f[3], &gid) != 0)
        return NSSDET_SKIP;
    if (q->match == PW_BY_NAME && strcmp(f[0], q->name) != 0)
        return NSSDET_SKIP;
    if (q->match == PW_BY_UID && uid != q->uid)
        return NSSDET_SKIP;

    struct nssdet_buf b = { q->buf, q->buflen };
    struct passwd *pw = q->result;
    if ((pw->pw_name = nssdet_buf_str(&b, f[0])) == NULL ||
        (pw->pw_passwd = nssdet_buf_str(&b, f[1])) == NULL ||
        (pw->pw_gecos = nssdet_buf_str(&b, f[4])) == NULL ||
        (pw->pw_dir = nssdet_buf_str(&b, f[5])) == NULL ||
        (pw->pw_shell = nssdet_buf_str(&b, f[6])) == NULL)
        return NSSDET_ERANGE;
    pw->pw_uid = uid;
    pw->pw_gid = gid;
    return NSSDET_FOUND;
}

enum nss_status _nss_determined_getpwnam_r(const char *name, struct passwd *result, char *buf,
                                           size_t buflen, int *errnop)
{
    struct pw_query q = { PW_BY_NAME, name, 0, result, buf, buflen };
    return nssdet_lookup(NSSDET_PASSWD_PATH, pw_line, &q, errnop);
}

enum nss_status _nss_determined_getpwuid_r(uid_t uid, struct passwd *result, char *buf,
                                           size_t buflen, int *errnop)
{
    struct pw_query q = { PW_BY_UID, NULL, uid, result, buf, buflen };
    return nssdet_lookup(NSSDET_PASSWD_PATH, pw_line, &q, errnop);
}

static struct nssdet_ent pw_ent = NSSDET_ENT_INIT(NSSDET_PASSWD_PATH);

enum nss_status _nss_determined_setpwent(int stayopen)
{
    (void)stayopen;
    return nssdet_setent(&pw_ent);
}

enum nss_status _nss_determined_getpwent_r(struct passwd *result, char *buf, size_t buflen,
                                           int *errnop)
{
    struct pw_query q = { PW_ANY, NULL, 0, result, buf, buflen };
    return nssdet_getent(&pw_ent, pw_line, &q, errnop);
}

enum nss_status _nss_determined_endpwent(void)
{
    return nssdet_endent(&pw_ent);
}
