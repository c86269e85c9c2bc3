/*
 * spool_format: encoding and decoding of one spooled message file (pure:
 * no file I/O; encoders append to a struct buf, decoders read bytes from
 * memory or through a caller-supplied read callback).
 *
 * File layout (docs/spool-format.md has every byte):
 *   "CELRSPL" version                       file header, 8 bytes
 *   ENVELOPE record                         tagged fields
 *   BODY record (u64 body length)           17 bytes, patched in place at the end
 *   body bytes                              contiguous: one pread/sendfile range
 *   u32 CRC32C of the body bytes
 *   PREPEND record                          header lines sent before the body
 *   END record (u64 offset, u32 body CRC, u32 CRC32C of all before END)
 *   PROGRESS records ...                    appended later, each self-checked
 * A record is: type (1 byte), u32 LE payload length, payload, u32 LE CRC32C
 * of type+length+payload. A message is complete iff a valid END exists.
 *
 * Writing streams: spool_enc_begin() gives the head (file header, ENVELOPE,
 * a BODY header whose length says "still streaming"), spool_enc_body() folds
 * each body chunk into a running CRC (the caller writes the chunk itself),
 * spool_enc_finish() gives the tail (body CRC, PREPEND, END) and the final
 * 17-byte BODY header to pwrite() at enc.body_hdr_off. Progress is appended
 * with spool_progress_encode().
 *
 * Reading: spool_decode() walks the records through a read callback (pread)
 * or over memory. Without SPOOL_DECODE_VERIFY_BODY it never reads the body:
 * it reads the head and the tail, checks END's whole-file CRC by combining
 * the stored body CRC (crc32c_combine) and the trailer against END's copy
 * of the body CRC, so recovery scans a large spool quickly and only the body
 * bytes themselves go unchecked. Results: 0 (complete, progress folded),
 * SPOOL_EINCOMPLETE (a prefix of a valid file, or one ending in zero bytes:
 * a writer died before the message was acknowledged), CELER_ECORRUPT (failed
 * checks: keep the file for an operator), or the callback's -errno.
 *
 * Limits: at most SPOOL_RCPT_MAX recipients, record payloads at most
 * SPOOL_RECORD_MAX bytes; memory is bounded by the file's size plus one
 * slot per recipient. Hostile bytes can make decoding fail, never read out
 * of bounds.
 * Decoded strings are views that are not NUL-terminated, owned by the
 * struct spool_msg that holds them.
 */
#ifndef CELER_SPOOL_SPOOL_FORMAT_H
#define CELER_SPOOL_SPOOL_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/strv.h"

#define SPOOL_MAGIC            "CELRSPL"
#define SPOOL_MAGIC_LEN        7
#define SPOOL_VERSION          1
#define SPOOL_FILE_HDR_LEN     8
#define SPOOL_REC_HDR_LEN      5          /* type + u32 length */
#define SPOOL_REC_CRC_LEN      4          /* trailing CRC32C */
#define SPOOL_REC_OVERHEAD     9          /* header + CRC */
#define SPOOL_BODY_HDR_LEN     17         /* BODY record: u64 length */
#define SPOOL_BODY_TRAILER_LEN 4          /* u32 CRC32C of the body */
#define SPOOL_END_PAYLOAD_LEN  16         /* u64 offset, u32 body CRC, u32 file CRC */
#define SPOOL_END_LEN          25         /* whole END record */
#define SPOOL_BODY_LEN_UNKNOWN UINT64_MAX /* placeholder while streaming */
#define SPOOL_RCPT_MAX         100000     /* recipients per message */
#define SPOOL_RECORD_MAX       ((uint32_t)64 * 1024 * 1024) /* record payload bytes */

/* The 8 bytes a file parked for reuse starts with (spool_recycle.h): never a message. */
#define SPOOL_PARKED_HDR "CELRFRE\001"

/*
 * The decoder's "no END yet" result: a prefix of a valid file. Not in
 * core/err.h (spool-specific); spool_err_str() names it.
 */
#define SPOOL_EINCOMPLETE (CELER_EBASE - 100)

enum spool_rec_type {
    SPOOL_REC_ENVELOPE = 'E',
    SPOOL_REC_BODY = 'B',
    SPOOL_REC_PREPEND = 'H',
    SPOOL_REC_END = 'Z',
    SPOOL_REC_PROGRESS = 'P',
};

