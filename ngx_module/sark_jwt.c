/*
 * JWT (JWS compact) verification over OpenSSL 3 (see sark_jwt.h).
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "sark_jwt.h"


struct sark_jwt_key_s {
    sark_jwt_alg_e   alg;
    EVP_MAC_CTX     *mac;       /* HS256: keyed, duplicated for each use */
    EVP_PKEY        *pkey;      /* RS256, ES256 */
    EVP_MD          *md;        /* RS256, ES256: SHA-256 */
    size_t           kid_len;   /* a JWK's "kid"; 0: none */
    char             kid[SARK_JWT_MAX_KID];
};

/* wraps the caller's allocator to tell "out of memory" from bad input */
typedef struct {
    sark_json_alloc_pt   alloc;
    void                *actx;
    int                  failed;
} sark_jwt_pool_t;


static void sark_jwt_set_err(char *err, size_t err_len, const char *msg);
static sark_jwt_rc_e sark_jwt_fail(char *err, size_t err_len,
    sark_jwt_rc_e rc, const char *msg);
static void *sark_jwt_alloc(void *ctx, size_t size);
static int sark_jwt_no_pass(char *buf, int size, int rwflag, void *u);
static int sark_jwt_ieq(const char *s, size_t len, const char *lit);
static int sark_jwt_eq(const char *s, size_t len, const char *lit);
static int sark_jwt_b64url_decode(const char *s, size_t n,
    unsigned char *out, size_t *out_len);
static sark_jwt_rc_e sark_jwt_decode_json(sark_jwt_pool_t *pool,
    const char *s, size_t n, const sark_json_t **out, const char *what,
    char *err, size_t err_len);
static int sark_jwt_check_hs256(const sark_jwt_key_t *k,
    const unsigned char *data, size_t n, const unsigned char *sig,
    size_t sig_len);
static int sark_jwt_check_pkey(const sark_jwt_key_t *k,
    const unsigned char *data, size_t n, const unsigned char *sig,
    size_t sig_len);
static int sark_jwt_check_es256(const sark_jwt_key_t *k,
    const unsigned char *data, size_t n, const unsigned char *sig,
    size_t sig_len);
static int sark_jwt_key_fits(const sark_jwt_key_t *k, sark_jwt_alg_e alg,
    const sark_json_t *kid);
static sark_jwt_key_t *sark_jwt_key_of(EVP_PKEY *pkey, const char *what,
    char *err, size_t err_len);
static int sark_jwt_jwk_bytes(const sark_json_t *jwk, const char *name,
    unsigned char *out, size_t max, size_t *len);
static long long sark_jwt_seconds(const sark_json_t *v);
static int sark_jwt_claim_str(const sark_json_t *pl, const char *name,
    sark_jwt_str_t *out, int *present);
static int sark_jwt_claim_time(const sark_json_t *pl, const char *name,
    long long *out, int *present);
static int sark_jwt_claim_strs(sark_jwt_pool_t *pool, const sark_json_t *pl,
    const char *name, sark_jwt_str_t **out, size_t *n, int *present);
static sark_jwt_rc_e sark_jwt_claims(sark_jwt_pool_t *pool,
    const sark_json_t *pl, const sark_jwt_opts_t *opts, long long now,
    sark_jwt_claims_t *c, char *err, size_t err_len);


/*
 * times are clamped (exp/nbf/iat to +-2^62, now and leeway to 2^61) so
 * that adding a leeway cannot overflow
 */
#define SARK_JWT_TIME_MAX     (1LL << 62)
#define SARK_JWT_NOW_MAX      (1LL << 61)
#define SARK_JWT_LEEWAY_MAX   (1LL << 61)

#define SARK_JWT_JSON_DEPTH   16


static void
sark_jwt_set_err(char *err, size_t err_len, const char *msg)
{
    if (err != NULL && err_len > 0) {
        snprintf(err, err_len, "%s", msg);
    }
}


static sark_jwt_rc_e
sark_jwt_fail(char *err, size_t err_len, sark_jwt_rc_e rc, const char *msg)
{
    sark_jwt_set_err(err, err_len, msg);

    return rc;
}


static void *
sark_jwt_alloc(void *ctx, size_t size)
{
    sark_jwt_pool_t  *pool = ctx;
    void             *p;

    p = pool->alloc(pool->actx, size);
    if (p == NULL) {
        pool->failed = 1;
    }

    return p;
}


/* never prompt for a pass phrase on the terminal */

static int
sark_jwt_no_pass(char *buf, int size, int rwflag, void *u)
{
    (void) buf;
    (void) size;
    (void) rwflag;
    (void) u;

    return -1;
}


/* ASCII case-insensitive comparison with a literal */

static int
sark_jwt_ieq(const char *s, size_t len, const char *lit)
{
    size_t         i;
    unsigned char  a, b;

    for (i = 0; i < len; i++) {
        if (lit[i] == '\0') {
            return 0;
        }

        a = (unsigned char) s[i];
        b = (unsigned char) lit[i];

        if (a >= 'A' && a <= 'Z') {
            a = (unsigned char) (a + 32);
        }

        if (b >= 'A' && b <= 'Z') {
            b = (unsigned char) (b + 32);
        }

        if (a != b) {
            return 0;
        }
    }

    return lit[len] == '\0';
}


