/* shadow database: /run/determined/etc/shadow */
#include "nss_determined.h"

#include <shadow.h>
#include <string.h>

struct sp_query {
    const char *name; /* NULL: any entry (enumeration) */
    struct spwd *result;
    char *buf;
    size_t buflen;
};

static enum nssdet_line sp_line(char *line, void *arg)
{
    struct sp_query *q = arg;
    char *f[9];
    long num[6];
    long flag;

    /* name:password:lastchg:min:max:warn:inactive:expire:flag */
    if (nssdet_split(line, ':', f, 9) != 0 || f[0][0] == '\0')
        return NSSDET_SKIP;
    for (int i = 0; i < 6; i++)
        if (nssdet_parse_long(f[2 + i], &num[i]) != 0)
            return NSSDET_SKIP;
    if (nssdet_parse_long(f[8], &flag) != 0)
        return NSSDET_SKIP;
    if (q->name != NULL && strcmp(f[0], q->name) != 0)
        return NSSDET_SKIP;

    struct nssdet_buf b = { q->buf, q->buflen };
    struct spwd *sp = q->result;
    if ((sp->sp_namp = nssdet_buf_str(&b, f[0])) == NULL ||
        (sp->sp_pwdp = nssdet_buf_str(&b, f[1])) == NULL)
        return NSSDET_ERANGE;
    sp->sp_lstchg = num[0];
    sp->sp_min = num[1];
    sp->sp_max = num[2];
    sp->sp_warn = num[3];
    sp->sp_inact = num[4];
    sp->sp_expire = num[5];
    sp->sp_flag = (unsigned long)flag; /* empty: -1, i.e. ~0ul, as glibc does */
    return NSSDET_FOUND;
}

enum nss_status _nss_determined_getspnam_r(const char *name, struct spwd *result, char *buf,
                                           size_t buflen, int *errnop)
{
    struct sp_query q = { name, result, buf, buflen };
    return nssdet_lookup(NSSDET_SHADOW_PATH, sp_line, &q, errnop);
}

static struct nssdet_ent sp_ent = NSSDET_ENT_INIT(NSSDET_SHADOW_PATH);

enum nss_status _nss_determined_setspent(int stayopen)
{
    (void)stayopen;
    return nssdet_setent(&sp_ent);
}

enum nss_status _nss_determined_getspent_r(struct spwd *result, char *buf, size_t buflen,
                                           int *errnop)
{
    struct sp_query q = { NULL, result, buf, buflen };
    return nssdet_getent(&sp_ent, sp_line, &q, errnop);
}

enum nss_status _nss_determined_endspent(void)
{
    return nssdet_endent(&sp_ent);
}
