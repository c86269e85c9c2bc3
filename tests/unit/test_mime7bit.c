/*
 * test_mime7bit: 8-bit to 7-bit MIME downconversion.
 *
 * A table of messages with the exact output expected (and the result
 * flags); every output is also checked for what a 7-bit relay needs (no
 * octet above 127 unless header_8bit, no line over 998 octets), and, for
 * the well-formed ones, against an independent reader: Python's email
 * package parses input and output, and every part must have the same type,
 * the same header fields (Content-Transfer-Encoding and the added ones
 * aside) and the same decoded body (line ends compared in any form: Python
 * itself reads a bare CR of an 8bit body as a line end). Long lines,
 * trailing blanks, every octet value, binary bodies and deep nesting are
 * also checked byte for byte by decoding the output here.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/base64.h"
#include "core/buf.h"
#include "msg/mime7bit.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define S(lit)   lit, sizeof(lit) - 1

static char tmpdir[64];

/* ---- checks shared by every case ---- */

/* No line over 998 octets; no octet above 127 unless allowed. */
static void
assert_relayable(struct strv out, bool allow_8bit)
{
    size_t line = 0;

    for (size_t i = 0; i < out.len; i++) {
        unsigned char c = (unsigned char)out.ptr[i];

        if (c > 127 && !allow_8bit) {
            fail_msg("8-bit octet 0x%02x at %zu", c, i);
        }
        if (c == '\n') {
            line = 0;
        } else if (++line > 998 + (c == '\r')) {
            fail_msg("line over 998 octets ending at %zu", i);
        }
    }
}

/* Writes len octets to tmpdir/name. */
static void
write_file(const char *name, const char *p, size_t len)
{
    char path[128];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* The independent reader: exits 0 when both messages mean the same. */
static const char oracle_py[] =
    "import email, re, sys\n"
    "def load(p):\n"
    "    with open(p, 'rb') as f:\n"
    "        return email.message_from_binary_file(f)\n"
    "ADDED = ('content-transfer-encoding', 'mime-version')\n"
    "def fields(m, with_ct):\n"
    "    return [(k.lower(), v) for k, v in m.items() if k.lower() not in ADDED and\n"
    "            (with_ct or k.lower() != 'content-type')]\n"
    "a, b = load(sys.argv[1]), load(sys.argv[2])\n"
    "pa, pb = list(a.walk()), list(b.walk())\n"
    "assert len(pa) == len(pb), ('parts', len(pa), len(pb))\n"
    "for x, y in zip(pa, pb):\n"
    "    assert x.get_content_type() == y.get_content_type(), (x.get_content_type(),\n"
    "                                                         y.get_content_type())\n"
    "    ct = 'content-type' in x\n"
    "    assert fields(x, ct) == fields(y, ct), (fields(x, ct), fields(y, ct))\n"
    "    if x.is_multipart():\n"
    "        continue\n"
    "    da, db = x.get_payload(decode=True), y.get_payload(decode=True)\n"
    "    # line ends in any form (Python reads a bare CR in an 8bit body as one)\n"
    "    da, db = re.sub(b'\\r\\n?', b'\\n', da), re.sub(b'\\r\\n?', b'\\n', db)\n"
    "    assert da == db, (da[:300], db[:300])\n"
    "    if any(c > 127 for c in da):\n"
    "        assert y.get('content-transfer-encoding', '').lower() in\\\n"
    "            ('quoted-printable', 'base64'), y.get('content-transfer-encoding')\n";

static void
assert_oracle(struct strv in, struct strv out)
{
    char python[] = "/usr/bin/python3";
    char script[128], a[128], b[128];
    pid_t pid;
    int status;

    write_file("oracle.py", oracle_py, sizeof(oracle_py) - 1);
    write_file("in.eml", in.ptr, in.len);
    write_file("out.eml", out.ptr, out.len);
    snprintf(script, sizeof(script), "%s/oracle.py", tmpdir);
    snprintf(a, sizeof(a), "%s/in.eml", tmpdir);
    snprintf(b, sizeof(b), "%s/out.eml", tmpdir);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char *argv[] = {python, script, a, b, NULL};

        execv(argv[0], argv);
        _exit(127);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fail_msg("Python's email package reads the output differently (status %d)", status);
    }
}