static int
sark_jwt_eq(const char *s, size_t len, const char *lit)
{
    return strlen(lit) == len && memcmp(s, lit, len) == 0;
}


/*
 * Strict base64url (RFC 4648 section 5, no padding): only A-Z a-z 0-9 - _,
 * no length of 4k+1, and the unused low bits of the last character must
 * be zero, so that every value has exactly one encoding.
 */

static int
sark_jwt_b64url_decode(const char *s, size_t n, unsigned char *out,
    size_t *out_len)
{
    unsigned char  c;
    unsigned       acc, bits, v;
    size_t         i, o;

    if (n % 4 == 1) {
        return -1;
    }

    acc = 0;
    bits = 0;
    o = 0;

    for (i = 0; i < n; i++) {
        c = (unsigned char) s[i];

        if (c >= 'A' && c <= 'Z') {
            v = c - 'A';

        } else if (c >= 'a' && c <= 'z') {
            v = c - 'a' + 26;

        } else if (c >= '0' && c <= '9') {
            v = c - '0' + 52;

        } else if (c == '-') {
            v = 62;

        } else if (c == '_') {
            v = 63;

        } else {
            return -1;
        }

        acc = ((acc << 6) | v) & 0xffffff;
        bits += 6;

        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char) (acc >> bits);
        }
    }

    if ((acc & ((1u << bits) - 1)) != 0) {
        return -1;
    }

    *out_len = o;

    return 0;
}


static sark_jwt_rc_e
sark_jwt_decode_json(sark_jwt_pool_t *pool, const char *s, size_t n,
    const sark_json_t **out, const char *what, char *err, size_t err_len)
{
    unsigned char  *buf;
    sark_json_t    *root;
    size_t          len;
    char            msg[64];

    buf = sark_jwt_alloc(pool, n / 4 * 3 + 3);
    if (buf == NULL) {
        return sark_jwt_fail(err, err_len, SARK_JWT_ERROR, "out of memory");
    }

    if (sark_jwt_b64url_decode(s, n, buf, &len) != 0) {
        snprintf(msg, sizeof(msg), "malformed token: %s is not base64url",
                 what);
        return sark_jwt_fail(err, err_len, SARK_JWT_MALFORMED, msg);
    }

    if (sark_json_parse(buf, len, SARK_JWT_JSON_DEPTH, sark_jwt_alloc, pool,
                        &root, NULL, 0)
        != 0)
    {
        if (pool->failed) {
            return sark_jwt_fail(err, err_len, SARK_JWT_ERROR,
                                 "out of memory");
        }

        snprintf(msg, sizeof(msg), "malformed token: %s is not valid JSON",
                 what);
        return sark_jwt_fail(err, err_len, SARK_JWT_MALFORMED, msg);
    }

    if (root->type != SARK_JSON_OBJECT) {
        snprintf(msg, sizeof(msg),
                 "malformed token: %s is not a JSON object", what);
        return sark_jwt_fail(err, err_len, SARK_JWT_MALFORMED, msg);
    }

    *out = root;

    return SARK_JWT_OK;
}


/* these return 1 for a good signature, 0 for a bad one, -1 on failure */

static int
sark_jwt_check_hs256(const sark_jwt_key_t *k, const unsigned char *data,
    size_t n, const unsigned char *sig, size_t sig_len)
{
    EVP_MAC_CTX    *ctx;
    unsigned char   mac[EVP_MAX_MD_SIZE];
    size_t          mac_len;
    int             ok;

    if (sig_len != 32) {
        return 0;
    }

    ctx = EVP_MAC_CTX_dup(k->mac);
    if (ctx == NULL) {
        return -1;
    }

    if (EVP_MAC_update(ctx, data, n) != 1
        || EVP_MAC_final(ctx, mac, &mac_len, sizeof(mac)) != 1)
    {
        EVP_MAC_CTX_free(ctx);
        return -1;
    }

    EVP_MAC_CTX_free(ctx);

    ok = (mac_len == 32 && CRYPTO_memcmp(mac, sig, 32) == 0);

    OPENSSL_cleanse(mac, sizeof(mac));

    return ok;
}


static int
sark_jwt_check_pkey(const sark_jwt_key_t *k, const unsigned char *data,
    size_t n, const unsigned char *sig, size_t sig_len)
{
    EVP_MD_CTX  *ctx;
    int          rc;

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        return -1;
    }

    if (EVP_DigestVerifyInit(ctx, NULL, k->md, NULL, k->pkey) != 1) {
        EVP_MD_CTX_free(ctx);
        return -1;
    }

    rc = EVP_DigestVerify(ctx, sig, sig_len, data, n);

    EVP_MD_CTX_free(ctx);

    return rc == 1;
}


/* JWS carries ECDSA as raw R||S (RFC 7518 3.4); EVP wants DER */

static int
sark_jwt_check_es256(const sark_jwt_key_t *k, const unsigned char *data,
    size_t n, const unsigned char *sig, size_t sig_len)
{
    ECDSA_SIG      *es;
    BIGNUM         *r, *s;
    unsigned char   der[128], *p;
    int             der_len, rc;

    if (sig_len != 64) {
        return 0;
    }

    es = ECDSA_SIG_new();
    r = BN_bin2bn(sig, 32, NULL);
    s = BN_bin2bn(sig + 32, 32, NULL);

    if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1)
    {
        ECDSA_SIG_free(es);
        BN_free(r);
        BN_free(s);
        return -1;
    }

    /* es owns r and s now */

    der_len = i2d_ECDSA_SIG(es, NULL);

    if (der_len <= 0 || der_len > (int) sizeof(der)) {
        ECDSA_SIG_free(es);
        return -1;
    }

    p = der;
    der_len = i2d_ECDSA_SIG(es, &p);

    ECDSA_SIG_free(es);

    if (der_len <= 0) {
        return -1;
    }

    rc = sark_jwt_check_pkey(k, data, n, der, (size_t) der_len);

    OPENSSL_cleanse(der, sizeof(der));

    return rc;
}


