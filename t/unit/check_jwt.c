/*
 * Unit tests for ngx_module/sark_jwt.c.  Run from the repository root:
 * the RSA and EC keys are read from t/unit/keys/ (test-only keys).
 * Tokens are signed here with OpenSSL.
 */

#include <check.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "sark_jwt.h"


#define KEYS  "t/unit/keys/"
#define NOW   1700000000LL

#include "test_arena.h"


static arena_t  arena;


/* ---- key material, loaded once in main() ---- */

static const unsigned char  hs_secret[] =
    "0123456789abcdef0123456789abcdef-test-only";
static const unsigned char  hs_secret2[] =
    "another-secret-that-is-long-enough-for-hs256";

static EVP_PKEY        *rsa_priv, *rsa2_priv, *ec_priv, *ec2_priv;
static sark_jwt_key_t  *k_hs, *k_hs2, *k_rsa, *k_rsa2, *k_rsa_crt, *k_ec,
                       *k_ec2, *k_ec_crt, *k_hs_pem;
static char             rsa_pub_pem[4096];
static size_t           rsa_pub_pem_len;


static EVP_PKEY *
load_private(const char *path)
{
    EVP_PKEY  *k;
    FILE      *f;

    f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "cannot open %s (run from the repository root)\n",
                path);
        exit(2);
    }

    k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);

    if (k == NULL) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }

    return k;
}


static sark_jwt_key_t *
load_public(const char *path)
{
    sark_jwt_key_t  *k;
    char             err[SARK_JWT_ERR_LEN];

    k = sark_jwt_key_pem_file(path, err, sizeof(err));
    if (k == NULL) {
        fprintf(stderr, "%s\n", err);
        exit(2);
    }

    return k;
}


static void
keys_load(void)
{
    FILE  *f;
    char   err[SARK_JWT_ERR_LEN];

    rsa_priv = load_private(KEYS "rsa.key");
    rsa2_priv = load_private(KEYS "rsa2.key");
    ec_priv = load_private(KEYS "ec.key");
    ec2_priv = load_private(KEYS "ec2.key");

    k_hs = sark_jwt_key_hs256(hs_secret, sizeof(hs_secret) - 1, err,
                              sizeof(err));
    k_hs2 = sark_jwt_key_hs256(hs_secret2, sizeof(hs_secret2) - 1, err,
                               sizeof(err));
    k_rsa = load_public(KEYS "rsa.pub");
    k_rsa2 = load_public(KEYS "rsa2.pub");
    k_rsa_crt = load_public(KEYS "rsa.crt");
    k_ec = load_public(KEYS "ec.pub");
    k_ec2 = load_public(KEYS "ec2.pub");
    k_ec_crt = load_public(KEYS "ec.crt");

    f = fopen(KEYS "rsa.pub", "r");
    if (f == NULL) {
        exit(2);
    }
    rsa_pub_pem_len = fread(rsa_pub_pem, 1, sizeof(rsa_pub_pem), f);
    fclose(f);

    /* the public key's PEM text used as an HMAC secret */
    k_hs_pem = sark_jwt_key_hs256((unsigned char *) rsa_pub_pem,
                                  rsa_pub_pem_len, err, sizeof(err));

    if (k_hs == NULL || k_hs2 == NULL || k_hs_pem == NULL) {
        fprintf(stderr, "HS256 keys: %s\n", err);
        exit(2);
    }
}


static void
keys_free(void)
{
    EVP_PKEY_free(rsa_priv);
    EVP_PKEY_free(rsa2_priv);
    EVP_PKEY_free(ec_priv);
    EVP_PKEY_free(ec2_priv);
    sark_jwt_key_free(k_hs);
    sark_jwt_key_free(k_hs2);
    sark_jwt_key_free(k_rsa);
    sark_jwt_key_free(k_rsa2);
    sark_jwt_key_free(k_rsa_crt);
    sark_jwt_key_free(k_ec);
    sark_jwt_key_free(k_ec2);
    sark_jwt_key_free(k_ec_crt);
    sark_jwt_key_free(k_hs_pem);
}


/* ---- token construction ---- */

typedef enum {
    HOW_NONE,           /* no signature: token ends with '.' */
    HOW_HMAC,           /* key: secret bytes, keylen */
    HOW_RSA,            /* key: EVP_PKEY, PKCS#1 v1.5 SHA-256 */
    HOW_EC,             /* key: EVP_PKEY, raw R||S */
    HOW_EC_DER,         /* key: EVP_PKEY, DER as OpenSSL makes it */
    HOW_RAW             /* key: signature bytes, keylen */
} how_e;


static size_t
b64url(const unsigned char *in, size_t n, char *out)
{
    static const char  tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned           v;
    size_t             i, o;

    o = 0;

    for (i = 0; i + 2 < n; i += 3) {
        v = (unsigned) in[i] << 16 | (unsigned) in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }

    if (n - i == 1) {
        v = (unsigned) in[i] << 16;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];

    } else if (n - i == 2) {
        v = (unsigned) in[i] << 16 | (unsigned) in[i + 1] << 8;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
    }

    out[o] = '\0';

    return o;
}


static size_t
b64url_dec(const char *s, size_t n, unsigned char *out)
{
    unsigned  acc, bits, v;
    size_t    i, o;
    char      c;

    acc = 0;
    bits = 0;
    o = 0;

    for (i = 0; i < n; i++) {
        c = s[i];
        v = (c >= 'A' && c <= 'Z') ? (unsigned) (c - 'A')
            : (c >= 'a' && c <= 'z') ? (unsigned) (c - 'a' + 26)
            : (c >= '0' && c <= '9') ? (unsigned) (c - '0' + 52)
            : (c == '-') ? 62u : 63u;
        acc = (acc << 6) | v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char) (acc >> bits);
        }
    }

    return o;
}


static size_t
sign_pkey(EVP_PKEY *k, const char *data, size_t n, unsigned char *sig,
    size_t cap)
{
    EVP_MD_CTX  *c;
    size_t       len;

    c = EVP_MD_CTX_new();
    CHECK(c != NULL);
    CHECK(EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, k) == 1);

    len = cap;
    CHECK(EVP_DigestSign(c, sig, &len, (const unsigned char *) data, n) == 1);

    EVP_MD_CTX_free(c);

    return len;
}


static size_t
der_to_raw(const unsigned char *der, size_t n, unsigned char *raw)
{
    const unsigned char  *p;
    const BIGNUM         *r, *s;
    ECDSA_SIG            *es;

    p = der;
    es = d2i_ECDSA_SIG(NULL, &p, (long) n);
    CHECK(es != NULL);

    ECDSA_SIG_get0(es, &r, &s);
    CHECK(BN_bn2binpad(r, raw, 32) == 32);
    CHECK(BN_bn2binpad(s, raw + 32, 32) == 32);

    ECDSA_SIG_free(es);

    return 64;
}


/* returns one of 8 rotating static buffers */

static char *
mk(const char *hdr, const char *pl, how_e how, const void *key,
    size_t keylen)
{
    static char     bufs[8][24576];
    static int      which;
    unsigned char   sig[1024], der[256];
    unsigned int    hlen;
    size_t          n, len;
    char           *out;

    out = bufs[which++ & 7];

    CHECK(strlen(hdr) + strlen(pl) < 12000);

    n = b64url((const unsigned char *) hdr, strlen(hdr), out);
    out[n++] = '.';
    n += b64url((const unsigned char *) pl, strlen(pl), out + n);

    switch (how) {
    case HOW_NONE:
        len = 0;
        break;

    case HOW_HMAC:
        hlen = sizeof(sig);
        CHECK(HMAC(EVP_sha256(), key, (int) keylen,
                   (const unsigned char *) out, n, sig, &hlen) != NULL);
        len = hlen;
        break;

    case HOW_RSA:
        len = sign_pkey((EVP_PKEY *) key, out, n, sig, sizeof(sig));
        break;

    case HOW_EC:
        len = sign_pkey((EVP_PKEY *) key, out, n, der, sizeof(der));
        len = der_to_raw(der, len, sig);
        break;

    case HOW_EC_DER:
        len = sign_pkey((EVP_PKEY *) key, out, n, sig, sizeof(sig));
        break;

    default:
        CHECK(keylen <= sizeof(sig));
        memcpy(sig, key, keylen);
        len = keylen;
    }

    out[n++] = '.';
    b64url(sig, len, out + n);

    return out;
}


static const char *const  alg_names[] = { "HS256", "RS256", "ES256" };


/* token of alg i (0 HS256, 1 RS256, 2 ES256) with the good key */

static char *
tok_alg(int i, const char *pl)
{
    char  hdr[64];

    snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"typ\":\"JWT\"}",
             alg_names[i]);

    switch (i) {
    case 0:
        return mk(hdr, pl, HOW_HMAC, hs_secret, sizeof(hs_secret) - 1);
    case 1:
        return mk(hdr, pl, HOW_RSA, rsa_priv, 0);
    default:
        return mk(hdr, pl, HOW_EC, ec_priv, 0);
    }
}


static char *
tok_hs(const char *pl)
{
    return tok_alg(0, pl);
}


static char *
tok_hdr(const char *hdr, const char *pl)
{
    return mk(hdr, pl, HOW_HMAC, hs_secret, sizeof(hs_secret) - 1);
}


/* printf into one of 8 rotating static buffers */

static const char *
fmt(const char *f, ...)
{
    static char  bufs[8][16384];
    static int   which;
    va_list      ap;
    char        *b;

    b = bufs[which++ & 7];

    va_start(ap, f);
    vsnprintf(b, sizeof(bufs[0]), f, ap);
    va_end(ap);

    return b;
}


