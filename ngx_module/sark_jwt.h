/*
 * JWT (JWS compact serialization) verification: HS256, RS256, ES256.
 *
 * Pure C99 over OpenSSL 3 (-lcrypto), no nginx headers, no global mutable
 * state.  Keys are made at configuration time with OpenSSL allocations
 * and released with sark_jwt_key_free().  sark_jwt_verify() takes every
 * byte it keeps from the caller's allocator (the request pool); OpenSSL
 * objects it needs internally are freed before it returns, and it leaves
 * the OpenSSL error queue empty.
 *
 * Rules enforced by sark_jwt_verify(), in order:
 *   - len > max_token_len (0 means 8192)                     TOO_LONG
 *   - not exactly three non-empty base64url segments (no '=' padding,
 *     no '+' or '/', no stray bits), or header not a JSON object,
 *     "alg" missing or not a string, "crit" present, "typ" present but
 *     not "JWT"/"at+jwt" (any case)                           MALFORMED
 *   - "alg" not HS256/RS256/ES256 ("none" in any case too), empty
 *     signature, or no configured key of that algorithm's type
 *                                                      UNSUPPORTED_ALG
 *   - HS256 checks only HS256 secrets, RS256 only RSA keys, ES256 only
 *     P-256 keys (raw 64-byte R||S); no key verifies        BAD_SIGNATURE
 *   - only then the payload is decoded; not a JSON object   MALFORMED
 *   - a known claim of the wrong type (exp/nbf/iat not numbers, iss/sub/
 *     email/jti/agent_id/trust_level/environment/role not strings, aud
 *     not a string or array of strings, roles/teams/groups/capabilities
 *     not arrays of strings), exp missing, sub missing or empty and no
 *     non-empty agent_id                                      BAD_CLAIMS
 *   - now >= exp + leeway                                     EXPIRED
 *   - now + leeway < nbf                                      NOT_YET_VALID
 *   - issuer set and iss missing or different                 BAD_ISSUER
 *   - audience set and aud missing or not containing it       BAD_AUDIENCE
 * Header and payload are parsed with sark_json (depth 16, duplicate keys
 * rejected).  A token's "kid" selects the keys of that kid (JWKS keys)
 * and those without one; a token without "kid" is tried with every key of
 * its algorithm.  "jku", "jwk", "x5u" and "x5c" are ignored: keys come
 * from the configuration only.  Messages in err are short,
 * fixed texts that never quote the token.
 */

#ifndef SARK_JWT_H_INCLUDED_
#define SARK_JWT_H_INCLUDED_

#include <stddef.h>

#include "sark_json.h"

#ifdef __cplusplus
extern "C" {
#endif


typedef struct sark_jwt_key_s  sark_jwt_key_t;

typedef enum {
    SARK_JWT_ALG_HS256 = 1,
    SARK_JWT_ALG_RS256,
    SARK_JWT_ALG_ES256
} sark_jwt_alg_e;

typedef struct {
    const sark_jwt_key_t *const  *keys;        /* accepted keys */
    size_t                        nkeys;
    const char                   *issuer;      /* NULL: not checked */
    const char                   *audience;    /* NULL: not checked */
    long                          leeway;      /* seconds, exp and nbf */
    size_t                        max_token_len;   /* 0: 8192 */
} sark_jwt_opts_t;

typedef struct {
    const char  *s;
    size_t       len;
} sark_jwt_str_t;

typedef struct {
    sark_jwt_str_t      sub;            /* agent_id when sub is absent */
    sark_jwt_str_t      email;
    sark_jwt_str_t      iss;
    sark_jwt_str_t      jti;

    sark_jwt_str_t     *roles;          /* "roles", else one "role" */
    size_t              nroles;
    sark_jwt_str_t     *teams;          /* "teams", else "groups" */
    size_t              nteams;

    long long           exp;            /* 0 when absent; floats floored */
    long long           nbf;
    long long           iat;

    sark_jwt_str_t      agent_id;       /* agent tokens */
    sark_jwt_str_t      trust_level;
    sark_jwt_str_t      environment;
    sark_jwt_str_t     *capabilities;
    size_t              ncapabilities;

    const sark_json_t  *payload;        /* every other claim */
} sark_jwt_claims_t;

/*
 * Strings in claims point into the parsed payload: valid UTF-8,
 * NUL-terminated, without embedded NUL; absent ones are {NULL, 0}.
 */

typedef enum {
    SARK_JWT_OK = 0,
    SARK_JWT_MALFORMED,
    SARK_JWT_UNSUPPORTED_ALG,
    SARK_JWT_BAD_SIGNATURE,
    SARK_JWT_EXPIRED,
    SARK_JWT_NOT_YET_VALID,
    SARK_JWT_BAD_ISSUER,
    SARK_JWT_BAD_AUDIENCE,
    SARK_JWT_BAD_CLAIMS,
    SARK_JWT_TOO_LONG,
    SARK_JWT_ERROR          /* out of memory or OpenSSL failure: a 500 */
} sark_jwt_rc_e;


#define SARK_JWT_DEFAULT_MAX_LEN  8192
#define SARK_JWT_HS256_MIN_SECRET 32
#define SARK_JWT_RSA_MIN_BITS     2048
#define SARK_JWT_MAX_KID          256     /* bytes of a JWK's "kid", less */

/* a buffer of this size always holds a full error message */
#define SARK_JWT_ERR_LEN          256


/* HS256 secret of at least 32 bytes; NULL with a message in err */
sark_jwt_key_t *sark_jwt_key_hs256(const unsigned char *secret, size_t len,
    char *err, size_t err_len);

/*
 * PEM "PUBLIC KEY" or "CERTIFICATE" (the first one in the file; the
 * certificate is only a key container, it is not validated).  RSA of at
 * least 2048 bits gives an RS256 key, EC P-256 an ES256 key; anything
 * else (private keys, other curves, RSA-PSS, Ed25519) is refused.
 */
sark_jwt_key_t *sark_jwt_key_pem_file(const char *path, char *err,
    size_t err_len);

/*
 * One JWK of a JWKS document: RSA ("n", "e") gives an RS256 key, EC P-256
 * ("x", "y") an ES256 key, with the JWK's "kid".  NULL with a message in
 * err; *skip is then 1 when the JWK is simply not a signing key of ours
 * ("use" not "sig", another "alg", "kty" or curve), 0 when it is broken.
 */
sark_jwt_key_t *sark_jwt_key_jwk(const sark_json_t *jwk, int *skip,
    char *err, size_t err_len);

void sark_jwt_key_free(sark_jwt_key_t *k);

sark_jwt_alg_e sark_jwt_key_alg(const sark_jwt_key_t *k);

/* "HS256", "RS256" or "ES256" */
const char *sark_jwt_alg_name(sark_jwt_alg_e alg);

/*
 * Verifies token[0..len) at time now (seconds since the epoch).  claims is
 * zeroed first and is meaningful only when SARK_JWT_OK is returned.
 */
sark_jwt_rc_e sark_jwt_verify(const char *token, size_t len,
    const sark_jwt_opts_t *opts, long long now, sark_json_alloc_pt alloc,
    void *actx, sark_jwt_claims_t *claims, char *err, size_t err_len);

/* short fixed text for rc, e.g. "token expired" */
const char *sark_jwt_strerror(sark_jwt_rc_e rc);


#ifdef __cplusplus
}
#endif

#endif /* SARK_JWT_H_INCLUDED_ */