/* NumericDate to whole seconds: floor, clamped to +-2^62 */

static long long
sark_jwt_seconds(const sark_json_t *v)
{
    long long  t;
    double     d;

    if (v->is_int) {
        t = v->ival;

    } else {
        d = v->num;

        if (d >= (double) SARK_JWT_TIME_MAX) {
            return SARK_JWT_TIME_MAX;
        }

        if (d <= -(double) SARK_JWT_TIME_MAX) {
            return -SARK_JWT_TIME_MAX;
        }

        t = (long long) d;
        if ((double) t > d) {
            t--;
        }
    }

    if (t > SARK_JWT_TIME_MAX) {
        return SARK_JWT_TIME_MAX;
    }

    if (t < -SARK_JWT_TIME_MAX) {
        return -SARK_JWT_TIME_MAX;
    }

    return t;
}


/* these return 0, or -1 for a claim of the wrong type */

static int
sark_jwt_claim_str(const sark_json_t *pl, const char *name,
    sark_jwt_str_t *out, int *present)
{
    const sark_json_t  *v;

    v = sark_json_get(pl, name);

    *present = (v != NULL);

    if (v == NULL) {
        return 0;
    }

    if (v->type != SARK_JSON_STRING) {
        return -1;
    }

    out->s = v->str;
    out->len = v->len;

    return 0;
}


static int
sark_jwt_claim_time(const sark_json_t *pl, const char *name, long long *out,
    int *present)
{
    const sark_json_t  *v;

    v = sark_json_get(pl, name);

    *present = (v != NULL);

    if (v == NULL) {
        return 0;
    }

    if (v->type != SARK_JSON_NUMBER) {
        return -1;
    }

    *out = sark_jwt_seconds(v);

    return 0;
}


/* also returns -2 when out of memory */

static int
sark_jwt_claim_strs(sark_jwt_pool_t *pool, const sark_json_t *pl,
    const char *name, sark_jwt_str_t **out, size_t *n, int *present)
{
    const sark_json_t  *v, *e;
    sark_jwt_str_t     *a;
    size_t              i;

    v = sark_json_get(pl, name);

    *present = (v != NULL);

    if (v == NULL) {
        return 0;
    }

    if (v->type != SARK_JSON_ARRAY) {
        return -1;
    }

    for (e = v->child; e != NULL; e = e->next) {
        if (e->type != SARK_JSON_STRING) {
            return -1;
        }
    }

    if (v->n == 0) {
        return 0;
    }

    a = sark_jwt_alloc(pool, v->n * sizeof(sark_jwt_str_t));
    if (a == NULL) {
        return -2;
    }

    for (i = 0, e = v->child; e != NULL; e = e->next, i++) {
        a[i].s = e->str;
        a[i].len = e->len;
    }

    *out = a;
    *n = v->n;

    return 0;
}


/* the claims that name a token's kind, and the value of an access token */
static const struct {
    const char  *claim;
    const char  *access;
} sark_jwt_kinds[] = {
    { "type", "access" },
    { "token_type", "access" },
    { "token_use", "access" },
    { "typ", "Bearer" }
};


#define sark_jwt_type_error(name)                                            \
    do {                                                                      \
        snprintf(msg, sizeof(msg), "claim \"%s\" has the wrong type", name);  \
        return sark_jwt_fail(err, err_len, SARK_JWT_BAD_CLAIMS, msg);         \
    } while (0)

#define sark_jwt_strs_error(rc, name)                                        \
    do {                                                                      \
        if ((rc) == -2) {                                                     \
            return sark_jwt_fail(err, err_len, SARK_JWT_ERROR,                \
                                 "out of memory");                            \
        }                                                                     \
        sark_jwt_type_error(name);                                            \
    } while (0)