#define STD  "\"sub\":\"user-1\",\"email\":\"u1@example.com\"," \
             "\"roles\":[\"admin\",\"dev\"],\"teams\":[\"t1\"],"  \
             "\"iat\":1700000000,\"jti\":\"j-1\""

/* standard claims valid at NOW, plus extra members */
#define PL(extra)  "{" STD ",\"exp\":1700000600" extra "}"


/* ---- verification ---- */

static const sark_jwt_key_t  *all_keys[3];
static sark_jwt_opts_t        opts;
static sark_jwt_claims_t      claims;
static char                   err[SARK_JWT_ERR_LEN];


static void
setup(void)
{
    memset(&arena, 0, sizeof(arena_t));

    all_keys[0] = k_hs;
    all_keys[1] = k_rsa;
    all_keys[2] = k_ec;

    memset(&opts, 0, sizeof(opts));
    opts.keys = all_keys;
    opts.nkeys = 3;
    opts.max_token_len = 16384;
}


static void
teardown(void)
{
    arena_reset(&arena);
}


static void
check_err_safe(const char *tok, sark_jwt_rc_e rc)
{
    size_t  i;

    CHECK(err[0] != '\0');
    CHECK(strlen(err) < 80);
    CHECK(strstr(err, "eyJ") == NULL);

    for (i = 0; err[i] != '\0'; i++) {
        CHECK(err[i] >= 0x20 && err[i] < 0x7f);
    }

    /* the claims are cleared on failure */
    CHECK(claims.sub.s == NULL && claims.payload == NULL
          && claims.roles == NULL);

    (void) tok;
    (void) rc;
}


static sark_jwt_rc_e
verify_at(const char *tok, long long now)
{
    sark_jwt_rc_e  rc;

    rc = sark_jwt_verify(tok, strlen(tok), &opts, now, arena_alloc, &arena,
                         &claims, err, sizeof(err));

    if (rc != SARK_JWT_OK) {
        check_err_safe(tok, rc);
    }

    CHECK(ERR_peek_error() == 0);

    return rc;
}


static sark_jwt_rc_e
verify(const char *tok)
{
    return verify_at(tok, NOW);
}


#define expect(tok, want)                                                     \
    do {                                                                      \
        sark_jwt_rc_e  rc_ = verify(tok);                                     \
        ck_assert_msg(rc_ == (want), "%s:%d: got %s (%s), want %s",           \
                      __FILE__, __LINE__, sark_jwt_strerror(rc_), err,        \
                      sark_jwt_strerror(want));                               \
    } while (0)

#define expect_pl(pl, want)  expect(tok_hs(pl), want)


static int
str_is(sark_jwt_str_t s, const char *want)
{
    return s.s != NULL && s.len == strlen(want)
           && memcmp(s.s, want, s.len) == 0 && s.s[s.len] == '\0';
}


/* ---- keys ---- */

START_TEST(test_key_load)
{
    static const struct {
        const char  *path;
        const char  *msg;
    } bad[] = {
        { KEYS "missing.pub", "cannot open" },
        { KEYS "rsa.key", "BEGIN PUBLIC KEY" },
        { KEYS "README", "BEGIN PUBLIC KEY" },
        { KEYS "rsa1024.pub", "2048" },
        { KEYS "ec384.pub", "P-256" },
        { KEYS "ed25519.pub", "neither RSA nor EC P-256" },
        { KEYS, "" },
    };

    sark_jwt_key_t  *k;
    unsigned char    secret[64];
    size_t           i;

    memset(secret, 'x', sizeof(secret));

    k = sark_jwt_key_hs256(secret, 31, err, sizeof(err));
    ck_assert_ptr_null(k);
    ck_assert_str_eq(err, "HS256 secret must be at least 32 bytes");

    ck_assert_ptr_null(sark_jwt_key_hs256(NULL, 40, err, sizeof(err)));
    ck_assert_ptr_null(sark_jwt_key_hs256(secret, 0, NULL, 0));

    k = sark_jwt_key_hs256(secret, 32, err, sizeof(err));
    ck_assert_ptr_nonnull(k);
    ck_assert_int_eq(sark_jwt_key_alg(k), SARK_JWT_ALG_HS256);
    sark_jwt_key_free(k);

    ck_assert_int_eq(sark_jwt_key_alg(k_rsa), SARK_JWT_ALG_RS256);
    ck_assert_int_eq(sark_jwt_key_alg(k_rsa_crt), SARK_JWT_ALG_RS256);
    ck_assert_int_eq(sark_jwt_key_alg(k_ec), SARK_JWT_ALG_ES256);
    ck_assert_int_eq(sark_jwt_key_alg(k_ec_crt), SARK_JWT_ALG_ES256);

    ck_assert_str_eq(sark_jwt_alg_name(SARK_JWT_ALG_HS256), "HS256");
    ck_assert_str_eq(sark_jwt_alg_name(SARK_JWT_ALG_RS256), "RS256");
    ck_assert_str_eq(sark_jwt_alg_name(SARK_JWT_ALG_ES256), "ES256");

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        k = sark_jwt_key_pem_file(bad[i].path, err, sizeof(err));
        ck_assert_msg(k == NULL, "%s loaded", bad[i].path);
        ck_assert_msg(err[0] != '\0' && strstr(err, bad[i].msg) != NULL,
                      "%s: \"%s\"", bad[i].path, err);
        ck_assert_msg(ERR_peek_error() == 0, "%s: error queue not empty",
                      bad[i].path);

        ck_assert_ptr_null(sark_jwt_key_pem_file(bad[i].path, NULL, 0));
    }

    sark_jwt_key_free(NULL);
}
END_TEST


START_TEST(test_strerror)
{
    const char  *seen[SARK_JWT_ERROR + 1];
    int          i, j;

    for (i = SARK_JWT_OK; i <= SARK_JWT_ERROR; i++) {
        seen[i] = sark_jwt_strerror((sark_jwt_rc_e) i);
        ck_assert_ptr_nonnull(seen[i]);
        ck_assert(seen[i][0] != '\0');

        for (j = 0; j < i; j++) {
            ck_assert_str_ne(seen[i], seen[j]);
        }
    }

    ck_assert_str_eq(sark_jwt_strerror(SARK_JWT_OK), "ok");
    ck_assert_str_eq(sark_jwt_strerror(SARK_JWT_EXPIRED), "token expired");
    ck_assert_str_eq(sark_jwt_strerror((sark_jwt_rc_e) 999), "unknown error");
}
END_TEST


/* ---- valid tokens ---- */

START_TEST(test_valid)
{
    const char  *tok;

    tok = tok_alg(_i, PL(""));
    expect(tok, SARK_JWT_OK);
    ck_assert_str_eq(err, "");

    ck_assert(str_is(claims.sub, "user-1"));
    ck_assert(str_is(claims.email, "u1@example.com"));
    ck_assert(str_is(claims.jti, "j-1"));
    ck_assert_ptr_null(claims.iss.s);
    ck_assert_uint_eq(claims.nroles, 2);
    ck_assert(str_is(claims.roles[0], "admin"));
    ck_assert(str_is(claims.roles[1], "dev"));
    ck_assert_uint_eq(claims.nteams, 1);
    ck_assert(str_is(claims.teams[0], "t1"));
    ck_assert_int_eq(claims.exp, NOW + 600);
    ck_assert_int_eq(claims.iat, NOW);
    ck_assert_int_eq(claims.nbf, 0);
    ck_assert_ptr_null(claims.agent_id.s);
    ck_assert_uint_eq(claims.ncapabilities, 0);
    ck_assert_ptr_nonnull(claims.payload);
    ck_assert_ptr_nonnull(sark_json_get(claims.payload, "jti"));

    /* only the key of the token's own type is needed */
    all_keys[0] = (_i == 0) ? k_hs : (_i == 1) ? k_rsa : k_ec;
    opts.nkeys = 1;
    expect(tok, SARK_JWT_OK);

    /* no typ header at all */
    expect(mk(fmt("{\"alg\":\"%s\"}", alg_names[_i]), PL(""),
              _i == 0 ? HOW_HMAC : _i == 1 ? HOW_RSA : HOW_EC,
              _i == 0 ? (const void *) hs_secret
                      : _i == 1 ? (const void *) rsa_priv
                                : (const void *) ec_priv,
              sizeof(hs_secret) - 1),
           SARK_JWT_OK);
}
END_TEST


START_TEST(test_cert_keys)
{
    all_keys[0] = k_rsa_crt;
    all_keys[1] = k_ec_crt;
    opts.nkeys = 2;

    expect(tok_alg(1, PL("")), SARK_JWT_OK);
    expect(tok_alg(2, PL("")), SARK_JWT_OK);
    expect(tok_alg(0, PL("")), SARK_JWT_UNSUPPORTED_ALG);
}
END_TEST