/* Converts in (asserting success and the common properties) into out (initialised here). */
static void
convert(struct strv in, struct buf *out, struct mime7bit_result *res)
{
    buf_init(out, BUF_UNLIMITED);
    assert_int_equal(try_mime7bit_convert(in, out, res), 0);
    assert_relayable(buf_data(out), res->header_8bit);
    if (!mime7bit_needed(in)) {
        assert_int_equal(buf_len(out), in.len);
        assert_memory_equal(buf_data(out).ptr, in.ptr, in.len);
        assert_int_equal(res->converted, 0);
    }
}

static void
assert_bytes(struct strv got, const char *want, size_t want_len)
{
    if (got.len != want_len || memcmp(got.ptr, want, want_len) != 0) {
        fail_msg("output differs:\n---- got (%zu)\n%.*s\n---- want (%zu)\n%.*s\n----", got.len,
                 STRV_FMT(got), want_len, (int)want_len, want);
    }
}

/* ---- the table ---- */

struct mcase {
    const char *name;
    const char *in;
    size_t in_len;
    const char *want; /* exact output */
    size_t want_len;
    unsigned converted;
    bool header_8bit;
    bool malformed;
    bool oracle; /* well-formed: Python's reading must match */
};

static const struct mcase cases[] = {
    {"seven_bit_untouched",
     S("MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nplain ascii =3D\r\n"),
     S("MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nplain ascii =3D\r\n"), 0, false, false,
     true},
    {"non_mime_text",
     S("From: a@example.com\r\nSubject: hi\r\n\r\nGr\xc3\xbc\xc3\x9f"
       "e = 100%\r\n"),
     S("From: a@example.com\r\nSubject: hi\r\nMIME-Version: 1.0\r\n"
       "Content-Type: text/plain; charset=unknown-8bit\r\n"
       "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
       "Gr=C3=BC=C3=9Fe =3D 100%\r\n"),
     1, false, false, true},
    {"utf8_8bit_replaced_in_place",
     S("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
       "Content-Transfer-Encoding: 8bit\r\nSubject: x\r\n\r\n"
       "d\xc3\xa9j\xc3\xa0 vu  \r\ntab\t\r\n\r\n"),
     S("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
       "Content-Transfer-Encoding: quoted-printable\r\nSubject: x\r\n\r\n"
       "d=C3=A9j=C3=A0 vu =20\r\ntab=09\r\n\r\n"),
     1, false, false, true},
    {"multipart_text_and_binary",
     S("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XyZ\"\r\n\r\n"
       "preamble\r\n--XyZ\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\n"
       "Caf\xe9\r\n--XyZ\r\nContent-Type: application/octet-stream\r\n"
       "Content-Transfer-Encoding: binary\r\n\r\n\x00\x01\xff\xfe\r\n--XyZ--\r\n"
       "epilogue\r\n"),
     S("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XyZ\"\r\n\r\n"
       "preamble\r\n--XyZ\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
       "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
       "Caf=E9\r\n--XyZ\r\nContent-Type: application/octet-stream\r\n"
       "Content-Transfer-Encoding: base64\r\n\r\nAAH//g==\r\n--XyZ--\r\n"
       "epilogue\r\n"),
     2, false, false, true},
    {"nested_alternative_relabelled",
     S("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=outer\r\n"
       "Content-Transfer-Encoding: 8bit\r\n\r\n"
       "--outer\r\nContent-Type: multipart/alternative;\r\n boundary=\"inner (x)\"\r\n\r\n"
       "--inner (x)\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xc3\xa9t\xc3\xa9\r\n"
       "--inner (x)\r\nContent-Type: text/html; charset=utf-8\r\n"
       "Content-Transfer-Encoding: quoted-printable\r\n\r\n<p>=C3=A9t=C3=A9</p>\r\n"
       "--inner (x)--\r\n"
       "--outer\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n"
       "--outer--\r\n"),
     S("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=outer\r\n"
       "Content-Transfer-Encoding: 7bit\r\n\r\n"
       "--outer\r\nContent-Type: multipart/alternative;\r\n boundary=\"inner (x)\"\r\n\r\n"
       "--inner (x)\r\nContent-Type: text/plain; charset=utf-8\r\n"
       "Content-Transfer-Encoding: quoted-printable\r\n\r\n=C3=A9t=C3=A9\r\n"
       "--inner (x)\r\nContent-Type: text/html; charset=utf-8\r\n"
       "Content-Transfer-Encoding: quoted-printable\r\n\r\n<p>=C3=A9t=C3=A9</p>\r\n"
       "--inner (x)--\r\n"
       "--outer\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n"
       "iVBORw==\r\n"
       "--outer--\r\n"),
     2, false, false, true},
    {"message_rfc822",
     S("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
       "--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
       "--b\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
       "From: c@example.com\r\nSubject: old\r\n\r\nna\xc3\xafve\r\n"
       "--b--\r\n"),
     S("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
       "--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
       "--b\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
       "From: c@example.com\r\nSubject: old\r\nMIME-Version: 1.0\r\n"
       "Content-Type: text/plain; charset=unknown-8bit\r\n"
       "Content-Transfer-Encoding: quoted-printable\r\n\r\nna=C3=AFve\r\n"
       "--b--\r\n"),
     1, false, false, true},
    {"digest_parts_are_messages",
     S("MIME-Version: 1.0\r\nContent-Type: multipart/digest; boundary=d\r\n\r\n"
       "--d\r\n\r\nSubject: one\r\n\r\n\xe9\r\n--d--\r\n"),
     S("MIME-Version: 1.0\r\nContent-Type: multipart/digest; boundary=d\r\n\r\n"
       "--d\r\n\r\nSubject: one\r\nMIME-Version: 1.0\r\n"
       "Content-Type: text/plain; charset=unknown-8bit\r\n"
       "Content-Transfer-Encoding: quoted-printable\r\n\r\n=E9\r\n--d--\r\n"),
     1, false, false, true},
    {"encoded_parts_untouched",
     S("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
       "--b\r\nContent-Transfer-Encoding: base64\r\n\r\nw6k=\r\n"
       "--b\r\nContent-Transfer-Encoding: Quoted-Printable\r\n\r\n=C3=A9 long=\r\nline\r\n"
       "--b\r\nContent-Type: text/plain; charset=\"utf-8\"\r\n\r\n\xc3\xa9\r\n--b--\r\n"),
     S("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
       "--b\r\nContent-Transfer-Encoding: base64\r\n\r\nw6k=\r\n"
       "--b\r\nContent-Transfer-Encoding: Quoted-Printable\r\n\r\n=C3=A9 long=\r\nline\r\n"
       "--b\r\nContent-Type: text/plain; charset=\"utf-8\"\r\n"
       "Content-Transfer-Encoding: quoted-printable\r\n\r\n=C3=A9\r\n--b--\r\n"),
     1, false, false, true},
    {"bare_lf", S("Subject: lf\n\nline \xc3\xa9\n-- \nsig\n"),
     S("Subject: lf\nMIME-Version: 1.0\nContent-Type: text/plain; charset=unknown-8bit\n"
       "Content-Transfer-Encoding: quoted-printable\n\nline =C3=A9\n--=20\nsig\n"),
     1, false, false, true},
    {"no_final_line_end", S("Subject: x\r\n\r\nend \xc3\xa9 "),
     S("Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=unknown-8bit\r\n"
       "Content-Transfer-Encoding: quoted-printable\r\n\r\nend =C3=A9 =\r\n"),
     1, false, false, true},
    {"bare_cr_and_controls", S("Subject: x\r\n\r\na\rb\x01\x7f\xff\r\n"),
     S("Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=unknown-8bit\r\n"
       "Content-Transfer-Encoding: quoted-printable\r\n\r\na=0Db=01=7F=FF\r\n"),
     1, false, false, true},
    {"no_header_section", S("just a body \xe9\r\n"),
     S("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=unknown-8bit\r\n"
       "Content-Transfer-Encoding: quoted-printable\r\n\r\njust a body =E9\r\n"),
     1, false, true, false},
    {"malformed_header_ends_at_non_field", S("From: a@example.com\r\nnot a field\r\nb\xe9\r\n"),
     S("From: a@example.com\r\nMIME-Version: 1.0\r\n"
       "Content-Type: text/plain; charset=unknown-8bit\r\n"
       "Content-Transfer-Encoding: quoted-printable\r\n\r\nnot a field\r\nb=E9\r\n"),
     1, false, true, false},
    {"header_8bit_only", S("Subject: \xc3\xa9t\xc3\xa9\r\n\r\nbody\r\n"),
     S("Subject: \xc3\xa9t\xc3\xa9\r\n\r\nbody\r\n"), 0, true, false, false},
    {"header_8bit_and_body", S("Subject: \xc3\xa9\r\n\r\n\xc3\xa9\r\n"),
     S("Subject: \xc3\xa9\r\nMIME-Version: 1.0\r\n"
       "Content-Type: text/plain; charset=unknown-8bit\r\n"
       "Content-Transfer-Encoding: quoted-printable\r\n\r\n=C3=A9\r\n"),
     1, true, false, false},
    {"inner_header_8bit_keeps_8bit_label",
     S("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n"
       "Content-Transfer-Encoding: 8bit\r\n\r\n"
       "--b\r\nContent-Disposition: attachment; filename=\"\xc3\xa9.txt\"\r\n\r\n\xc3\xa9\r\n"
       "--b--\r\n"),
     S("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n"
       "Content-Transfer-Encoding: 8bit\r\n\r\n"
       "--b\r\nContent-Disposition: attachment; filename=\"\xc3\xa9.txt\"\r\n"
       "Content-Type: text/plain; charset=unknown-8bit\r\n"
       "Content-Transfer-Encoding: quoted-printable\r\n\r\n=C3=A9\r\n"
       "--b--\r\n"),
     1, true, false, false},
    {"preamble_epilogue_8bit",
     S("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
       "pr\xe9\r\n--b\r\n\r\n\xe9\r\n--b-- \xe9\r\nepi\xe9\r\n"),
     S("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
       "pr?\r\n--b\r\nContent-Type: text/plain; charset=unknown-8bit\r\n"
       "Content-Transfer-Encoding: quoted-printable\r\n\r\n=E9\r\n--b-- ?\r\nepi?\r\n"),
     1, false, false, false}, /* Python reads "--b-- junk" as content */
    {"boundary_lookalikes_are_content",
     S("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
       "--b  \r\n\r\n--bb \xe9\r\n --b\r\n--b\r\n\r\nx\r\n--b--\r\n"),
     S("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
       "--b  \r\nContent-Type: text/plain; charset=unknown-8bit\r\n"
       "Content-Transfer-Encoding: quoted-printable\r\n\r\n--bb =E9\r\n --b\r\n"
       "--b\r\n\r\nx\r\n--b--\r\n"),
     1, false, false, true},
    {"empty_parts",
     S("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
       "--b\r\n--b\r\n\r\n\xe9\r\n--b--"),
     S("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
       "--b\r\n--b\r\nContent-Type: text/plain; charset=unknown-8bit\r\n"
       "Content-Transfer-Encoding: quoted-printable\r\n\r\n=E9\r\n--b--"),
     1, false, false, false},
    {"repair_qp_with_raw_8bit",
     S("MIME-Version: 1.0\r\nContent-Type: text/plain\r\n"
       "Content-Transfer-Encoding: quoted-printable\r\n\r\n=3D\xe9=\r\nok\r\n"),
     S("MIME-Version: 1.0\r\nContent-Type: text/plain\r\n"
       "Content-Transfer-Encoding: quoted-printable\r\n\r\n=3D=E9=\r\nok\r\n"),
     1, false, false, true},
    {"repair_base64_with_raw_8bit",
     S("MIME-Version: 1.0\r\nContent-Type: image/gif\r\n"
       "Content-Transfer-Encoding: base64\r\n\r\nR0lG\xff\xfeODlh\r\n"),
     S("MIME-Version: 1.0\r\nContent-Type: image/gif\r\n"
       "Content-Transfer-Encoding: base64\r\n\r\nR0lGODlh\r\n"),
     1, false, false, true},
    {"malformed_no_closing_boundary",
     S("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
       "--b\r\nContent-Type: text/plain\r\n\r\ncut \xe9"),
     S("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
       "--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
       "cut =E9=\r\n"),
     1, false, true, false},
    {"malformed_boundary_never_appears",
     S("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
       "--c\r\n\xe9\r\n"),
     S("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n"
       "Content-Transfer-Encoding: quoted-printable\r\n\r\n--c\r\n=E9\r\n"),
     1, false, true, false},
    {"malformed_no_boundary_parameter",
     S("MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\n\xe9\r\n"),
     S("MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n"
       "Content-Transfer-Encoding: quoted-printable\r\n\r\n=E9\r\n"),
     1, false, true, false},
    {"malformed_garbage_content_type",
     S("MIME-Version: 1.0\r\nContent-Type: ;;garbage\r\n\r\n\xe9\r\n"),
     S("MIME-Version: 1.0\r\nContent-Type: ;;garbage\r\n"
       "Content-Transfer-Encoding: quoted-printable\r\n\r\n=E9\r\n"),
     1, false, true, false},
    {"malformed_encoded_multipart",
     S("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n"
       "Content-Transfer-Encoding: base64\r\n\r\n--b\r\n\r\n\xe9\r\n--b--\r\n"),
     S("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n"
       "Content-Transfer-Encoding: base64\r\n\r\n--b\r\n\r\n\r\n--b--\r\n"),
     1, false, true, false},
};