static sark_jwt_rc_e
sark_jwt_claims(sark_jwt_pool_t *pool, const sark_json_t *pl,
    const sark_jwt_opts_t *opts, long long now, sark_jwt_claims_t *c,
    char *err, size_t err_len)
{
    static const char  *strs[] = { "email", "jti", "agent_id",
                                   "trust_level", "environment" };
    const sark_json_t  *aud, *e;
    sark_jwt_str_t     *dst[5];
    long long           leeway;
    size_t              i;
    char                msg[128];
    int                 rc, has_exp, has_nbf, has_iat, has_iss, has_sub,
                        present, found;

    c->payload = pl;

    /* types first: a claim we know of must have its documented type */

    if (sark_jwt_claim_time(pl, "exp", &c->exp, &has_exp) != 0) {
        sark_jwt_type_error("exp");
    }

    if (!has_exp) {
        return sark_jwt_fail(err, err_len, SARK_JWT_BAD_CLAIMS,
                             "claim \"exp\" is missing");
    }

    if (sark_jwt_claim_time(pl, "nbf", &c->nbf, &has_nbf) != 0) {
        sark_jwt_type_error("nbf");
    }

    if (sark_jwt_claim_time(pl, "iat", &c->iat, &has_iat) != 0) {
        sark_jwt_type_error("iat");
    }

    if (sark_jwt_claim_str(pl, "iss", &c->iss, &has_iss) != 0) {
        sark_jwt_type_error("iss");
    }

    aud = sark_json_get(pl, "aud");

    if (aud != NULL) {
        if (aud->type == SARK_JSON_ARRAY) {
            for (e = aud->child; e != NULL; e = e->next) {
                if (e->type != SARK_JSON_STRING) {
                    sark_jwt_type_error("aud");
                }
            }

        } else if (aud->type != SARK_JSON_STRING) {
            sark_jwt_type_error("aud");
        }
    }

    dst[0] = &c->email;
    dst[1] = &c->jti;
    dst[2] = &c->agent_id;
    dst[3] = &c->trust_level;
    dst[4] = &c->environment;

    for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        if (sark_jwt_claim_str(pl, strs[i], dst[i], &present) != 0) {
            sark_jwt_type_error(strs[i]);
        }
    }

    if (sark_jwt_claim_str(pl, "sub", &c->sub, &has_sub) != 0) {
        sark_jwt_type_error("sub");
    }

    if (has_sub && c->sub.len == 0) {
        return sark_jwt_fail(err, err_len, SARK_JWT_BAD_CLAIMS,
                             "claim \"sub\" is empty");
    }

    if (!has_sub) {
        if (c->agent_id.len == 0) {
            return sark_jwt_fail(err, err_len, SARK_JWT_BAD_CLAIMS,
                                 "claim \"sub\" is missing");
        }

        c->sub = c->agent_id;
    }

    rc = sark_jwt_claim_strs(pool, pl, "roles", &c->roles, &c->nroles,
                             &present);
    if (rc != 0) {
        sark_jwt_strs_error(rc, "roles");
    }

    if (!present) {
        c->roles = sark_jwt_alloc(pool, sizeof(sark_jwt_str_t));
        if (c->roles == NULL) {
            return sark_jwt_fail(err, err_len, SARK_JWT_ERROR,
                                 "out of memory");
        }

        if (sark_jwt_claim_str(pl, "role", c->roles, &present) != 0) {
            sark_jwt_type_error("role");
        }

        if (present) {
            c->nroles = 1;

        } else {
            c->roles = NULL;
        }
    }

    rc = sark_jwt_claim_strs(pool, pl, "teams", &c->teams, &c->nteams,
                             &present);
    if (rc != 0) {
        sark_jwt_strs_error(rc, "teams");
    }

    if (!present) {
        rc = sark_jwt_claim_strs(pool, pl, "groups", &c->teams, &c->nteams,
                                 &present);
        if (rc != 0) {
            sark_jwt_strs_error(rc, "groups");
        }
    }

    rc = sark_jwt_claim_strs(pool, pl, "capabilities", &c->capabilities,
                             &c->ncapabilities, &present);
    if (rc != 0) {
        sark_jwt_strs_error(rc, "capabilities");
    }

    /*
     * Only access tokens are accepted, positively: each claim issuers use
     * to say what kind of token it is must, when present, be a string that
     * says "access token" ("type": "access", "token_type": "access",
     * Cognito's "token_use": "access", Keycloak's "typ": "Bearer"); a
     * refresh, ID or any other token is refused, whatever its case.
     */

    for (i = 0; i < sizeof(sark_jwt_kinds) / sizeof(sark_jwt_kinds[0]); i++) {
        e = sark_json_get(pl, sark_jwt_kinds[i].claim);

        if (e == NULL) {
            continue;
        }

        if (e->type != SARK_JSON_STRING) {
            sark_jwt_type_error(sark_jwt_kinds[i].claim);
        }

        if (!sark_jwt_ieq(e->str, e->len, sark_jwt_kinds[i].access)) {
            snprintf(msg, sizeof(msg), "claim \"%s\" is not \"%s\": only "
                     "access tokens are accepted", sark_jwt_kinds[i].claim,
                     sark_jwt_kinds[i].access);
            return sark_jwt_fail(err, err_len, SARK_JWT_BAD_CLAIMS, msg);
        }
    }

    /* then the values */

    leeway = (long long) opts->leeway;
    if (leeway < 0) {
        leeway = 0;

    } else if (leeway > SARK_JWT_LEEWAY_MAX) {
        leeway = SARK_JWT_LEEWAY_MAX;
    }

    if (now > SARK_JWT_NOW_MAX) {
        now = SARK_JWT_NOW_MAX;

    } else if (now < -SARK_JWT_NOW_MAX) {
        now = -SARK_JWT_NOW_MAX;
    }

    if (now >= c->exp + leeway) {
        return sark_jwt_fail(err, err_len, SARK_JWT_EXPIRED,
                             "token expired");
    }

    if (has_nbf && now + leeway < c->nbf) {
        return sark_jwt_fail(err, err_len, SARK_JWT_NOT_YET_VALID,
                             "token not yet valid");
    }

    if (opts->issuer != NULL) {
        if (!has_iss) {
            return sark_jwt_fail(err, err_len, SARK_JWT_BAD_ISSUER,
                                 "token has no issuer");
        }

        if (!sark_jwt_eq(c->iss.s, c->iss.len, opts->issuer)) {
            return sark_jwt_fail(err, err_len, SARK_JWT_BAD_ISSUER,
                                 "token issuer not accepted");
        }
    }

    if (opts->audience != NULL) {
        if (aud == NULL) {
            return sark_jwt_fail(err, err_len, SARK_JWT_BAD_AUDIENCE,
                                 "token has no audience");
        }

        found = 0;

        if (aud->type == SARK_JSON_STRING) {
            found = sark_jwt_eq(aud->str, aud->len, opts->audience);

        } else {
            for (e = aud->child; e != NULL && !found; e = e->next) {
                found = sark_jwt_eq(e->str, e->len, opts->audience);
            }
        }

        if (!found) {
            return sark_jwt_fail(err, err_len, SARK_JWT_BAD_AUDIENCE,
                                 "token audience not accepted");
        }
    }

    return SARK_JWT_OK;
}