/* the JWKS keys of jwks.json: three of ours, two skipped, chosen by kid */
START_TEST(test_jwks)
{
    int                    skip, ours, skipped;
    FILE                  *f;
    char                   doc[16384], jerr[SARK_JSON_ERR_LEN];
    size_t                 n;
    sark_json_t           *root;
    sark_jwt_key_t        *jk[8];
    const sark_json_t     *v;
    const sark_jwt_key_t  *keys[8];

    f = fopen(KEYS "jwks.json", "r");
    ck_assert_ptr_nonnull(f);
    n = fread(doc, 1, sizeof(doc), f);
    fclose(f);

    arena_reset(&arena);
    ck_assert_int_eq(sark_json_parse((unsigned char *) doc, n, 16,
                                     arena_alloc, &arena, &root, jerr,
                                     sizeof(jerr)), 0);

    ours = 0;
    skipped = 0;

    for (v = sark_json_get(root, "keys")->child; v; v = v->next) {
        jk[ours] = sark_jwt_key_jwk(v, &skip, err, sizeof(err));

        if (jk[ours] != NULL) {
            keys[ours] = jk[ours];
            ours++;

        } else {
            ck_assert_msg(skip, "a key refused: %s", err);
            skipped++;
        }

        ck_assert(ERR_peek_error() == 0);
    }

    ck_assert_int_eq(ours, 3);
    ck_assert_int_eq(skipped, 2);
    ck_assert_int_eq(sark_jwt_key_alg(jk[0]), SARK_JWT_ALG_RS256);
    ck_assert_int_eq(sark_jwt_key_alg(jk[1]), SARK_JWT_ALG_ES256);

    opts.keys = keys;
    opts.nkeys = 3;

    /* the kid picks the key; no kid tries all of the algorithm */
    expect(mk("{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}", PL(""), HOW_RSA,
              rsa_priv, 0), SARK_JWT_OK);
    expect(mk("{\"alg\":\"RS256\",\"kid\":\"rsa-2\"}", PL(""), HOW_RSA,
              rsa2_priv, 0), SARK_JWT_OK);
    expect(mk("{\"alg\":\"ES256\",\"kid\":\"ec-1\"}", PL(""), HOW_EC,
              ec_priv, 0), SARK_JWT_OK);
    expect(mk("{\"alg\":\"RS256\"}", PL(""), HOW_RSA, rsa2_priv, 0),
           SARK_JWT_OK);

    /* a key that claims another's kid, an unknown kid, a kid not a string */
    expect(mk("{\"alg\":\"RS256\",\"kid\":\"rsa-1\"}", PL(""), HOW_RSA,
              rsa2_priv, 0), SARK_JWT_BAD_SIGNATURE);
    expect(mk("{\"alg\":\"RS256\",\"kid\":\"gone\"}", PL(""), HOW_RSA,
              rsa_priv, 0), SARK_JWT_BAD_SIGNATURE);
    expect(mk("{\"alg\":\"RS256\",\"kid\":1}", PL(""), HOW_RSA,
              rsa_priv, 0), SARK_JWT_MALFORMED);

    /* an RSA kid on an ES256 token finds no ES256 key */
    expect(mk("{\"alg\":\"ES256\",\"kid\":\"rsa-1\"}", PL(""), HOW_EC,
              ec_priv, 0), SARK_JWT_BAD_SIGNATURE);

    /* a key without kid (a PEM file) still checks a token with one */
    keys[3] = k_ec2;
    opts.nkeys = 4;
    expect(mk("{\"alg\":\"ES256\",\"kid\":\"other\"}", PL(""), HOW_EC,
              ec2_priv, 0), SARK_JWT_OK);

    while (ours) {
        sark_jwt_key_free(jk[--ours]);
    }
}
END_TEST


START_TEST(test_several_keys)
{
    const sark_jwt_key_t  *keys[7];

    keys[0] = k_hs2;
    keys[1] = NULL;
    keys[2] = k_rsa2;
    keys[3] = k_ec2;
    keys[4] = k_hs;
    keys[5] = k_rsa;
    keys[6] = k_ec;

    opts.keys = keys;
    opts.nkeys = 7;

    expect(tok_alg(0, PL("")), SARK_JWT_OK);
    expect(tok_alg(1, PL("")), SARK_JWT_OK);
    expect(tok_alg(2, PL("")), SARK_JWT_OK);
    expect(mk("{\"alg\":\"HS256\"}", PL(""), HOW_HMAC, hs_secret2,
              sizeof(hs_secret2) - 1), SARK_JWT_OK);
    expect(mk("{\"alg\":\"RS256\"}", PL(""), HOW_RSA, rsa2_priv, 0),
           SARK_JWT_OK);
    expect(mk("{\"alg\":\"ES256\"}", PL(""), HOW_EC, ec2_priv, 0),
           SARK_JWT_OK);

    /* only the second keys configured: the first keys' tokens fail */
    opts.nkeys = 4;
    expect(tok_alg(0, PL("")), SARK_JWT_BAD_SIGNATURE);
    expect(tok_alg(1, PL("")), SARK_JWT_BAD_SIGNATURE);
    expect(tok_alg(2, PL("")), SARK_JWT_BAD_SIGNATURE);

    /* no keys at all */
    opts.nkeys = 0;
    expect(tok_alg(0, PL("")), SARK_JWT_UNSUPPORTED_ALG);
}
END_TEST


START_TEST(test_typ)
{
    expect(tok_hdr("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", PL("")),
           SARK_JWT_OK);
    expect(tok_hdr("{\"alg\":\"HS256\",\"typ\":\"jwt\"}", PL("")),
           SARK_JWT_OK);
    expect(tok_hdr("{\"typ\":\"at+jwt\",\"alg\":\"HS256\"}", PL("")),
           SARK_JWT_OK);
    expect(tok_hdr("{\"alg\":\"HS256\",\"typ\":\"AT+JWT\"}", PL("")),
           SARK_JWT_OK);
    expect(tok_hdr("{\"alg\":\"HS256\",\"kid\":\"k1\",\"x5u\":\"http://x\","
                   "\"jku\":\"http://y\",\"cty\":\"x\"}", PL("")),
           SARK_JWT_OK);

    expect(tok_hdr("{\"alg\":\"HS256\",\"typ\":\"JWS\"}", PL("")),
           SARK_JWT_MALFORMED);
    expect(tok_hdr("{\"alg\":\"HS256\",\"typ\":\"\"}", PL("")),
           SARK_JWT_MALFORMED);
    expect(tok_hdr("{\"alg\":\"HS256\",\"typ\":\"JWTX\"}", PL("")),
           SARK_JWT_MALFORMED);
    expect(tok_hdr("{\"alg\":\"HS256\",\"typ\":\"JW\"}", PL("")),
           SARK_JWT_MALFORMED);
    expect(tok_hdr("{\"alg\":\"HS256\",\"typ\":\"application/jose\"}",
                   PL("")), SARK_JWT_MALFORMED);
    expect(tok_hdr("{\"alg\":\"HS256\",\"typ\":1}", PL("")),
           SARK_JWT_MALFORMED);
    expect(tok_hdr("{\"alg\":\"HS256\",\"typ\":null}", PL("")),
           SARK_JWT_MALFORMED);
}
END_TEST


/* ---- algorithms ---- */

static const char *const  none_hdrs[] = {
    "{\"alg\":\"none\"}",
    "{\"alg\":\"None\"}",
    "{\"alg\":\"NONE\"}",
    "{\"alg\":\"nOnE\"}",
    "{\"alg\":\"none\",\"typ\":\"JWT\"}",
};


START_TEST(test_alg_none)
{
    const char  *hdr = none_hdrs[_i];

    expect(mk(hdr, PL(""), HOW_NONE, NULL, 0), SARK_JWT_UNSUPPORTED_ALG);
    ck_assert_str_eq(err, "unsigned tokens are not accepted");

    /* with a signature of any kind, still refused */
    expect(mk(hdr, PL(""), HOW_HMAC, hs_secret, sizeof(hs_secret) - 1),
           SARK_JWT_UNSUPPORTED_ALG);
    expect(mk(hdr, PL(""), HOW_RAW, "x", 1), SARK_JWT_UNSUPPORTED_ALG);

    /* even with no keys configured for anything */
    opts.nkeys = 0;
    expect(mk(hdr, PL(""), HOW_NONE, NULL, 0), SARK_JWT_UNSUPPORTED_ALG);
}
END_TEST


START_TEST(test_empty_signature)
{
    char  hdr[64];

    snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\"}", alg_names[_i]);

    expect(mk(hdr, PL(""), HOW_NONE, NULL, 0), SARK_JWT_UNSUPPORTED_ALG);
    ck_assert_str_eq(err, "unsigned tokens are not accepted");
}
END_TEST


static const char *const  other_algs[] = {
    "HS384", "HS512", "RS384", "RS512", "PS256", "ES384", "ES512", "EdDSA",
    "hs256", "Hs256", "HS256 ", " HS256", "HS2560", "", "ES256K", "RSA-OAEP",
    "dir",
};


START_TEST(test_other_algs)
{
    const char  *hdr;

    hdr = fmt("{\"alg\":\"%s\"}", other_algs[_i]);

    expect(mk(hdr, PL(""), HOW_HMAC, hs_secret, sizeof(hs_secret) - 1),
           SARK_JWT_UNSUPPORTED_ALG);
    expect(mk(hdr, PL(""), HOW_RSA, rsa_priv, 0), SARK_JWT_UNSUPPORTED_ALG);
    ck_assert_str_eq(err, "unsupported token algorithm");
}
END_TEST