static void
test_table(void **state)
{
    for (size_t i = 0; i < NELEM(cases); i++) {
        const struct mcase *c = &cases[i];
        struct strv in = strv_make(c->in, c->in_len);
        struct mime7bit_result res;
        struct buf out;

        print_message("case %s\n", c->name);
        convert(in, &out, &res);
        assert_bytes(buf_data(&out), c->want, c->want_len);
        assert_int_equal(res.converted, c->converted);
        assert_int_equal(res.header_8bit, c->header_8bit);
        assert_int_equal(res.malformed, c->malformed);
        if (c->oracle) {
            assert_oracle(in, buf_data(&out));
        }
        buf_release(&out);
    }
}

/* ---- decoding the output here ---- */

static int
hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/*
 * Decodes a quoted-printable body this module wrote, checking its form:
 * lines of at most 76 octets, no blank at the end of a line, no
 * continuation line starting with "-", escapes in upper case.
 */
static void
qp_decode_strict(struct strv qp, struct buf *dec)
{
    size_t col = 0;
    bool soft = false, cont = false; /* the line ends, the line goes on, with a soft break */

    for (size_t i = 0; i < qp.len; i++) {
        char c = qp.ptr[i];

        if (c == '\r' || c == '\n') {
            assert_true(i == 0 || (qp.ptr[i - 1] != ' ' && qp.ptr[i - 1] != '\t'));
            if (c == '\r') {
                assert_true(i + 1 < qp.len && qp.ptr[i + 1] == '\n');
                i++;
            }
            if (!soft) {
                buf_append(dec, "\r\n", 2);
            }
            cont = soft;
            soft = false;
            col = 0;
            continue;
        }
        assert_true(col > 0 || !cont || c != '-');
        assert_true((unsigned char)c < 127 && ((unsigned char)c >= 32 || c == '\t'));
        if (c == '=') {
            if (i + 1 < qp.len && (qp.ptr[i + 1] == '\r' || qp.ptr[i + 1] == '\n')) {
                soft = true;
                col++;
                assert_true(col <= 76);
                continue;
            }
            assert_true(i + 2 < qp.len && hexval(qp.ptr[i + 1]) >= 0 && hexval(qp.ptr[i + 2]) >= 0);
            buf_append(dec, (char[]){(char)(hexval(qp.ptr[i + 1]) * 16 + hexval(qp.ptr[i + 2]))},
                       1);
            i += 2;
            col += 3;
        } else {
            buf_append(dec, &c, 1);
            col++;
        }
        assert_true(col <= 76);
        soft = false;
    }
}