sark_jwt_rc_e
sark_jwt_verify(const char *token, size_t len, const sark_jwt_opts_t *opts,
    long long now, sark_json_alloc_pt alloc, void *actx,
    sark_jwt_claims_t *claims, char *err, size_t err_len)
{
    const sark_jwt_key_t  *k;
    const sark_json_t     *hdr, *pl, *v, *alg_v, *kid;
    sark_jwt_pool_t        pool;
    sark_jwt_alg_e         alg;
    sark_jwt_rc_e          rc;
    unsigned char         *sig;
    size_t                 i, max, d1, d2, sig_len, ndots, nkeys;
    char                   msg[64];
    int                    ok, failed;

    memset(claims, 0, sizeof(sark_jwt_claims_t));

    if (err != NULL && err_len > 0) {
        err[0] = '\0';
    }

    pool.alloc = alloc;
    pool.actx = actx;
    pool.failed = 0;

    max = opts->max_token_len ? opts->max_token_len
                              : SARK_JWT_DEFAULT_MAX_LEN;

    if (token == NULL || len == 0) {
        return sark_jwt_fail(err, err_len, SARK_JWT_MALFORMED,
                             "malformed token: empty");
    }

    if (len > max) {
        return sark_jwt_fail(err, err_len, SARK_JWT_TOO_LONG,
                             "token too long");
    }

    ndots = 0;
    d1 = 0;
    d2 = 0;

    for (i = 0; i < len; i++) {
        if (token[i] == '.') {
            if (ndots == 0) {
                d1 = i;

            } else if (ndots == 1) {
                d2 = i;
            }

            ndots++;
        }
    }

    if (ndots != 2) {
        return sark_jwt_fail(err, err_len, SARK_JWT_MALFORMED,
                             "malformed token: expected three segments");
    }

    if (d1 == 0 || d2 == d1 + 1) {
        return sark_jwt_fail(err, err_len, SARK_JWT_MALFORMED,
                             "malformed token: empty segment");
    }

    /* header */

    rc = sark_jwt_decode_json(&pool, token, d1, &hdr, "header", err,
                              err_len);
    if (rc != SARK_JWT_OK) {
        return rc;
    }

    alg_v = sark_json_get(hdr, "alg");

    if (alg_v == NULL || alg_v->type != SARK_JSON_STRING) {
        return sark_jwt_fail(err, err_len, SARK_JWT_MALFORMED,
                             "malformed token: header has no \"alg\"");
    }

    if (sark_json_get(hdr, "crit") != NULL) {
        return sark_jwt_fail(err, err_len, SARK_JWT_MALFORMED,
                             "malformed token: \"crit\" is not supported");
    }

    v = sark_json_get(hdr, "typ");

    if (v != NULL
        && (v->type != SARK_JSON_STRING
            || !(sark_jwt_ieq(v->str, v->len, "JWT")
                 || sark_jwt_ieq(v->str, v->len, "at+jwt"))))
    {
        return sark_jwt_fail(err, err_len, SARK_JWT_MALFORMED,
                             "malformed token: unsupported \"typ\"");
    }

    if (sark_jwt_eq(alg_v->str, alg_v->len, "HS256")) {
        alg = SARK_JWT_ALG_HS256;

    } else if (sark_jwt_eq(alg_v->str, alg_v->len, "RS256")) {
        alg = SARK_JWT_ALG_RS256;

    } else if (sark_jwt_eq(alg_v->str, alg_v->len, "ES256")) {
        alg = SARK_JWT_ALG_ES256;

    } else if (sark_jwt_ieq(alg_v->str, alg_v->len, "none")) {
        return sark_jwt_fail(err, err_len, SARK_JWT_UNSUPPORTED_ALG,
                             "unsigned tokens are not accepted");

    } else {
        return sark_jwt_fail(err, err_len, SARK_JWT_UNSUPPORTED_ALG,
                             "unsupported token algorithm");
    }

    if (d2 + 1 == len) {
        return sark_jwt_fail(err, err_len, SARK_JWT_UNSUPPORTED_ALG,
                             "unsigned tokens are not accepted");
    }

    /*
     * a token naming its key ("kid") is checked with the keys of that kid
     * and those that have none (secrets, PEM keys); else with all of them
     */

    kid = sark_json_get(hdr, "kid");

    if (kid != NULL && kid->type != SARK_JSON_STRING) {
        return sark_jwt_fail(err, err_len, SARK_JWT_MALFORMED,
                             "malformed token: \"kid\" is not a string");
    }

    nkeys = 0;

    for (i = 0; i < opts->nkeys; i++) {
        if (sark_jwt_key_fits(opts->keys[i], alg, kid)) {
            nkeys++;
        }
    }

    if (nkeys == 0) {
        for (i = 0; i < opts->nkeys; i++) {
            if (sark_jwt_key_fits(opts->keys[i], alg, NULL)) {
                return sark_jwt_fail(err, err_len, SARK_JWT_BAD_SIGNATURE,
                                     "no key with the token's \"kid\"");
            }
        }

        snprintf(msg, sizeof(msg), "no key configured for %s",
                 sark_jwt_alg_name(alg));
        return sark_jwt_fail(err, err_len, SARK_JWT_UNSUPPORTED_ALG, msg);
    }

    /* signature, before anything in the payload is looked at */

    sig_len = len - d2 - 1;

    sig = sark_jwt_alloc(&pool, sig_len / 4 * 3 + 3);
    if (sig == NULL) {
        return sark_jwt_fail(err, err_len, SARK_JWT_ERROR, "out of memory");
    }

    if (sark_jwt_b64url_decode(token + d2 + 1, sig_len, sig, &sig_len) != 0) {
        return sark_jwt_fail(err, err_len, SARK_JWT_MALFORMED,
                             "malformed token: signature is not base64url");
    }

    ok = 0;
    failed = 0;

    for (i = 0; i < opts->nkeys && ok != 1; i++) {
        k = opts->keys[i];

        if (!sark_jwt_key_fits(k, alg, kid)) {
            continue;
        }

        switch (alg) {
        case SARK_JWT_ALG_HS256:
            ok = sark_jwt_check_hs256(k, (const unsigned char *) token, d2,
                                      sig, sig_len);
            break;

        case SARK_JWT_ALG_RS256:
            ok = (sig_len == (size_t) EVP_PKEY_get_size(k->pkey))
                 ? sark_jwt_check_pkey(k, (const unsigned char *) token, d2,
                                       sig, sig_len)
                 : 0;
            break;

        default: /* SARK_JWT_ALG_ES256 */
            ok = sark_jwt_check_es256(k, (const unsigned char *) token, d2,
                                      sig, sig_len);
        }

        if (ok < 0) {
            failed = 1;
        }
    }

    ERR_clear_error();

    if (ok != 1) {
        if (failed) {
            return sark_jwt_fail(err, err_len, SARK_JWT_ERROR,
                                 "signature check failed");
        }

        return sark_jwt_fail(err, err_len, SARK_JWT_BAD_SIGNATURE,
                             "invalid token signature");
    }

    /* payload */

    rc = sark_jwt_decode_json(&pool, token + d1 + 1, d2 - d1 - 1, &pl,
                              "payload", err, err_len);
    if (rc != SARK_JWT_OK) {
        return rc;
    }

    rc = sark_jwt_claims(&pool, pl, opts, now, claims, err, err_len);

    if (rc != SARK_JWT_OK) {
        memset(claims, 0, sizeof(sark_jwt_claims_t));
    }

    return rc;
}