START_TEST(test_header_shape)
{
    expect(tok_hdr("xyz", PL("")), SARK_JWT_MALFORMED);
    ck_assert_str_eq(err, "malformed token: header is not valid JSON");
    expect(tok_hdr("[\"HS256\"]", PL("")), SARK_JWT_MALFORMED);
    ck_assert_str_eq(err, "malformed token: header is not a JSON object");
    expect(tok_hdr("\"HS256\"", PL("")), SARK_JWT_MALFORMED);
    expect(tok_hdr("{}", PL("")), SARK_JWT_MALFORMED);
    expect(tok_hdr("{\"typ\":\"JWT\"}", PL("")), SARK_JWT_MALFORMED);
    ck_assert_str_eq(err, "malformed token: header has no \"alg\"");
    expect(tok_hdr("{\"alg\":1}", PL("")), SARK_JWT_MALFORMED);
    expect(tok_hdr("{\"alg\":null}", PL("")), SARK_JWT_MALFORMED);
    expect(tok_hdr("{\"alg\":[\"HS256\"]}", PL("")), SARK_JWT_MALFORMED);
    expect(tok_hdr("{\"ALG\":\"HS256\"}", PL("")), SARK_JWT_MALFORMED);

    /* duplicate names: no parser differential */
    expect(tok_hdr("{\"alg\":\"HS256\",\"alg\":\"none\"}", PL("")),
           SARK_JWT_MALFORMED);
    expect(tok_hdr("{\"alg\":\"none\",\"alg\":\"HS256\"}", PL("")),
           SARK_JWT_MALFORMED);

    /* trailing garbage, BOM, deep nesting */
    expect(tok_hdr("{\"alg\":\"HS256\"}x", PL("")), SARK_JWT_MALFORMED);
    expect(tok_hdr("\xef\xbb\xbf{\"alg\":\"HS256\"}", PL("")),
           SARK_JWT_MALFORMED);
    expect(tok_hdr("{\"alg\":\"HS256\",\"x\":[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]}",
                   PL("")), SARK_JWT_MALFORMED);
    expect(tok_hdr("{\"alg\":\"HS256\",\"x\":[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]}",
                   PL("")), SARK_JWT_OK);

    /* crit: never understood, so always refused */
    expect(tok_hdr("{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}",
                   PL("")), SARK_JWT_MALFORMED);
    ck_assert_str_eq(err, "malformed token: \"crit\" is not supported");
    expect(tok_hdr("{\"alg\":\"HS256\",\"crit\":[]}", PL("")),
           SARK_JWT_MALFORMED);
    expect(tok_hdr("{\"alg\":\"HS256\",\"b64\":false,\"crit\":[\"b64\"]}",
                   PL("")), SARK_JWT_MALFORMED);
    expect(mk("{\"alg\":\"RS256\",\"crit\":null}", PL(""), HOW_RSA,
              rsa_priv, 0), SARK_JWT_MALFORMED);
}
END_TEST


START_TEST(test_confusion)
{
    const sark_jwt_key_t  *keys[2];
    const char            *tok;

    opts.keys = keys;

    /* RS256 header, HMAC over the token with the public key PEM as secret */
    tok = mk("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", PL(""), HOW_HMAC,
             rsa_pub_pem, rsa_pub_pem_len);

    keys[0] = k_rsa;
    opts.nkeys = 1;
    expect(tok, SARK_JWT_BAD_SIGNATURE);

    /* even when that very PEM text is also configured as an HS256 secret */
    keys[1] = k_hs_pem;
    opts.nkeys = 2;
    expect(tok, SARK_JWT_BAD_SIGNATURE);

    /* the same HMAC under an HS256 header: only a public key configured */
    tok = mk("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", PL(""), HOW_HMAC,
             rsa_pub_pem, rsa_pub_pem_len);

    keys[0] = k_rsa;
    opts.nkeys = 1;
    expect(tok, SARK_JWT_UNSUPPORTED_ALG);
    ck_assert_str_eq(err, "no key configured for HS256");

    keys[1] = k_ec;
    opts.nkeys = 2;
    expect(tok, SARK_JWT_UNSUPPORTED_ALG);

    /* (as a control: it does verify against that secret as HS256) */
    keys[1] = k_hs_pem;
    expect(tok, SARK_JWT_OK);

    /* each asymmetric alg needs its own key type */
    keys[0] = k_ec;
    keys[1] = k_hs;
    opts.nkeys = 2;
    expect(tok_alg(1, PL("")), SARK_JWT_UNSUPPORTED_ALG);
    ck_assert_str_eq(err, "no key configured for RS256");

    keys[0] = k_rsa;
    expect(tok_alg(2, PL("")), SARK_JWT_UNSUPPORTED_ALG);
    ck_assert_str_eq(err, "no key configured for ES256");

    /* RSA signature under an ES256 header, and the reverse */
    keys[0] = k_rsa;
    keys[1] = k_ec;
    expect(mk("{\"alg\":\"ES256\"}", PL(""), HOW_RSA, rsa_priv, 0),
           SARK_JWT_BAD_SIGNATURE);
    expect(mk("{\"alg\":\"RS256\"}", PL(""), HOW_EC, ec_priv, 0),
           SARK_JWT_BAD_SIGNATURE);

    /* HMAC with the right secret under RS256/ES256 headers */
    keys[0] = k_rsa;
    keys[1] = k_hs;
    expect(mk("{\"alg\":\"RS256\"}", PL(""), HOW_HMAC, hs_secret,
              sizeof(hs_secret) - 1), SARK_JWT_BAD_SIGNATURE);
    keys[0] = k_ec;
    expect(mk("{\"alg\":\"ES256\"}", PL(""), HOW_HMAC, hs_secret,
              sizeof(hs_secret) - 1), SARK_JWT_BAD_SIGNATURE);
}
END_TEST


/* ---- tampering ---- */

static char *
replace_segment(const char *tok, int seg, const char *text)
{
    static char  buf[24576];
    const char  *d1, *d2;
    size_t       n;

    d1 = strchr(tok, '.');
    d2 = strchr(d1 + 1, '.');

    n = 0;

    if (seg == 0) {
        n += (size_t) sprintf(buf, "%s", text);
        n += (size_t) sprintf(buf + n, "%s", d1);

    } else if (seg == 1) {
        memcpy(buf, tok, (size_t) (d1 - tok) + 1);
        n = (size_t) (d1 - tok) + 1;
        n += (size_t) sprintf(buf + n, "%s", text);
        n += (size_t) sprintf(buf + n, "%s", d2);

    } else {
        memcpy(buf, tok, (size_t) (d2 - tok) + 1);
        n = (size_t) (d2 - tok) + 1;
        sprintf(buf + n, "%s", text);
    }

    return buf;
}


static size_t
get_sig(const char *tok, unsigned char *sig)
{
    const char  *s;

    s = strrchr(tok, '.') + 1;

    return b64url_dec(s, strlen(s), sig);
}


START_TEST(test_tamper)
{
    unsigned char   sig[1024];
    const char     *tok;
    char            seg[2048], orig[24576];
    size_t          n, i;

    tok = tok_alg(_i, PL(""));
    expect(tok, SARK_JWT_OK);
    strcpy(orig, tok);

    /* another payload with the original signature */
    b64url((const unsigned char *) PL(",\"x\":1"), strlen(PL(",\"x\":1")),
           seg);
    expect(replace_segment(orig, 1, seg), SARK_JWT_BAD_SIGNATURE);

    b64url((const unsigned char *) "{\"sub\":\"admin\",\"exp\":1700000600}",
           strlen("{\"sub\":\"admin\",\"exp\":1700000600}"), seg);
    expect(replace_segment(orig, 1, seg), SARK_JWT_BAD_SIGNATURE);

    /* another header with the original signature */
    b64url((const unsigned char *) fmt("{\"alg\":\"%s\",\"kid\":\"x\"}",
                                       alg_names[_i]),
           strlen(fmt("{\"alg\":\"%s\",\"kid\":\"x\"}", alg_names[_i])),
           seg);
    expect(replace_segment(orig, 0, seg), SARK_JWT_BAD_SIGNATURE);

    /* every signature byte, one bit flipped */
    n = get_sig(orig, sig);
    ck_assert_uint_eq(n, _i == 0 ? 32 : _i == 1 ? 256 : 64);

    for (i = 0; i < n; i++) {
        sig[i] ^= (unsigned char) (1u << (i % 8));
        b64url(sig, n, seg);
        CHECK(verify(replace_segment(orig, 2, seg))
              == SARK_JWT_BAD_SIGNATURE);
        sig[i] ^= (unsigned char) (1u << (i % 8));
    }

    /* one byte short, one byte more, all zero, empty-ish */
    b64url(sig, n - 1, seg);
    expect(replace_segment(orig, 2, seg), SARK_JWT_BAD_SIGNATURE);

    sig[n] = 0;
    b64url(sig, n + 1, seg);
    expect(replace_segment(orig, 2, seg), SARK_JWT_BAD_SIGNATURE);

    memset(sig, 0, n);
    b64url(sig, n, seg);
    expect(replace_segment(orig, 2, seg), SARK_JWT_BAD_SIGNATURE);

    expect(replace_segment(orig, 2, "AA"), SARK_JWT_BAD_SIGNATURE);

    /* the original still verifies */
    expect(orig, SARK_JWT_OK);
}
END_TEST


START_TEST(test_wrong_key)
{
    expect(mk("{\"alg\":\"HS256\"}", PL(""), HOW_HMAC, hs_secret2,
              sizeof(hs_secret2) - 1), SARK_JWT_BAD_SIGNATURE);
    ck_assert_str_eq(err, "invalid token signature");
    expect(mk("{\"alg\":\"RS256\"}", PL(""), HOW_RSA, rsa2_priv, 0),
           SARK_JWT_BAD_SIGNATURE);
    expect(mk("{\"alg\":\"ES256\"}", PL(""), HOW_EC, ec2_priv, 0),
           SARK_JWT_BAD_SIGNATURE);

    /* a secret that differs in its last byte only */
    expect(mk("{\"alg\":\"HS256\"}", PL(""), HOW_HMAC, hs_secret,
              sizeof(hs_secret) - 2), SARK_JWT_BAD_SIGNATURE);
}
END_TEST