enum spool_body_type {
    SPOOL_BODY_7BIT = 0,
    SPOOL_BODY_8BITMIME = 1,
    SPOOL_BODY_BINARYMIME = 2,
};

enum spool_ret {
    SPOOL_RET_UNSET = 0,
    SPOOL_RET_FULL = 1,
    SPOOL_RET_HDRS = 2,
};

/* DSN NOTIFY bits; 0 means the client gave no NOTIFY. NEVER stands alone. */
#define SPOOL_NOTIFY_NEVER   0x1u
#define SPOOL_NOTIFY_SUCCESS 0x2u
#define SPOOL_NOTIFY_FAILURE 0x4u
#define SPOOL_NOTIFY_DELAY   0x8u

enum spool_rcpt_state {
    SPOOL_RCPT_UNCHANGED = -1, /* in a progress update: leave the state alone */
    SPOOL_RCPT_PENDING = 0,
    SPOOL_RCPT_DELIVERED = 1,
    SPOOL_RCPT_FAILED = 2, /* permanent */
};

/*
 * Optional strings are absent when .ptr is NULL; present-but-empty is a
 * non-NULL .ptr with .len 0.
 */
struct spool_rcpt {
    struct strv addr;
    struct strv orcpt_type; /* ORCPT addr-type, e.g. "rfc822"; optional */
    struct strv orcpt_addr; /* ORCPT value, xtext-decoded; present iff orcpt_type is */
    unsigned notify;        /* SPOOL_NOTIFY_* bits, 0 = unset */
};

/*
 * The envelope. Encoding: everything borrowed from the caller. Decoding:
 * strings and rcpts owned by the struct spool_msg that holds it.
 */
struct spool_envelope {
    struct strv id; /* spool_id text, mandatory */
    int64_t ctime_us;
    struct strv sender; /* empty = null sender <> */
    struct spool_rcpt *rcpts;
    size_t rcpt_count;
    enum spool_ret ret;
    struct strv envid; /* optional */
    enum spool_body_type body_type;
    bool smtputf8;
    bool priority;
    struct strv protocol;      /* "esmtp", "http", "internal", ...; optional */
    struct strv source_ip;     /* text; optional */
    struct strv helo;          /* optional */
    struct strv auth_user;     /* optional */
    struct strv listener;      /* listener or pathway name; optional */
    struct strv binding_group; /* optional, set by policy */
    struct strv binding;       /* optional, set by policy */
};

/* ---- Streaming encoder ---- */

struct spool_enc {
    uint64_t body_hdr_off; /* where the BODY record starts: pwrite the final header here */
    uint64_t body_off;     /* first body byte */
    uint64_t body_len;     /* body bytes so far */
    uint32_t body_crc;     /* running CRC32C of the body */
    uint32_t head_crc;     /* CRC32C of bytes [0, body_hdr_off) */
    uint64_t end_off;      /* after finish: offset of the END record */
    uint64_t file_len;     /* after finish: length of the complete file */
};

/*
 * Validates env and appends the head of the file to out: file header,
 * ENVELOPE and a BODY header saying "length unknown". The head is
 * enc->body_off bytes long. -EINVAL for an invalid envelope (bad id, bad
 * enum or NOTIFY value, ORCPT half given), CELER_ELIMIT over SPOOL_RCPT_MAX
 * recipients, SPOOL_RECORD_MAX bytes or out's ceiling.
 */
int spool_enc_begin(struct spool_enc *enc, struct buf *out,
                    const struct spool_envelope *env) CELER_WUR;
/* Accounts for the next len body bytes, which the caller writes itself. */
void spool_enc_body(struct spool_enc *enc, const void *p, size_t len);
/*
 * Appends the tail to out: body CRC, PREPEND (prepend = header lines, each
 * ending in CRLF, may be empty) and END. Fills body_hdr with the final BODY
 * header, to be written over the placeholder at enc->body_hdr_off.
 * CELER_ELIMIT if prepend exceeds SPOOL_RECORD_MAX or out's ceiling.
 */
int spool_enc_finish(struct spool_enc *enc, struct buf *out, struct strv prepend,
                     uint8_t body_hdr[SPOOL_BODY_HDR_LEN]) CELER_WUR;