sark_jwt_key_t *
sark_jwt_key_hs256(const unsigned char *secret, size_t len, char *err,
    size_t err_len)
{
    sark_jwt_key_t  *k;
    OSSL_PARAM       params[2];
    EVP_MAC         *mac;
    char             digest[] = "SHA256";

    if (secret == NULL || len < SARK_JWT_HS256_MIN_SECRET) {
        sark_jwt_set_err(err, err_len,
                         "HS256 secret must be at least 32 bytes");
        return NULL;
    }

    k = OPENSSL_zalloc(sizeof(sark_jwt_key_t));
    if (k == NULL) {
        sark_jwt_set_err(err, err_len, "out of memory");
        return NULL;
    }

    k->alg = SARK_JWT_ALG_HS256;

    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac == NULL) {
        goto failed;
    }

    k->mac = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);

    if (k->mac == NULL) {
        goto failed;
    }

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 digest, 0);
    params[1] = OSSL_PARAM_construct_end();

    if (EVP_MAC_init(k->mac, secret, len, params) != 1) {
        goto failed;
    }

    return k;

failed:

    ERR_clear_error();
    sark_jwt_key_free(k);
    sark_jwt_set_err(err, err_len, "HMAC-SHA256 is not available");

    return NULL;
}


sark_jwt_key_t *
sark_jwt_key_pem_file(const char *path, char *err, size_t err_len)
{
    EVP_PKEY        *pkey;
    X509            *x;
    BIO             *bio;
    int              saved;
    char             what[208];

    bio = BIO_new_file(path, "r");
    if (bio == NULL) {
        saved = errno;
        ERR_clear_error();
        if (err != NULL && err_len > 0) {
            snprintf(err, err_len, "cannot open \"%s\": %s", path,
                     strerror(saved));
        }
        return NULL;
    }

    pkey = PEM_read_bio_PUBKEY(bio, NULL, sark_jwt_no_pass, NULL);

    if (pkey == NULL && BIO_reset(bio) >= 0) {
        x = PEM_read_bio_X509(bio, NULL, sark_jwt_no_pass, NULL);

        if (x != NULL) {
            pkey = X509_get_pubkey(x);
            X509_free(x);
        }
    }

    BIO_free(bio);
    ERR_clear_error();

    if (pkey == NULL) {
        if (err != NULL && err_len > 0) {
            snprintf(err, err_len, "no \"BEGIN PUBLIC KEY\" or "
                     "\"BEGIN CERTIFICATE\" block in \"%s\"", path);
        }
        return NULL;
    }

    snprintf(what, sizeof(what), "\"%.200s\"", path);

    return sark_jwt_key_of(pkey, what, err, err_len);
}