START_TEST(test_es256_forms)
{
    unsigned char  sig[64];

    /* DER, as OpenSSL produces it, is not the JWS form */
    expect(mk("{\"alg\":\"ES256\"}", PL(""), HOW_EC_DER, ec_priv, 0),
           SARK_JWT_BAD_SIGNATURE);

    memset(sig, 0, sizeof(sig));
    expect(mk("{\"alg\":\"ES256\"}", PL(""), HOW_RAW, sig, 64),
           SARK_JWT_BAD_SIGNATURE);

    memset(sig, 0xff, sizeof(sig));
    expect(mk("{\"alg\":\"ES256\"}", PL(""), HOW_RAW, sig, 64),
           SARK_JWT_BAD_SIGNATURE);

    expect(mk("{\"alg\":\"ES256\"}", PL(""), HOW_RAW, sig, 63),
           SARK_JWT_BAD_SIGNATURE);
    expect(mk("{\"alg\":\"ES256\"}", PL(""), HOW_RAW, sig, 32),
           SARK_JWT_BAD_SIGNATURE);
    expect(mk("{\"alg\":\"ES256\"}", PL(""), HOW_RAW, sig, 1),
           SARK_JWT_BAD_SIGNATURE);
}
END_TEST


/* ---- encoding and shape ---- */

START_TEST(test_base64)
{
    const char  *tok;
    char         t[24576], *d1, *d2, *p;
    size_t       n;

    /* a header whose encoding needs padding (15 bytes: 20 chars + 0) */
    tok = tok_hdr("{\"alg\":\"HS256\"}", PL(""));
    expect(tok, SARK_JWT_OK);
    strcpy(t, tok);

    d1 = strchr(t, '.');
    ck_assert_uint_eq((size_t) (d1 - t) % 4, 0);

    /* "{\"alg\":\"HS256\" }" is 16 bytes: 22 chars, padding would be "==" */
    tok = tok_hdr("{\"alg\":\"HS256\" }", PL(""));
    expect(tok, SARK_JWT_OK);
    strcpy(t, tok);
    d1 = strchr(t, '.');
    ck_assert_uint_eq((size_t) (d1 - t) % 4, 2);

    memmove(d1 + 2, d1, strlen(d1) + 1);
    d1[0] = '=';
    d1[1] = '=';
    expect(t, SARK_JWT_MALFORMED);
    ck_assert_str_eq(err, "malformed token: header is not base64url");

    /* padding on the signature (HS256: 32 bytes, 43 chars + "=") */
    strcpy(t, tok);
    strcat(t, "=");
    expect(t, SARK_JWT_MALFORMED);
    ck_assert_str_eq(err, "malformed token: signature is not base64url");

    /* padding on the payload */
    strcpy(t, tok);
    d1 = strchr(t, '.');
    d2 = strchr(d1 + 1, '.');
    n = (size_t) (d2 - d1 - 1);
    if (n % 4 != 0) {
        memmove(d2 + 4 - n % 4, d2, strlen(d2) + 1);
        memset(d2, '=', 4 - n % 4);
        expect(t, SARK_JWT_MALFORMED);
    }

    /* '+' and '/' instead of '-' and '_' */
    strcpy(t, tok);
    t[3] = '+';
    expect(t, SARK_JWT_MALFORMED);
    strcpy(t, tok);
    t[3] = '/';
    expect(t, SARK_JWT_MALFORMED);

    strcpy(t, tok);
    p = strrchr(t, '.') + 5;
    *p = '+';
    expect(t, SARK_JWT_MALFORMED);
    *p = '/';
    expect(t, SARK_JWT_MALFORMED);

    /* spaces, NUL-free junk, a 4k+1 length */
    strcpy(t, tok);
    t[5] = ' ';
    expect(t, SARK_JWT_MALFORMED);

    strcpy(t, tok_hdr("{\"alg\":\"HS256\"}", PL("")));
    d1 = strchr(t, '.');
    ck_assert_uint_eq((size_t) (d1 - t), 20);
    memmove(d1 + 1, d1, strlen(d1) + 1);
    d1[0] = 'A';
    expect(t, SARK_JWT_MALFORMED);

    /* non-canonical last character: unused bits set (22 chars: 4 bits) */
    strcpy(t, tok);
    d1 = strchr(t, '.');
    ck_assert_int_eq(d1[-1], 'Q');      /* ' ' '}' -> ...Q */
    d1[-1] = 'R';
    expect(t, SARK_JWT_MALFORMED);

    /* same signature bytes in a non-canonical spelling */
    strcpy(t, tok);
    p = t + strlen(t) - 1;
    ck_assert_msg(strchr("AEIMQUYcgkosw048", *p) != NULL, "last %c", *p);
    *p = (char) (*p + 1);
    expect(t, SARK_JWT_MALFORMED);
}
END_TEST


START_TEST(test_segments)
{
    const char  *tok;
    char         t[24576], *d2;

    tok = tok_hs(PL(""));

    expect("", SARK_JWT_MALFORMED);
    expect("abc", SARK_JWT_MALFORMED);
    ck_assert_str_eq(err, "malformed token: expected three segments");
    expect(".", SARK_JWT_MALFORMED);
    expect("..", SARK_JWT_MALFORMED);
    expect("...", SARK_JWT_MALFORMED);

    /* two segments */
    strcpy(t, tok);
    d2 = strrchr(t, '.');
    *d2 = '\0';
    expect(t, SARK_JWT_MALFORMED);
    ck_assert_str_eq(err, "malformed token: expected three segments");

    /* four and five segments */
    snprintf(t, sizeof(t), "%s.AAAA", tok);
    expect(t, SARK_JWT_MALFORMED);
    snprintf(t, sizeof(t), "%s.", tok);
    expect(t, SARK_JWT_MALFORMED);
    snprintf(t, sizeof(t), "%s.AAAA.AAAA", tok);
    expect(t, SARK_JWT_MALFORMED);

    /* empty header or payload */
    expect(replace_segment(tok, 0, ""), SARK_JWT_MALFORMED);
    ck_assert_str_eq(err, "malformed token: empty segment");
    expect(replace_segment(tok, 1, ""), SARK_JWT_MALFORMED);

    /* "Bearer " prefix or whitespace left over by a caller */
    snprintf(t, sizeof(t), "Bearer %s", tok);
    expect(t, SARK_JWT_MALFORMED);
    snprintf(t, sizeof(t), "%s\n", tok);
    expect(t, SARK_JWT_MALFORMED);

    /* an embedded NUL inside the given length */
    strcpy(t, tok);
    t[4] = '\0';
    ck_assert_int_eq(sark_jwt_verify(t, strlen(tok), &opts, NOW, arena_alloc,
                                     &arena, &claims, err, sizeof(err)),
                     SARK_JWT_MALFORMED);

    /* NULL token, NULL/empty error buffer */
    ck_assert_int_eq(sark_jwt_verify(NULL, 0, &opts, NOW, arena_alloc,
                                     &arena, &claims, NULL, 0),
                     SARK_JWT_MALFORMED);
    ck_assert_int_eq(sark_jwt_verify(tok, strlen(tok), &opts, NOW,
                                     arena_alloc, &arena, &claims, NULL, 0),
                     SARK_JWT_OK);
    ck_assert_int_eq(sark_jwt_verify("a.b", 3, &opts, NOW, arena_alloc,
                                     &arena, &claims, err, 0),
                     SARK_JWT_MALFORMED);
}
END_TEST


START_TEST(test_too_long)
{
    const char  *tok;
    char        *big;
    size_t       len;

    tok = tok_hs(PL(""));
    len = strlen(tok);

    opts.max_token_len = len;
    expect(tok, SARK_JWT_OK);

    opts.max_token_len = len - 1;
    expect(tok, SARK_JWT_TOO_LONG);
    ck_assert_str_eq(err, "token too long");

    opts.max_token_len = 100;
    expect(tok, SARK_JWT_TOO_LONG);

    /* 0 means 8192 */
    opts.max_token_len = 0;
    expect(tok, SARK_JWT_OK);

    big = malloc(8194);
    ck_assert_ptr_nonnull(big);
    memset(big, 'A', 8193);
    big[8193] = '\0';
    expect(big, SARK_JWT_TOO_LONG);

    big[8192] = '\0';
    expect(big, SARK_JWT_MALFORMED);
    free(big);

    /* a real token just over the default */
    opts.max_token_len = 0;
    tok = tok_hs(fmt("{" STD ",\"exp\":1700000600,\"pad\":\"%06000d\"}", 0));
    ck_assert_uint_gt(strlen(tok), 8192);
    expect(tok, SARK_JWT_TOO_LONG);

    opts.max_token_len = 16384;
    expect(tok, SARK_JWT_OK);
}
END_TEST


START_TEST(test_payload_shape)
{
    expect_pl("not json", SARK_JWT_MALFORMED);
    ck_assert_str_eq(err, "malformed token: payload is not valid JSON");
    expect_pl("[" PL("") "]", SARK_JWT_MALFORMED);
    ck_assert_str_eq(err, "malformed token: payload is not a JSON object");
    expect_pl("\"sub\"", SARK_JWT_MALFORMED);
    expect_pl("", SARK_JWT_MALFORMED);
    expect_pl("{" STD ",\"exp\":1700000600,\"sub\":\"admin\"}",
              SARK_JWT_MALFORMED);
    expect_pl("{" STD ",\"exp\":1700000600,\"exp\":1}", SARK_JWT_MALFORMED);
    expect_pl(PL(" x"), SARK_JWT_MALFORMED);
    expect_pl("{" STD ",\"exp\":1700000600,\"s\":\"\xc0\xaf\"}",
              SARK_JWT_MALFORMED);
    expect_pl("{" STD ",\"exp\":1700000600,\"s\":\"\\u0000\"}",
              SARK_JWT_MALFORMED);
    expect_pl(PL(",\"x\":[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]"),
              SARK_JWT_MALFORMED);
    expect_pl(PL(",\"x\":[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]"), SARK_JWT_OK);

    /* the signature is checked before the payload is even decoded */
    expect(mk("{\"alg\":\"HS256\"}", "not json", HOW_HMAC, hs_secret2,
              sizeof(hs_secret2) - 1), SARK_JWT_BAD_SIGNATURE);
    expect(mk("{\"alg\":\"HS256\"}", "{\"exp\":\"x\"}", HOW_HMAC, hs_secret2,
              sizeof(hs_secret2) - 1), SARK_JWT_BAD_SIGNATURE);
    expect(mk("{\"alg\":\"RS256\"}", "{}", HOW_RSA, rsa2_priv, 0),
           SARK_JWT_BAD_SIGNATURE);
}
END_TEST