/* The body of a single-part message: after the first empty line. */
static struct strv
body_of(struct strv msg)
{
    ptrdiff_t at = strv_find(msg, STRV_LIT("\r\n\r\n"));

    assert_true(at >= 0);
    return strv_from(msg, (size_t)at + 4);
}

/* A text body with lines far over 76 and 998 octets, blanks at line ends, every octet value. */
static void
test_long_lines_and_every_octet(void **state)
{
    static const char head[] = "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                               "Content-Transfer-Encoding: 8bit\r\n\r\n";
    struct buf in, body, out, dec;
    struct mime7bit_result res;

    buf_init(&in, BUF_UNLIMITED);
    buf_init(&body, BUF_UNLIMITED);
    buf_init(&dec, BUF_UNLIMITED);
    for (int i = 0; i < 3000; i++) { /* one line of 3000 octets */
        buf_append(&body, &"ab- =\xc3\xa9\t.x"[i % 10], 1);
    }
    buf_append_cstr(&body, "\r\n");
    for (int n = 70; n <= 80; n++) { /* around the 76-column edge, some ending in blanks */
        for (int i = 0; i < n; i++) {
            buf_append(&body, i == n - 1 && n % 3 == 0 ? " " : i % 17 == 5 ? "\xe9" : "y", 1);
        }
        buf_append_cstr(&body, "\r\n");
    }
    for (int c = 0; c < 256; c++) { /* every octet but LF; CR alone */
        if (c != '\n') {
            buf_append(&body, (char[]){(char)c}, 1);
        }
    }
    buf_append_cstr(&body, "\r\n.\r\nFrom the end\r\n");
    buf_append(&in, head, sizeof(head) - 1);
    buf_append_strv(&in, buf_data(&body));

    convert(buf_data(&in), &out, &res);
    assert_int_equal(res.converted, 1);
    assert_false(res.header_8bit);
    assert_false(res.malformed);
    qp_decode_strict(body_of(buf_data(&out)), &dec);
    assert_int_equal(buf_len(&dec), buf_len(&body));
    assert_memory_equal(buf_data(&dec).ptr, buf_data(&body).ptr, buf_len(&body));
    assert_oracle(buf_data(&in), buf_data(&out));
    buf_release(&in);
    buf_release(&body);
    buf_release(&out);
    buf_release(&dec);
}