/* a public key of one of ours (RSA >= 2048 bits, EC P-256); takes pkey */

static sark_jwt_key_t *
sark_jwt_key_of(EVP_PKEY *pkey, const char *what, char *err, size_t err_len)
{
    sark_jwt_key_t  *k;
    size_t           glen;
    char             group[64];

    k = OPENSSL_zalloc(sizeof(sark_jwt_key_t));
    if (k == NULL) {
        EVP_PKEY_free(pkey);
        sark_jwt_set_err(err, err_len, "out of memory");
        return NULL;
    }

    k->pkey = pkey;

    if (EVP_PKEY_is_a(pkey, "RSA")) {
        if (EVP_PKEY_get_bits(pkey) < SARK_JWT_RSA_MIN_BITS) {
            if (err != NULL && err_len > 0) {
                snprintf(err, err_len, "RSA key in %s is shorter than "
                         "%d bits", what, SARK_JWT_RSA_MIN_BITS);
            }
            goto failed;
        }

        k->alg = SARK_JWT_ALG_RS256;

    } else if (EVP_PKEY_is_a(pkey, "EC")) {
        if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME,
                                           group, sizeof(group), &glen)
            != 1
            || (strcmp(group, "prime256v1") != 0
                && strcmp(group, "P-256") != 0))
        {
            if (err != NULL && err_len > 0) {
                snprintf(err, err_len, "EC key in %s is not on curve "
                         "P-256", what);
            }
            goto failed;
        }

        k->alg = SARK_JWT_ALG_ES256;

    } else {
        if (err != NULL && err_len > 0) {
            snprintf(err, err_len, "key in %s is neither RSA nor "
                     "EC P-256", what);
        }
        goto failed;
    }

    k->md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (k->md == NULL) {
        sark_jwt_set_err(err, err_len, "SHA-256 is not available");
        goto failed;
    }

    return k;

failed:

    ERR_clear_error();
    sark_jwt_key_free(k);

    return NULL;
}


/*
 * One JWK of a JWKS (RFC 7517, 7518): {"kty": "RSA", "n", "e"} is an
 * RS256 key, {"kty": "EC", "crv": "P-256", "x", "y"} an ES256 key; "kid"
 * is kept.  A key for something else ("use" other than "sig", an "alg"
 * other than the key's, another kty or curve) is not an error: NULL with
 * *skip set.  NULL without it: a key that is malformed or too weak.
 */

sark_jwt_key_t *
sark_jwt_key_jwk(const sark_json_t *jwk, int *skip, char *err, size_t err_len)
{
    int                   rsa;
    size_t                n_len, e_len, x_len, y_len;
    EVP_PKEY             *pkey;
    EVP_PKEY_CTX         *ctx;
    OSSL_PARAM           *params;
    OSSL_PARAM_BLD       *bld;
    sark_jwt_key_t       *k;
    BIGNUM               *n, *e;
    const sark_json_t    *kty, *use, *alg, *crv, *kid;
    unsigned char         nb[1024], eb[16], point[65];
    char                  what[80];

    *skip = 0;

    if (jwk == NULL || jwk->type != SARK_JSON_OBJECT) {
        sark_jwt_set_err(err, err_len, "a key is not a JSON object");
        return NULL;
    }

    kty = sark_json_get(jwk, "kty");
    use = sark_json_get(jwk, "use");
    alg = sark_json_get(jwk, "alg");
    crv = sark_json_get(jwk, "crv");
    kid = sark_json_get(jwk, "kid");

    if (kty == NULL || kty->type != SARK_JSON_STRING
        || (kid != NULL && (kid->type != SARK_JSON_STRING
                            || kid->len >= SARK_JWT_MAX_KID)))
    {
        sark_jwt_set_err(err, err_len, "a key has no string \"kty\", or a "
                         "\"kid\" that is not a short string");
        return NULL;
    }

    rsa = sark_jwt_eq(kty->str, kty->len, "RSA");

    if ((use != NULL && !(use->type == SARK_JSON_STRING
                          && sark_jwt_eq(use->str, use->len, "sig")))
        || !(rsa || sark_jwt_eq(kty->str, kty->len, "EC"))
        || (alg != NULL && !(alg->type == SARK_JSON_STRING
                             && sark_jwt_eq(alg->str, alg->len,
                                            rsa ? "RS256" : "ES256")))
        || (!rsa && !(crv != NULL && crv->type == SARK_JSON_STRING
                      && sark_jwt_eq(crv->str, crv->len, "P-256"))))
    {
        *skip = 1;
        sark_jwt_set_err(err, err_len, "not an RS256 or ES256 signing key");
        return NULL;
    }

    snprintf(what, sizeof(what), "JWK \"%.*s\"",
             kid ? (int) (kid->len < 40 ? kid->len : 40) : 0,
             kid ? kid->str : "");

    pkey = NULL;
    ctx = NULL;
    params = NULL;
    n = NULL;
    e = NULL;

    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL) {
        goto nomem;
    }

    if (rsa) {
        if (sark_jwt_jwk_bytes(jwk, "n", nb, sizeof(nb), &n_len) != 0
            || sark_jwt_jwk_bytes(jwk, "e", eb, sizeof(eb), &e_len) != 0)
        {
            sark_jwt_set_err(err, err_len, "an RSA key's \"n\" or \"e\" "
                             "is not base64url of the right size");
            goto failed;
        }

        n = BN_bin2bn(nb, (int) n_len, NULL);
        e = BN_bin2bn(eb, (int) e_len, NULL);

        if (n == NULL || e == NULL
            || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n)
            || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
        {
            goto nomem;
        }

    } else {
        if (sark_jwt_jwk_bytes(jwk, "x", point + 1, 32, &x_len) != 0
            || sark_jwt_jwk_bytes(jwk, "y", point + 33, 32, &y_len) != 0
            || x_len != 32 || y_len != 32)
        {
            sark_jwt_set_err(err, err_len, "an EC key's \"x\" or \"y\" is "
                             "not base64url of 32 bytes");
            goto failed;
        }

        point[0] = 0x04;   /* uncompressed */

        if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                             "prime256v1", 0)
            || !OSSL_PARAM_BLD_push_octet_string(bld,
                                                 OSSL_PKEY_PARAM_PUB_KEY,
                                                 point, sizeof(point)))
        {
            goto nomem;
        }
    }

    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, rsa ? "RSA" : "EC", NULL);

    if (params == NULL || ctx == NULL
        || EVP_PKEY_fromdata_init(ctx) != 1
        || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
    {
        sark_jwt_set_err(err, err_len, rsa ? "an RSA key is not valid"
                                           : "an EC key is not a point on "
                                             "P-256");
        goto failed;
    }

    if (!rsa) {

        /* the point must be on the curve */

        EVP_PKEY_CTX_free(ctx);
        ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);

        if (ctx == NULL || EVP_PKEY_public_check(ctx) != 1) {
            sark_jwt_set_err(err, err_len, "an EC key is not a point on "
                             "P-256");
            goto failed;
        }
    }

    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);

    k = sark_jwt_key_of(pkey, what, err, err_len);

    if (k != NULL && kid != NULL) {
        memcpy(k->kid, kid->str, kid->len);
        k->kid_len = kid->len;
    }

    return k;

