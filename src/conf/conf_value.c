/*
 * conf_value: typed parsing of configuration values (see conf_value.h).
 */
#include "conf/conf_value.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/mem.h"

int
conf_bool_parse(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "on", "yes", "enabled", "enable", "1"};
    static const char *const no[] = {"false", "off", "no", "disabled", "disable", "0"};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return CELER_EPARSE;
}

int
conf_int_parse(const char *s, int64_t *out)
{
    char *end;
    long long v;

    /* strtoll would skip any leading white space (even "\n") and accept '+' */
    if (*s == '\0' || *s == '+' || isspace((unsigned char)*s)) {
        return CELER_EPARSE;
    }
    errno = 0;
    v = strtoll(s, &end, 0); /* base 0: 0-prefix octal, 0x hex, Momentum's rules */
    if (errno == ERANGE) {
        return CELER_ELIMIT;
    }
    if (end == s || *end != '\0') {
        return CELER_EPARSE;
    }
    *out = v;
    return 0;
}

/*
 * Integer with a unit suffix: mult gives the factor for each suffix letter;
 * bytes admits a trailing "b" after the letter (sizes: 10kb). A hex number
 * takes no suffix, since b and d are hex digits ("0x1d" is 29, not a day).
 */
static int
conf_scaled_parse(const char *s, const char *suffixes, const int64_t *mult, bool bytes,
                  int64_t *out)
{
    size_t len = strlen(s);
    const char *digits = s + (s[0] == '-');
    bool hex = digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X');
    char num[64];
    int64_t v, f = 1;
    int err;

    if (len == 0 || len >= sizeof(num)) {
        return CELER_EPARSE;
    }
    memcpy(num, s, len + 1);
    /* optional trailing "b" after a size letter: 10kb, 5MB */
    if (bytes && !hex && len >= 2 && (num[len - 1] == 'b' || num[len - 1] == 'B') &&
        strchr(suffixes, strv_lower_char(num[len - 2]))) {
        num[--len] = '\0';
    }
    if (!hex && len >= 2 && !(num[len - 1] >= '0' && num[len - 1] <= '9')) {
        const char *p = strchr(suffixes, strv_lower_char(num[len - 1]));

        if (p == NULL) {
            return CELER_EPARSE;
        }
        f = mult[p - suffixes];
        num[--len] = '\0';
    }
    err = conf_int_parse(num, &v);
    if (err != 0) {
        return err;
    }
    if (v > INT64_MAX / f || v < INT64_MIN / f) {
        return CELER_ELIMIT;
    }
    *out = v * f;
    return 0;
}

int
conf_cidr_parse(const char *text, struct conf_cidr *out)
{
    char addr[INET6_ADDRSTRLEN + 8];
    const char *slash = strchr(text, '/');
    size_t alen = slash ? (size_t)(slash - text) : strlen(text);
    unsigned max;

    if (alen == 0 || alen >= sizeof(addr)) {
        return CELER_EPARSE;
    }
    memcpy(addr, text, alen);
    addr[alen] = '\0';
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, addr, out->addr) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        return CELER_EPARSE;
    }
    out->prefix = max;
    if (slash) {
        uint64_t p;

        if (strv_to_u64(strv_from_cstr(slash + 1), max, &p) != 0) {
            return CELER_EPARSE;
        }
        out->prefix = (unsigned)p;
    }
    /* clear host bits so matching can compare whole bytes */
    for (unsigned bit = out->prefix; bit < max; bit++) {
        out->addr[bit / 8] &= (unsigned char)~(0x80u >> (bit % 8));
    }
    return 0;
}

static int
conf_throttle_parse(const char *s, struct conf_throttle *out)
{
    const char *slash = strchr(s, '/');
    uint64_t n, secs = 1;

    if (strv_to_u64(strv_make(s, slash ? (size_t)(slash - s) : strlen(s)), UINT32_MAX, &n) != 0) {
        return CELER_EPARSE;
    }
    if (slash && (strv_to_u64(strv_from_cstr(slash + 1), UINT32_MAX, &secs) != 0 || secs == 0)) {
        return CELER_EPARSE;
    }
    out->count = (uint32_t)n;
    out->seconds = (uint32_t)secs;
    return 0;
}

/* ENUM: index of s among "a|b|c"; "#" admits an integer (index -1, value in *num). */
static int
conf_enum_parse(const char *values, const char *s, int64_t *idx, const char **canon)
{
    int64_t i = 0;
    bool numeric = false;
    const char *p = values;

    while (*p) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);

        if (len == 1 && *p == '#') {
            numeric = true;
        } else if (strlen(s) == len && strncasecmp(s, p, len) == 0) {
            *idx = i;
            *canon = NULL;
            return 0;
        }
        i++;
        p += len + (bar != NULL);
    }
    if (numeric && conf_int_parse(s, idx) == 0) {
        *canon = s;
        return 1;
    }
    return CELER_EPARSE;
}

static const char *
conf_scalar(const struct conf_value *raw, struct buf *why, const char *what)
{
    if (raw->kind != CONF_VALUE_SCALAR) {
        buf_printf(why, "expected %s, got %s", what,
                   raw->kind == CONF_VALUE_ARRAY ? "an array ( )" : "a dictionary [ ]");
        return NULL;
    }
    return raw->text;
}