/* A binary attachment as base64: lines of 76, decoding to the very bytes. */
static void
test_base64_exact(void **state)
{
    static const char head[] = "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=zz\r\n"
                               "\r\n--zz\r\nContent-Type: application/octet-stream\r\n\r\n";
    struct buf in, raw, out, joined, dec;
    struct mime7bit_result res;
    struct strv b, o;
    uint32_t x = 12345;
    ptrdiff_t end;

    buf_init(&in, BUF_UNLIMITED);
    buf_init(&raw, BUF_UNLIMITED);
    buf_init(&joined, BUF_UNLIMITED);
    buf_init(&dec, BUF_UNLIMITED);
    for (int i = 0; i < 5000; i++) {
        x = x * 1103515245u + 12345u;
        buf_append(&raw, (char[]){(char)(x >> 16)}, 1);
    }
    buf_append(&in, head, sizeof(head) - 1);
    buf_append_strv(&in, buf_data(&raw));
    buf_append_cstr(&in, "\r\n--zz--\r\n");

    convert(buf_data(&in), &out, &res);
    assert_int_equal(res.converted, 1);
    o = buf_data(&out);
    b = body_of(strv_from(o, (size_t)strv_find(o, STRV_LIT("--zz\r\n"))));
    end = strv_find(b, STRV_LIT("\r\n--zz--\r\n"));
    assert_true(end > 0);
    assert_int_equal((size_t)end + 10, b.len); /* the closing delimiter, intact, ends it */
    b.len = (size_t)end;
    while (b.len) {
        struct strv line = strv_split(&b, '\n');

        if (line.len && line.ptr[line.len - 1] == '\r') {
            line.len--;
        }
        assert_true(line.len <= 76);
        assert_true(b.len == 0 || line.len == 76);
        buf_append_strv(&joined, line);
    }
    assert_int_equal(try_base64_decode(buf_data(&joined), &dec), 0);
    assert_int_equal(buf_len(&dec), buf_len(&raw));
    assert_memory_equal(buf_data(&dec).ptr, buf_data(&raw).ptr, buf_len(&raw));
    assert_oracle(buf_data(&in), o);
    buf_release(&in);
    buf_release(&raw);
    buf_release(&out);
    buf_release(&joined);
    buf_release(&dec);
}