/* The BODY header for a known body length (what finish produces). */
void spool_body_hdr_encode(uint64_t body_len, uint8_t out[SPOOL_BODY_HDR_LEN]);

/* A whole file in one call (small messages, tests, the in-memory spool). */
int spool_encode(struct buf *out, const struct spool_envelope *env, struct strv body,
                 struct strv prepend) CELER_WUR;

/* ---- Progress ---- */

struct spool_rcpt_update {
    uint32_t index;              /* into the envelope's recipients */
    enum spool_rcpt_state state; /* or SPOOL_RCPT_UNCHANGED */
    struct strv binding_group;   /* reassignment; .ptr NULL = unchanged */
    struct strv binding;         /* reassignment; .ptr NULL = unchanged */
};

/* One PROGRESS record: only what is set changes when folded. */
struct spool_progress {
    bool has_attempts;
    uint32_t attempts; /* total attempts so far (absolute, not a delta) */
    bool has_next_attempt;
    int64_t next_attempt_s;                  /* unix seconds */
    struct strv response;                    /* last response text; .ptr NULL = unchanged */
    struct strv binding_group;               /* message-level reassignment; .ptr NULL = unchanged */
    struct strv binding;                     /* message-level reassignment; .ptr NULL = unchanged */
    const struct spool_rcpt_update *updates; /* borrowed */
    size_t update_count;
};

/*
 * Appends one PROGRESS record to out (append it to the file at
 * msg.valid_len). -EINVAL for a bad state value, CELER_ELIMIT over
 * SPOOL_RECORD_MAX bytes or out's ceiling.
 */
int spool_progress_encode(struct buf *out, const struct spool_progress *p) CELER_WUR;

/* ---- Decoder ---- */

/*
 * Reads exactly len bytes at off into dst: 0, or -errno (a short read is an
 * error: the decoder never asks beyond the size it was given).
 */
typedef int spool_read_fn(void *arg, uint64_t off, void *dst, size_t len);

struct spool_source {
    spool_read_fn *read; /* NULL: the file is mem */
    void *arg;           /* for read */
    struct strv mem;     /* borrowed: the whole file when read is NULL */
    uint64_t size;       /* file size when read is set */
};

/* Also read and check the body against its CRC (otherwise it is skipped). */
#define SPOOL_DECODE_VERIFY_BODY 0x1u

/* Per-recipient state folded from PROGRESS records. */
struct spool_rcpt_progress {
    enum spool_rcpt_state state; /* PENDING, DELIVERED or FAILED */
    struct strv binding_group;   /* last reassignment; .ptr NULL = none */
    struct strv binding;         /* last reassignment; .ptr NULL = none */
};

struct spool_blob;

struct spool_msg {
    struct spool_envelope env;         /* binding fields include message-level reassignments */
    struct spool_rcpt_progress *rprog; /* owned, env.rcpt_count entries */
    uint64_t body_off;                 /* body bytes are [body_off, body_off + body_len) */
    uint64_t body_len;
    uint32_t body_crc;   /* as stored */
    struct strv prepend; /* header lines to send before the body */
    uint64_t end_off;    /* offset of the END record */
    /* End of the last valid record: append PROGRESS here. */
    uint64_t valid_len;
    /*
     * Bytes after valid_len were a torn or damaged tail and were ignored:
     * truncate the file to valid_len before appending.
     */
    bool tail_damaged;
    size_t progress_count; /* PROGRESS records folded */
    uint32_t attempts;
    int64_t next_attempt_s;    /* 0 = never set */
    struct strv last_response; /* .ptr NULL = none */
    /* On failure: where and what (a static string), for the log line. */
    uint64_t bad_off;
    const char *bad_what;
    struct spool_blob *blobs; /* owned: copies the views point into */
};

/*
 * Decodes a file. out is always initialised: release it whatever the
 * result. Returns 0, SPOOL_EINCOMPLETE, CELER_ECORRUPT or a read error.
 */
int spool_decode(const struct spool_source *src, unsigned flags, struct spool_msg *out) CELER_WUR;
int spool_decode_mem(struct strv file, unsigned flags, struct spool_msg *out) CELER_WUR;
void spool_msg_release(struct spool_msg *m);

/* err_str() that also names SPOOL_EINCOMPLETE. */
const char *spool_err_str(int err);

#endif