/* ---- time claims ---- */

START_TEST(test_exp)
{
    expect_pl("{" STD "}", SARK_JWT_BAD_CLAIMS);
    ck_assert_str_eq(err, "claim \"exp\" is missing");
    expect_pl("{" STD ",\"exp\":\"tomorrow\"}", SARK_JWT_BAD_CLAIMS);
    ck_assert_str_eq(err, "claim \"exp\" has the wrong type");
    expect_pl("{" STD ",\"exp\":\"1700000600\"}", SARK_JWT_BAD_CLAIMS);
    expect_pl("{" STD ",\"exp\":null}", SARK_JWT_BAD_CLAIMS);
    expect_pl("{" STD ",\"exp\":true}", SARK_JWT_BAD_CLAIMS);
    expect_pl("{" STD ",\"exp\":[1700000600]}", SARK_JWT_BAD_CLAIMS);
    expect_pl("{" STD ",\"exp\":{}}", SARK_JWT_BAD_CLAIMS);

    /* expired when now >= exp */
    expect_pl("{" STD ",\"exp\":1700000001}", SARK_JWT_OK);
    ck_assert_int_eq(claims.exp, NOW + 1);
    expect_pl("{" STD ",\"exp\":1700000000}", SARK_JWT_EXPIRED);
    ck_assert_str_eq(err, "token expired");
    expect_pl("{" STD ",\"exp\":1699999999}", SARK_JWT_EXPIRED);
    expect_pl("{" STD ",\"exp\":0}", SARK_JWT_EXPIRED);
    expect_pl("{" STD ",\"exp\":-5}", SARK_JWT_EXPIRED);

    /* floats are floored */
    expect_pl("{" STD ",\"exp\":1700000000.999}", SARK_JWT_EXPIRED);
    expect_pl("{" STD ",\"exp\":1700000001.5}", SARK_JWT_OK);
    ck_assert_int_eq(claims.exp, NOW + 1);
    expect_pl("{" STD ",\"exp\":1.7000000015e9}", SARK_JWT_OK);
    ck_assert_int_eq(claims.exp, NOW + 1);
    expect_pl("{" STD ",\"exp\":1.7e9}", SARK_JWT_EXPIRED);
    expect_pl("{" STD ",\"exp\":-0.5}", SARK_JWT_EXPIRED);

    /* far future and far past, without overflow */
    expect_pl("{" STD ",\"exp\":1e300}", SARK_JWT_OK);
    expect_pl("{" STD ",\"exp\":9223372036854775807}", SARK_JWT_OK);
    expect_pl("{" STD ",\"exp\":99999999999999999999999}", SARK_JWT_OK);
    expect_pl("{" STD ",\"exp\":-1e300}", SARK_JWT_EXPIRED);
    expect_pl("{" STD ",\"exp\":-9223372036854775808}", SARK_JWT_EXPIRED);

    /* leeway: now >= exp + leeway */
    opts.leeway = 30;
    expect_pl("{" STD ",\"exp\":1699999971}", SARK_JWT_OK);
    expect_pl("{" STD ",\"exp\":1699999970}", SARK_JWT_EXPIRED);
    expect_pl("{" STD ",\"exp\":1699999969}", SARK_JWT_EXPIRED);

    opts.leeway = -30;          /* treated as 0 */
    expect_pl("{" STD ",\"exp\":1700000001}", SARK_JWT_OK);
    expect_pl("{" STD ",\"exp\":1700000000}", SARK_JWT_EXPIRED);

    opts.leeway = LONG_MAX;     /* huge leeway does not overflow */
    expect_pl("{" STD ",\"exp\":1}", SARK_JWT_OK);
    expect_pl("{" STD ",\"exp\":1,\"nbf\":1e300}", SARK_JWT_NOT_YET_VALID);

    /* extreme "now" values */
    opts.leeway = 0;
    CHECK(verify_at(tok_hs(PL("")), 0x7fffffffffffffffLL)
          == SARK_JWT_EXPIRED);
    CHECK(verify_at(tok_hs(PL("")), -0x7fffffffffffffffLL - 1)
          == SARK_JWT_OK);
}
END_TEST


START_TEST(test_nbf)
{
    expect_pl(PL(",\"nbf\":1700000000"), SARK_JWT_OK);
    ck_assert_int_eq(claims.nbf, NOW);
    expect_pl(PL(",\"nbf\":1699999000"), SARK_JWT_OK);
    expect_pl(PL(",\"nbf\":1700000001"), SARK_JWT_NOT_YET_VALID);
    ck_assert_str_eq(err, "token not yet valid");
    expect_pl(PL(",\"nbf\":1700000000.9"), SARK_JWT_OK);
    expect_pl(PL(",\"nbf\":1700000001.1"), SARK_JWT_NOT_YET_VALID);
    expect_pl(PL(",\"nbf\":1e300"), SARK_JWT_NOT_YET_VALID);
    expect_pl(PL(",\"nbf\":-0.5"), SARK_JWT_OK);
    ck_assert_int_eq(claims.nbf, -1);
    expect_pl(PL(",\"nbf\":-2.0"), SARK_JWT_OK);
    ck_assert_int_eq(claims.nbf, -2);
    expect_pl(PL(",\"nbf\":\"now\""), SARK_JWT_BAD_CLAIMS);
    expect_pl(PL(",\"nbf\":null"), SARK_JWT_BAD_CLAIMS);

    opts.leeway = 5;
    expect_pl(PL(",\"nbf\":1700000005"), SARK_JWT_OK);
    expect_pl(PL(",\"nbf\":1700000006"), SARK_JWT_NOT_YET_VALID);
}
END_TEST


START_TEST(test_iat)
{
    expect_pl(PL(",\"iat\":\"x\""), SARK_JWT_MALFORMED); /* duplicate */
    expect_pl("{\"sub\":\"u\",\"exp\":1700000600,\"iat\":\"x\"}",
              SARK_JWT_BAD_CLAIMS);
    ck_assert_str_eq(err, "claim \"iat\" has the wrong type");

    /* iat in the future is not an error */
    expect_pl("{\"sub\":\"u\",\"exp\":1700000600,\"iat\":1800000000}",
              SARK_JWT_OK);
    ck_assert_int_eq(claims.iat, 1800000000LL);

    /* minimal token */
    expect_pl("{\"sub\":\"u\",\"exp\":1700000600}", SARK_JWT_OK);
    ck_assert_int_eq(claims.iat, 0);
    ck_assert_int_eq(claims.nbf, 0);
    ck_assert_ptr_null(claims.email.s);
    ck_assert_ptr_null(claims.roles);
    ck_assert_uint_eq(claims.nroles, 0);
    ck_assert_ptr_null(claims.teams);
    ck_assert_uint_eq(claims.nteams, 0);
}
END_TEST


/* ---- iss, aud ---- */

START_TEST(test_iss)
{
    expect_pl(PL(",\"iss\":\"sark-auth\""), SARK_JWT_OK);
    ck_assert(str_is(claims.iss, "sark-auth"));
    expect_pl(PL(",\"iss\":5"), SARK_JWT_BAD_CLAIMS);

    opts.issuer = "sark-auth";
    expect_pl(PL(",\"iss\":\"sark-auth\""), SARK_JWT_OK);
    expect_pl(PL(",\"iss\":\"sark-auth2\""), SARK_JWT_BAD_ISSUER);
    ck_assert_str_eq(err, "token issuer not accepted");
    expect_pl(PL(",\"iss\":\"Sark-auth\""), SARK_JWT_BAD_ISSUER);
    expect_pl(PL(",\"iss\":\"sark-aut\""), SARK_JWT_BAD_ISSUER);
    expect_pl(PL(",\"iss\":\"\""), SARK_JWT_BAD_ISSUER);
    expect_pl(PL(""), SARK_JWT_BAD_ISSUER);
    ck_assert_str_eq(err, "token has no issuer");
    expect_pl(PL(",\"iss\":[\"sark-auth\"]"), SARK_JWT_BAD_CLAIMS);
    expect_pl(PL(",\"iss\":null"), SARK_JWT_BAD_CLAIMS);

    /* expiry is reported before the issuer */
    expect_pl("{\"sub\":\"u\",\"exp\":1,\"iss\":\"x\"}", SARK_JWT_EXPIRED);
}
END_TEST


