/*
 * tls: OpenSSL contexts for inbound STARTTLS and outbound TLS.
 *
 * Builds SSL_CTX objects from Momentum's options (tls_certificate, tls_key,
 * tls_ciphers, tls_protocols, tls_ca, tls_client_ca) and describes finished
 * sessions for Received headers and logs. Contexts are reference-counted by
 * OpenSSL and shared by every loop (SSL_CTX is thread-safe once built).
 * tls_protocols follows Momentum's syntax: a colon-separated list of
 * "+NAME" / "-NAME" (or a bare NAME = +NAME) over ALL, SSLv3, TLSv1, TLSv1.0,
 * TLSv1.1, TLSv1.2, TLSv1.3; the default is "+ALL", which celer takes to
 * mean TLS 1.2 and later (OpenSSL 3 builds refuse older protocols at its
 * default security level anyway).
 */
#ifndef CELER_NET_TLS_H
#define CELER_NET_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

struct tls_server_opts {
    const char *certificate; /* PEM chain */
    const char *key;         /* PEM key */
    const char *ciphers;     /* OpenSSL cipher list, NULL for the default */
    const char *protocols;   /* Momentum syntax, NULL for the default */
    const char *client_ca;   /* CA file for client certificates, or NULL */
    const char *verify_mode; /* "require", "none" or NULL (verify if presented) */
};

struct tls_client_opts {
    const char *ca; /* CA file for verification, NULL: system store */
    const char *ciphers;
    const char *protocols;
    const char *certificate; /* optional client certificate */
    const char *key;
};

/* NULL with the reason in why. */
SSL_CTX *tls_server_ctx_new(const struct tls_server_opts *o, struct buf *why);
SSL_CTX *tls_client_ctx_new(const struct tls_client_opts *o, struct buf *why);
/* A new SSL for a connection; NULL if OpenSSL fails (why filled). */
SSL *tls_new_ssl(SSL_CTX *ctx, struct buf *why);
/* Appends the OpenSSL error queue to why and clears it. */
void tls_errors(struct buf *why);

/* "version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 bits=256" */
void tls_describe(const SSL *ssl, struct buf *out);
/* For Received: "(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))" */
void tls_received_clause(const SSL *ssl, struct buf *out);
/* The peer certificate's subject and CN, and whether it verified. */
bool tls_peer_verified(const SSL *ssl);

#endif
