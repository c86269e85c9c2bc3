/*
 * tls: OpenSSL contexts and session descriptions (see tls.h).
 */
#include "net/tls.h"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <string.h>
#include <strings.h>

void
tls_errors(struct buf *why)
{
    unsigned long e;
    char msg[256];

    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, msg, sizeof(msg));
        buf_printf(why, "%s%s", buf_len(why) ? "; " : "", msg);
    }
}

/* Maps Momentum's "+ALL:-TLSv1.1" onto min/max protocol versions. */
static int
tls_apply_protocols(SSL_CTX *ctx, const char *spec, struct buf *why)
{
    static const struct {
        const char *name;
        int version;
    } known[] = {
        {"SSLv3", SSL3_VERSION},     {"TLSv1", TLS1_VERSION},     {"TLSv1.0", TLS1_VERSION},
        {"TLSv1.1", TLS1_1_VERSION}, {"TLSv1.2", TLS1_2_VERSION}, {"TLSv1.3", TLS1_3_VERSION},
    };
    bool on[5] = {false, false, true, true, true}; /* SSLv3 TLSv1 TLSv1.1 TLSv1.2 TLSv1.3 */
    int min = 0, max = 0;
    char copy[256];

    if (spec == NULL || *spec == '\0') {
        return SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1 ? 0 : -1;
    }
    snprintf(copy, sizeof(copy), "%s", spec);
    for (char *save = NULL, *tok = strtok_r(copy, ":", &save); tok;
         tok = strtok_r(NULL, ":", &save)) {
        bool enable = *tok != '-';
        size_t i;

        if (*tok == '+' || *tok == '-') {
            tok++;
        }
        if (strcasecmp(tok, "ALL") == 0) {
            for (i = 1; i < 5; i++) {
                on[i] = enable && i >= 3; /* ALL: TLS 1.2 and later */
            }
            on[0] = false;
            continue;
        }
        for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
            if (strcasecmp(tok, known[i].name) == 0) {
                break;
            }
        }
        if (i == sizeof(known) / sizeof(known[0])) {
            buf_printf(why, "tls_protocols: unknown protocol \"%s\"", tok);
            return -1;
        }
        on[known[i].version - SSL3_VERSION] = enable;
    }
    for (int v = 0; v < 5; v++) {
        if (on[v]) {
            if (min == 0) {
                min = SSL3_VERSION + v;
            }
            max = SSL3_VERSION + v;
        }
    }
    if (min == 0) {
        buf_printf(why, "tls_protocols \"%s\" enables no protocol", spec);
        return -1;
    }
    if (SSL_CTX_set_min_proto_version(ctx, min) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, max) != 1) {
        tls_errors(why);
        return -1;
    }
    return 0;
}

static int
tls_common(SSL_CTX *ctx, const char *ciphers, const char *protocols, struct buf *why)
{
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (ciphers && SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
        buf_printf(why, "tls_ciphers \"%s\": ", ciphers);
        tls_errors(why);
        return -1;
    }
    return tls_apply_protocols(ctx, protocols, why);
}

static int
tls_load_pair(SSL_CTX *ctx, const char *cert, const char *key, struct buf *why)
{
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        buf_printf(why, "tls_certificate %s: ", cert);
        tls_errors(why);
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key ? key : cert, SSL_FILETYPE_PEM) != 1) {
        buf_printf(why, "tls_key %s: ", key ? key : cert);
        tls_errors(why);
        return -1;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        buf_printf(why, "tls_key %s does not match tls_certificate %s", key ? key : cert, cert);
        ERR_clear_error();
        return -1;
    }
    return 0;
}

/* Client certificates are checked and recorded, never a reason to fail the handshake. */
static int
tls_accept_any_cert(int preverify, X509_STORE_CTX *x)
{
    (void)preverify;
    (void)x;
    return 1;
}

SSL_CTX *
tls_server_ctx_new(const struct tls_server_opts *o, struct buf *why)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx == NULL) {
        tls_errors(why);
        return NULL;
    }
    if (tls_common(ctx, o->ciphers, o->protocols, why) != 0 ||
        tls_load_pair(ctx, o->certificate, o->key, why) != 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (o->client_ca && (o->verify_mode == NULL || strcasecmp(o->verify_mode, "none") != 0)) {
        if (SSL_CTX_load_verify_locations(ctx, o->client_ca, NULL) != 1) {
            buf_printf(why, "tls_client_ca %s: ", o->client_ca);
            tls_errors(why);
            SSL_CTX_free(ctx);
            return NULL;
        }
        SSL_CTX_set_verify(ctx,
                           SSL_VERIFY_PEER |
                               (o->verify_mode && strcasecmp(o->verify_mode, "require") == 0
                                    ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                                    : 0),
                           tls_accept_any_cert);
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"celer", 5);
    return ctx;
}

SSL_CTX *
tls_client_ctx_new(const struct tls_client_opts *o, struct buf *why)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL) {
        tls_errors(why);
        return NULL;
    }
    if (tls_common(ctx, o->ciphers, o->protocols, why) != 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (o->ca ? SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1
              : SSL_CTX_set_default_verify_paths(ctx) != 1) {
        buf_printf(why, "tls_ca %s: ", o->ca ? o->ca : "(system store)");
        tls_errors(why);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (o->certificate && tls_load_pair(ctx, o->certificate, o->key, why) != 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* verification results are read after the handshake; policy decides */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    return ctx;
}

SSL *
tls_new_ssl(SSL_CTX *ctx, struct buf *why)
{
    SSL *ssl = SSL_new(ctx);

    if (ssl == NULL) {
        tls_errors(why);
    }
    return ssl;
}

void
tls_describe(const SSL *ssl, struct buf *out)
{
    int alg = 0;
    int bits = SSL_get_cipher_bits(ssl, &alg);

    buf_printf(out, "version=%s cipher=%s bits=%d", SSL_get_version(ssl), SSL_get_cipher_name(ssl),
               bits);
}

void
tls_received_clause(const SSL *ssl, struct buf *out)
{
    int alg = 0;
    int bits = SSL_get_cipher_bits(ssl, &alg);

    buf_printf(out, "(using %s with cipher %s (%d/%d bits))", SSL_get_version(ssl),
               SSL_get_cipher_name(ssl), bits, alg);
}

bool
tls_peer_verified(const SSL *ssl)
{
    X509 *peer = SSL_get1_peer_certificate(ssl);
    bool ok = peer != NULL && SSL_get_verify_result(ssl) == X509_V_OK;

    X509_free(peer);
    return ok;
}