START_TEST(test_aud)
{
    expect_pl(PL(",\"aud\":\"anything\""), SARK_JWT_OK);
    expect_pl(PL(",\"aud\":[]"), SARK_JWT_OK);
    expect_pl(PL(",\"aud\":5"), SARK_JWT_BAD_CLAIMS);
    ck_assert_str_eq(err, "claim \"aud\" has the wrong type");
    expect_pl(PL(",\"aud\":[\"a\",5]"), SARK_JWT_BAD_CLAIMS);
    expect_pl(PL(",\"aud\":{}"), SARK_JWT_BAD_CLAIMS);

    opts.audience = "sark-api";
    expect_pl(PL(",\"aud\":\"sark-api\""), SARK_JWT_OK);
    expect_pl(PL(",\"aud\":[\"sark-api\"]"), SARK_JWT_OK);
    expect_pl(PL(",\"aud\":[\"other\",\"sark-api\"]"), SARK_JWT_OK);
    expect_pl(PL(",\"aud\":[\"other\"]"), SARK_JWT_BAD_AUDIENCE);
    ck_assert_str_eq(err, "token audience not accepted");
    expect_pl(PL(",\"aud\":[]"), SARK_JWT_BAD_AUDIENCE);
    expect_pl(PL(",\"aud\":\"sark-apiX\""), SARK_JWT_BAD_AUDIENCE);
    expect_pl(PL(",\"aud\":\"sark-ap\""), SARK_JWT_BAD_AUDIENCE);
    expect_pl(PL(",\"aud\":\"sark-api,other\""), SARK_JWT_BAD_AUDIENCE);
    expect_pl(PL(",\"aud\":[[\"sark-api\"]]"), SARK_JWT_BAD_CLAIMS);
    expect_pl(PL(""), SARK_JWT_BAD_AUDIENCE);
    ck_assert_str_eq(err, "token has no audience");

    opts.issuer = "sark-auth";
    expect_pl(PL(",\"aud\":\"sark-api\",\"iss\":\"sark-auth\""), SARK_JWT_OK);
    expect_pl(PL(",\"aud\":\"x\",\"iss\":\"x\""), SARK_JWT_BAD_ISSUER);
}
END_TEST


/* ---- identity claims ---- */

START_TEST(test_sub)
{
    expect_pl("{\"exp\":1700000600}", SARK_JWT_BAD_CLAIMS);
    ck_assert_str_eq(err, "claim \"sub\" is missing");
    expect_pl("{\"sub\":\"\",\"exp\":1700000600}", SARK_JWT_BAD_CLAIMS);
    ck_assert_str_eq(err, "claim \"sub\" is empty");
    expect_pl("{\"sub\":5,\"exp\":1700000600}", SARK_JWT_BAD_CLAIMS);
    expect_pl("{\"sub\":null,\"exp\":1700000600}", SARK_JWT_BAD_CLAIMS);
    expect_pl("{\"sub\":[\"u\"],\"exp\":1700000600}", SARK_JWT_BAD_CLAIMS);

    expect_pl("{\"sub\":\"\\u00e9t\\u00e9\",\"exp\":1700000600}",
              SARK_JWT_OK);
    ck_assert(str_is(claims.sub, "\xc3\xa9t\xc3\xa9"));

    /* agent tokens: agent_id stands in for sub */
    expect_pl("{\"agent_id\":\"agent-7\",\"exp\":1700000600}", SARK_JWT_OK);
    ck_assert(str_is(claims.sub, "agent-7"));
    ck_assert(str_is(claims.agent_id, "agent-7"));

    expect_pl("{\"agent_id\":\"\",\"exp\":1700000600}", SARK_JWT_BAD_CLAIMS);
    expect_pl("{\"agent_id\":7,\"exp\":1700000600}", SARK_JWT_BAD_CLAIMS);
    expect_pl("{\"sub\":\"\",\"agent_id\":\"a\",\"exp\":1700000600}",
              SARK_JWT_BAD_CLAIMS);

    expect_pl("{\"sub\":\"svc\",\"agent_id\":\"a\",\"exp\":1700000600}",
              SARK_JWT_OK);
    ck_assert(str_is(claims.sub, "svc"));
    ck_assert(str_is(claims.agent_id, "a"));
}
END_TEST


/* only access tokens: every claim naming the kind must say "access" */
START_TEST(test_token_kind)
{
    static const char *const  refused[] = {
        "\"type\":\"refresh\"", "\"type\":\"Refresh\"", "\"type\":\"id\"",
        "\"type\":\"\"", "\"type\":\"access \"", "\"token_type\":\"refresh\"",
        "\"token_type\":\"Refresh\"", "\"token_use\":\"id\"",
        "\"typ\":\"Refresh\"", "\"typ\":\"ID\"",
        "\"type\":\"access\",\"token_type\":\"refresh\""
    };
    static const char *const  wrong_type[] = {
        "\"type\":1", "\"type\":null", "\"token_type\":[\"access\"]",
        "\"typ\":{}"
    };
    static const char *const  accepted[] = {
        "\"type\":\"access\"", "\"type\":\"ACCESS\"",
        "\"token_type\":\"access\"", "\"token_use\":\"access\"",
        "\"typ\":\"Bearer\"", "\"typ\":\"bearer\"",
        "\"type\":\"access\",\"typ\":\"Bearer\",\"token_use\":\"access\""
    };
    char    pl[256];
    size_t  i;

    for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        snprintf(pl, sizeof(pl), "{\"sub\":\"u\",\"exp\":1700000600,%s}",
                 refused[i]);
        expect_pl(pl, SARK_JWT_BAD_CLAIMS);
        ck_assert_msg(strstr(err, "only access tokens are accepted") != NULL,
                      "%s: %s", refused[i], err);
    }

    for (i = 0; i < sizeof(wrong_type) / sizeof(wrong_type[0]); i++) {
        snprintf(pl, sizeof(pl), "{\"sub\":\"u\",\"exp\":1700000600,%s}",
                 wrong_type[i]);
        expect_pl(pl, SARK_JWT_BAD_CLAIMS);
        ck_assert_msg(strstr(err, "has the wrong type") != NULL,
                      "%s: %s", wrong_type[i], err);
    }

    for (i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
        snprintf(pl, sizeof(pl), "{\"sub\":\"u\",\"exp\":1700000600,%s}",
                 accepted[i]);
        expect_pl(pl, SARK_JWT_OK);
    }

    /* no kind at all: an access token */
    expect_pl("{\"sub\":\"u\",\"exp\":1700000600}", SARK_JWT_OK);
}
END_TEST


START_TEST(test_roles)
{
    expect_pl("{\"sub\":\"u\",\"exp\":1700000600,\"roles\":[\"a\",\"b\","
              "\"c\"]}", SARK_JWT_OK);
    ck_assert_uint_eq(claims.nroles, 3);
    ck_assert(str_is(claims.roles[2], "c"));

    expect_pl("{\"sub\":\"u\",\"exp\":1700000600,\"role\":\"admin\"}",
              SARK_JWT_OK);
    ck_assert_uint_eq(claims.nroles, 1);
    ck_assert(str_is(claims.roles[0], "admin"));

    /* roles wins over role; role is then ignored */
    expect_pl("{\"sub\":\"u\",\"exp\":1700000600,\"role\":\"admin\","
              "\"roles\":[\"viewer\"]}", SARK_JWT_OK);
    ck_assert_uint_eq(claims.nroles, 1);
    ck_assert(str_is(claims.roles[0], "viewer"));

    expect_pl("{\"sub\":\"u\",\"exp\":1700000600,\"roles\":[]}",
              SARK_JWT_OK);
    ck_assert_uint_eq(claims.nroles, 0);
    ck_assert_ptr_null(claims.roles);

    expect_pl("{\"sub\":\"u\",\"exp\":1700000600,\"roles\":\"admin\"}",
              SARK_JWT_BAD_CLAIMS);
    ck_assert_str_eq(err, "claim \"roles\" has the wrong type");
    expect_pl("{\"sub\":\"u\",\"exp\":1700000600,\"roles\":[1]}",
              SARK_JWT_BAD_CLAIMS);
    expect_pl("{\"sub\":\"u\",\"exp\":1700000600,\"roles\":[\"a\",null]}",
              SARK_JWT_BAD_CLAIMS);
    expect_pl("{\"sub\":\"u\",\"exp\":1700000600,\"roles\":[[\"a\"]]}",
              SARK_JWT_BAD_CLAIMS);
    expect_pl("{\"sub\":\"u\",\"exp\":1700000600,\"roles\":{\"a\":1}}",
              SARK_JWT_BAD_CLAIMS);
    expect_pl("{\"sub\":\"u\",\"exp\":1700000600,\"role\":[\"admin\"]}",
              SARK_JWT_BAD_CLAIMS);
    ck_assert_str_eq(err, "claim \"role\" has the wrong type");
    expect_pl("{\"sub\":\"u\",\"exp\":1700000600,\"role\":5}",
              SARK_JWT_BAD_CLAIMS);
}
END_TEST


START_TEST(test_teams)
{
    expect_pl("{\"sub\":\"u\",\"exp\":1700000600,\"teams\":[\"x\",\"y\"]}",
              SARK_JWT_OK);
    ck_assert_uint_eq(claims.nteams, 2);
    ck_assert(str_is(claims.teams[1], "y"));

    expect_pl("{\"sub\":\"u\",\"exp\":1700000600,\"groups\":[\"g\"]}",
              SARK_JWT_OK);
    ck_assert_uint_eq(claims.nteams, 1);
    ck_assert(str_is(claims.teams[0], "g"));

    expect_pl("{\"sub\":\"u\",\"exp\":1700000600,\"groups\":[\"g\"],"
              "\"teams\":[\"t\"]}", SARK_JWT_OK);
    ck_assert_uint_eq(claims.nteams, 1);
    ck_assert(str_is(claims.teams[0], "t"));

    expect_pl("{\"sub\":\"u\",\"exp\":1700000600,\"teams\":\"t\"}",
              SARK_JWT_BAD_CLAIMS);
    expect_pl("{\"sub\":\"u\",\"exp\":1700000600,\"teams\":[true]}",
              SARK_JWT_BAD_CLAIMS);
    expect_pl("{\"sub\":\"u\",\"exp\":1700000600,\"groups\":[null]}",
              SARK_JWT_BAD_CLAIMS);
    ck_assert_str_eq(err, "claim \"groups\" has the wrong type");
    expect_pl("{\"sub\":\"u\",\"exp\":1700000600,\"groups\":\"g\"}",
              SARK_JWT_BAD_CLAIMS);
}
END_TEST