static int
conf_list_parse(const struct conf_value *raw, struct conf_val *out, struct buf *why, bool cidrs)
{
    const struct conf_value *const *items = (const struct conf_value *const *)&raw;
    size_t n = 1;

    if (raw->kind == CONF_VALUE_DICT) {
        buf_printf(why, "expected a list ( \"a\" \"b\" ), got a dictionary [ ]");
        return CELER_EPARSE;
    }
    if (raw->kind == CONF_VALUE_ARRAY) {
        items = (const struct conf_value *const *)raw->items;
        n = raw->n;
    }
    out->n = n;
    if (cidrs) {
        out->cidrs = xcalloc(n, sizeof(*out->cidrs));
    } else {
        out->list = xcalloc(n + 1, sizeof(*out->list));
    }
    for (size_t i = 0; i < n; i++) {
        if (items[i]->kind != CONF_VALUE_SCALAR) {
            buf_printf(why, "list element %zu is not a plain value", i + 1);
            return CELER_EPARSE;
        }
        if (cidrs && conf_cidr_parse(items[i]->text, &out->cidrs[i]) != 0) {
            buf_printf(why, "\"%s\" is not an IP address or CIDR block (a.b.c.d/n or ipv6/n)",
                       items[i]->text);
            return CELER_EPARSE;
        }
        if (!cidrs) {
            out->list[i] = items[i]->text;
        }
    }
    return 0;
}

static int
conf_scalar_typed(const struct conf_option *opt, const char *s, struct conf_val *out,
                  struct buf *why)
{
    static const int64_t size_mult[] = {1024, INT64_C(1) << 20, INT64_C(1) << 30};
    static const int64_t time_mult[] = {1, 60, 3600, 86400, 604800};
    const char *canon;
    int r;

    switch (opt->type) {
    case CONF_T_BOOL:
        if (conf_bool_parse(s, &out->b) != 0) {
            buf_printf(
                why,
                "expected a boolean (true/false, on/off, yes/no, enabled/disabled, 1/0), got \"%s\"",
                s);
            return CELER_EPARSE;
        }
        out->i = out->b;
        return 0;
    case CONF_T_INT:
        if (conf_int_parse(s, &out->i) != 0) {
            buf_printf(why, "expected an integer, got \"%s\"", s);
            return CELER_EPARSE;
        }
        return 0;
    case CONF_T_SIZE:
        if (conf_scaled_parse(s, "kmg", size_mult, true, &out->i) != 0 || out->i < -1) {
            buf_printf(why, "expected a size in bytes (optionally with k, m or g), got \"%s\"", s);
            return CELER_EPARSE;
        }
        return 0;
    case CONF_T_INTERVAL:
        if (conf_scaled_parse(s, "smhdw", time_mult, false, &out->i) != 0 || out->i < -1) {
            buf_printf(why,
                       "expected a number of seconds (optionally with s, m, h, d or w), got \"%s\"",
                       s);
            return CELER_EPARSE;
        }
        return 0;
    case CONF_T_ENUM:
        r = conf_enum_parse(opt->values, s, &out->i, &canon);
        if (r < 0) {
            buf_printf(why, "expected one of %s, got \"%s\"", opt->values, s);
            for (size_t i = 0; i < why->len; i++) {
                if (why->data[why->start + i] == '|') {
                    why->data[why->start + i] = '/';
                }
            }
            return CELER_EPARSE;
        }
        out->b = r == 1;
        out->s = s;
        return 0;
    case CONF_T_THROTTLE:
        if (conf_throttle_parse(s, &out->thr) != 0) {
            buf_printf(
                why,
                "expected a throttle \"N\" (per second) or \"N/S\" (per S seconds), got \"%s\"", s);
            return CELER_EPARSE;
        }
        return 0;
    default:
        out->s = s;
        return 0;
    }
}

int
conf_val_parse(const struct conf_option *opt, const struct conf_value *raw, struct conf_val *out,
               struct buf *why)
{
    const char *s;

    *out = (struct conf_val){.type = opt->type, .raw = raw};
    switch (opt->type) {
    case CONF_T_ANY:
        out->s = raw->kind == CONF_VALUE_SCALAR ? raw->text : NULL;
        return 0;
    case CONF_T_LIST:
    case CONF_T_CIDRS:
        if (conf_list_parse(raw, out, why, opt->type == CONF_T_CIDRS) != 0) {
            conf_val_release(out);
            return CELER_EPARSE;
        }
        return 0;
    case CONF_T_DICT:
        if (raw->kind != CONF_VALUE_DICT) {
            buf_printf(why, "expected a dictionary [ key = value ... ]");
            return CELER_EPARSE;
        }
        return 0;
    default:
        s = conf_scalar(raw, why, "a single value");
        if (s == NULL) {
            return CELER_EPARSE;
        }
        return conf_scalar_typed(opt, s, out, why);
    }
}

void
conf_val_release(struct conf_val *v)
{
    free(v->list);
    free(v->cidrs);
    v->list = NULL;
    v->cidrs = NULL;
}