/* Multiparts nested depth levels deep with one 8-bit leaf at the bottom. */
static void
nested(struct buf *b, int depth)
{
    buf_append_cstr(b, "MIME-Version: 1.0\r\n");
    for (int i = 0; i < depth; i++) {
        buf_printf(b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i);
    }
    buf_append_cstr(b, "Content-Type: text/plain\r\n\r\nd\xc3\xa9p\r\n");
    for (int i = depth - 1; i >= 0; i--) {
        buf_printf(b, "--b%d--\r\n", i);
    }
}

static void
test_nesting_limit(void **state)
{
    struct buf in, out;
    struct mime7bit_result res;

    buf_init(&in, BUF_UNLIMITED);
    nested(&in, MIME7BIT_DEPTH_MAX);
    convert(buf_data(&in), &out, &res);
    assert_int_equal(res.converted, 1);
    assert_false(res.malformed);
    assert_non_null(strstr(buf_data(&out).ptr, "Content-Transfer-Encoding: quoted-printable\r\n"
                                               "\r\nd=C3=A9p\r\n--b31--\r\n"));
    assert_oracle(buf_data(&in), buf_data(&out));
    buf_release(&out);

    buf_reset(&in);
    nested(&in, MIME7BIT_DEPTH_MAX + 8);
    convert(buf_data(&in), &out, &res);
    assert_int_equal(res.converted, 1);
    assert_true(res.malformed); /* the too-deep level is one quoted-printable leaf */
    assert_non_null(strstr(buf_data(&out).ptr, "boundary=\"b32\"\r\n"
                                               "Content-Transfer-Encoding: quoted-printable\r\n"));
    buf_release(&out);
    buf_release(&in);
}