START_TEST(test_agent_claims)
{
    expect_pl("{\"sub\":\"agent:a1\",\"agent_id\":\"a1\",\"exp\":1700000600,"
              "\"trust_level\":\"high\",\"environment\":\"prod\","
              "\"capabilities\":[\"execute\",\"query\"],"
              "\"iss\":\"sark-agent-auth\",\"aud\":\"sark-a2a\"}",
              SARK_JWT_OK);
    ck_assert(str_is(claims.sub, "agent:a1"));
    ck_assert(str_is(claims.agent_id, "a1"));
    ck_assert(str_is(claims.trust_level, "high"));
    ck_assert(str_is(claims.environment, "prod"));
    ck_assert_uint_eq(claims.ncapabilities, 2);
    ck_assert(str_is(claims.capabilities[0], "execute"));
    ck_assert(str_is(claims.capabilities[1], "query"));

    expect_pl(PL(",\"trust_level\":3"), SARK_JWT_BAD_CLAIMS);
    ck_assert_str_eq(err, "claim \"trust_level\" has the wrong type");
    expect_pl(PL(",\"environment\":[]"), SARK_JWT_BAD_CLAIMS);
    expect_pl(PL(",\"capabilities\":\"execute\""), SARK_JWT_BAD_CLAIMS);
    expect_pl(PL(",\"capabilities\":[\"a\",{}]"), SARK_JWT_BAD_CLAIMS);
    expect_pl("{\"sub\":\"u\",\"exp\":1700000600,\"email\":5}",
              SARK_JWT_BAD_CLAIMS);
    ck_assert_str_eq(err, "claim \"email\" has the wrong type");
    expect_pl("{\"sub\":\"u\",\"exp\":1700000600,\"jti\":5}",
              SARK_JWT_BAD_CLAIMS);

    /* unknown claims of any type are left to the caller */
    expect_pl(PL(",\"permissions\":[\"a\",1,{}],\"type\":\"access\","
                 "\"name\":null"), SARK_JWT_OK);
    ck_assert_ptr_nonnull(sark_json_get(claims.payload, "permissions"));
}
END_TEST


/* ---- robustness ---- */

START_TEST(test_err_never_echoes)
{
    static const char *const  pls[] = {
        "{\"sub\":\"SECRETMARKER\",\"exp\":\"SECRETMARKER\"}",
        "{\"sub\":\"SECRETMARKER\",\"exp\":1}",
        "{\"SECRETMARKER\":1,\"SECRETMARKER\":1}",
        "SECRETMARKER",
        "{\"sub\":\"u\",\"exp\":1700000600,\"iss\":\"SECRETMARKER\"}",
        "{\"sub\":\"u\",\"exp\":1700000600,\"aud\":\"SECRETMARKER\"}",
    };
    static const char *const  hdrs[] = {
        "{\"alg\":\"HS256\"}",
        "{\"alg\":\"SECRETMARKER\"}",
        "{\"alg\":\"HS256\",\"typ\":\"SECRETMARKER\"}",
        "{\"alg\":\"HS256\",\"SECRETMARKER\":1,\"SECRETMARKER\":2}",
        "SECRETMARKER",
    };

    size_t  i, j;

    opts.issuer = "sark-auth";
    opts.audience = "sark-api";

    for (i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
        for (j = 0; j < sizeof(pls) / sizeof(pls[0]); j++) {
            ck_assert_int_ne(verify(tok_hdr(hdrs[i], pls[j])), SARK_JWT_OK);
            ck_assert_msg(strstr(err, "SECRETMARKER") == NULL, "%s", err);
        }
    }
}
END_TEST


START_TEST(test_oom)
{
    const char     *tok;
    sark_jwt_rc_e   rc;
    size_t          need, k;

    opts.issuer = "sark-auth";
    tok = tok_alg(_i, PL(",\"iss\":\"sark-auth\",\"role\":\"x\","
                         "\"capabilities\":[\"c\"],\"groups\":[\"g\"]"));

    expect(tok, SARK_JWT_OK);
    need = arena.count;
    arena_reset(&arena);

    for (k = 0; k < need; k++) {
        arena.limited = 1;
        arena.fail_after = k;

        rc = sark_jwt_verify(tok, strlen(tok), &opts, NOW, arena_alloc,
                             &arena, &claims, err, sizeof(err));
        ck_assert_msg(rc == SARK_JWT_ERROR, "k=%zu: %s (%s)", k,
                      sark_jwt_strerror(rc), err);
        ck_assert_str_eq(err, "out of memory");

        arena_reset(&arena);
    }

    arena.limited = 1;
    arena.fail_after = need;
    expect(tok, SARK_JWT_OK);
}
END_TEST


static uint64_t
xorshift(uint64_t *s)
{
    uint64_t  x = *s;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;

    return x;
}


START_TEST(test_fuzz)
{
    static const char  alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
        "+/= \x80";

    const char     *env;
    sark_jwt_rc_e   rc;
    uint64_t        seed;
    size_t          len, pos;
    long            iters, it;
    char            orig[24576], t[24576];
    int             j, nmut;

    env = getenv("SARK_FUZZ_ITERS");
    iters = (env != NULL) ? atol(env) / 4 : 20000;
    seed = 0x0123456789abcdefULL;

    opts.audience = "sark-api";
    strcpy(orig, tok_hs(PL(",\"aud\":[\"x\",\"sark-api\"],\"nbf\":1")));
    ck_assert_int_eq(verify(orig), SARK_JWT_OK);
    arena_reset(&arena);

    for (it = 0; it < iters; it++) {
        strcpy(t, orig);
        len = strlen(t);
        nmut = 1 + (int) (xorshift(&seed) % 3);

        for (j = 0; j < nmut; j++) {
            pos = xorshift(&seed) % len;

            switch (xorshift(&seed) % 4) {
            case 0:
                t[pos] = alphabet[xorshift(&seed) % (sizeof(alphabet) - 1)];
                break;
            case 1:
                memmove(t + pos, t + pos + 1, len - pos);
                len--;
                break;
            case 2:
                memmove(t + pos + 1, t + pos, len - pos + 1);
                t[pos] = alphabet[xorshift(&seed) % (sizeof(alphabet) - 1)];
                len++;
                break;
            default:
                t[pos] = '\0';
                len = pos;
            }

            if (len == 0) {
                break;
            }
        }

        rc = sark_jwt_verify(t, len, &opts, NOW, arena_alloc, &arena,
                             &claims, err, sizeof(err));

        /* canonical base64url: any change to the text must fail */
        CHECK(rc != SARK_JWT_OK || (len == strlen(orig)
                                    && memcmp(t, orig, len) == 0));
        CHECK(rc == SARK_JWT_OK || err[0] != '\0');
        CHECK(rc != SARK_JWT_ERROR);
        CHECK(ERR_peek_error() == 0);

        arena_reset(&arena);
    }
}
END_TEST


static Suite *
jwt_suite(void)
{
    Suite  *s;
    TCase  *tc;

    s = suite_create("sark_jwt");

    tc = tcase_create("keys");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_key_load);
    tcase_add_test(tc, test_strerror);
    suite_add_tcase(s, tc);

    tc = tcase_create("valid");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_valid, 0, 3);
    tcase_add_test(tc, test_cert_keys);
    tcase_add_test(tc, test_several_keys);
    tcase_add_test(tc, test_typ);
    suite_add_tcase(s, tc);

    tc = tcase_create("alg");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_alg_none, 0,
                        sizeof(none_hdrs) / sizeof(none_hdrs[0]));
    tcase_add_loop_test(tc, test_empty_signature, 0, 3);
    tcase_add_loop_test(tc, test_other_algs, 0,
                        sizeof(other_algs) / sizeof(other_algs[0]));
    tcase_add_test(tc, test_header_shape);
    tcase_add_test(tc, test_confusion);
    suite_add_tcase(s, tc);

    tc = tcase_create("signature");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_tamper, 0, 3);
    tcase_add_test(tc, test_wrong_key);
    tcase_add_test(tc, test_es256_forms);
    suite_add_tcase(s, tc);

    tc = tcase_create("shape");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_base64);
    tcase_add_test(tc, test_segments);
    tcase_add_test(tc, test_too_long);
    tcase_add_test(tc, test_payload_shape);
    suite_add_tcase(s, tc);

    tc = tcase_create("claims");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_exp);
    tcase_add_test(tc, test_nbf);
    tcase_add_test(tc, test_iat);
    tcase_add_test(tc, test_iss);
    tcase_add_test(tc, test_aud);
    tcase_add_test(tc, test_sub);
    tcase_add_test(tc, test_token_kind);
    tcase_add_test(tc, test_roles);
    tcase_add_test(tc, test_teams);
    tcase_add_test(tc, test_agent_claims);
    tcase_add_test(tc, test_jwks);
    suite_add_tcase(s, tc);

    tc = tcase_create("robustness");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_err_never_echoes);
    tcase_add_loop_test(tc, test_oom, 0, 3);
    tcase_add_test(tc, test_fuzz);
    suite_add_tcase(s, tc);

    return s;
}


int
main(void)
{
    SRunner  *sr;
    int       failed;

    keys_load();

    sr = srunner_create(jwt_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);

    keys_free();

    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
