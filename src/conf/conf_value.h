/*
 * conf_value: turns a value as written into the typed value its option needs.
 *
 * One parser per conf_type. Lenient where Momentum is (booleans, numbers in
 * octal), strict everywhere else; a failure explains what was expected. The
 * typed value borrows strings from the syntax tree and owns only its arrays.
 */
#ifndef CELER_CONF_VALUE_H
#define CELER_CONF_VALUE_H

#include "conf/conf.h"
#include "core/buf.h"

/* 0, or CELER_EPARSE with the reason written into why. */
int conf_val_parse(const struct conf_option *opt, const struct conf_value *raw,
                   struct conf_val *out, struct buf *why) CELER_WUR;
void conf_val_release(struct conf_val *v);

/* Boolean words: true/false, on/off, yes/no, enabled/disabled, enable/disable, 1/0. */
int conf_bool_parse(const char *s, bool *out) CELER_WUR;
/* Integer: [-] decimal, 0-prefixed octal or 0x hex. */
int conf_int_parse(const char *s, int64_t *out) CELER_WUR;

#endif