nomem:

    sark_jwt_set_err(err, err_len, "out of memory");

failed:

    ERR_clear_error();
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);

    return NULL;
}


/* a JWK member, base64url without padding, decoded: 0, or -1 */

static int
sark_jwt_jwk_bytes(const sark_json_t *jwk, const char *name,
    unsigned char *out, size_t max, size_t *len)
{
    const sark_json_t  *v;

    v = sark_json_get(jwk, name);

    if (v == NULL || v->type != SARK_JSON_STRING || v->len == 0
        || v->len > max / 3 * 4 + 3)
    {
        return -1;
    }

    if (sark_jwt_b64url_decode(v->str, v->len, out, len) != 0
        || *len > max)
    {
        return -1;
    }

    return 0;
}


/* k may check a token of alg whose header names `kid` (or none) */

static int
sark_jwt_key_fits(const sark_jwt_key_t *k, sark_jwt_alg_e alg,
    const sark_json_t *kid)
{
    if (k == NULL || k->alg != alg) {
        return 0;
    }

    if (kid == NULL || k->kid_len == 0) {
        return 1;
    }

    return k->kid_len == kid->len && memcmp(k->kid, kid->str, kid->len) == 0;
}


void
sark_jwt_key_free(sark_jwt_key_t *k)
{
    if (k == NULL) {
        return;
    }

    EVP_MAC_CTX_free(k->mac);
    EVP_PKEY_free(k->pkey);
    EVP_MD_free(k->md);
    OPENSSL_free(k);
}


sark_jwt_alg_e
sark_jwt_key_alg(const sark_jwt_key_t *k)
{
    return k->alg;
}


const char *
sark_jwt_alg_name(sark_jwt_alg_e alg)
{
    switch (alg) {
    case SARK_JWT_ALG_HS256:
        return "HS256";
    case SARK_JWT_ALG_RS256:
        return "RS256";
    case SARK_JWT_ALG_ES256:
        return "ES256";
    }

    return "unknown";
}


const char *
sark_jwt_strerror(sark_jwt_rc_e rc)
{
    switch (rc) {
    case SARK_JWT_OK:
        return "ok";
    case SARK_JWT_MALFORMED:
        return "malformed token";
    case SARK_JWT_UNSUPPORTED_ALG:
        return "unsupported token algorithm";
    case SARK_JWT_BAD_SIGNATURE:
        return "invalid token signature";
    case SARK_JWT_EXPIRED:
        return "token expired";
    case SARK_JWT_NOT_YET_VALID:
        return "token not yet valid";
    case SARK_JWT_BAD_ISSUER:
        return "token issuer not accepted";
    case SARK_JWT_BAD_AUDIENCE:
        return "token audience not accepted";
    case SARK_JWT_BAD_CLAIMS:
        return "invalid token claims";
    case SARK_JWT_TOO_LONG:
        return "token too long";
    case SARK_JWT_ERROR:
        return "internal error";
    }

    return "unknown error";
}