static const struct mcase *
case_named(const char *name)
{
    for (size_t i = 0; i < NELEM(cases); i++) {
        if (strcmp(cases[i].name, name) == 0) {
            return &cases[i];
        }
    }
    fail_msg("no case %s", name);
    return NULL;
}

/* Output appended after the caller's own bytes; the ceiling is honoured. */
static void
test_append_and_ceiling(void **state)
{
    const struct mcase *c = case_named("inner_header_8bit_keeps_8bit_label");
    struct strv in = strv_make(c->in, c->in_len);
    struct mime7bit_result res;
    struct buf out;
    size_t full;

    buf_init(&out, BUF_UNLIMITED);
    buf_append_cstr(&out, "PREFIX");
    buf_consume(&out, 1); /* the data no longer starts at the allocation */
    assert_int_equal(try_mime7bit_convert(in, &out, &res), 0);
    assert_int_equal(buf_len(&out), 5 + c->want_len);
    assert_memory_equal(buf_data(&out).ptr, "REFIX", 5);
    assert_memory_equal(buf_data(&out).ptr + 5, c->want, c->want_len);
    full = c->want_len;
    buf_release(&out);

    for (size_t max = 0; max < full; max += 7) {
        buf_init(&out, max);
        assert_int_equal(try_mime7bit_convert(in, &out, &res), CELER_ELIMIT);
        assert_true(buf_len(&out) <= max);
        buf_release(&out);
    }
    buf_init(&out, full);
    assert_int_equal(try_mime7bit_convert(in, &out, &res), 0);
    buf_release(&out);
}

static void
test_needed(void **state)
{
    assert_false(mime7bit_needed(STRV_NULL));
    assert_false(mime7bit_needed(STRV_LIT("Subject: x\r\n\r\nabc\x7f\x01\r\n")));
    assert_true(mime7bit_needed(STRV_LIT("Subject: x\r\n\r\nabcdefghijklmnop\x80")));
    assert_true(mime7bit_needed(STRV_LIT("\xff")));
}

static int
group_setup(void **state)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/celer-mime7bit-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int
group_teardown(void **state)
{
    static const char *const names[] = {"oracle.py", "in.eml", "out.eml"};
    char path[128];

    for (size_t i = 0; i < NELEM(names); i++) {
        snprintf(path, sizeof(path), "%s/%s", tmpdir, names[i]);
        (void)unlink(path); /* may not exist */
    }
    (void)rmdir(tmpdir); /* best effort */
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_needed),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_long_lines_and_every_octet),
        cmocka_unit_test(test_base64_exact),
        cmocka_unit_test(test_nesting_limit),
        cmocka_unit_test(test_append_and_ceiling),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
