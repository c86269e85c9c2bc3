/*
 * conf_build: checks a syntax tree against the registry and builds the
 * scope tree of a snapshot.
 *
 * Every scope keyword, module, instance name and option is checked: unknown
 * words are errors with a "did you mean"; options in the wrong scope are
 * errors naming the valid scopes; Momentum options and scopes celer does not
 * implement are warnings that name them. Repeated scopes merge; a repeated
 * option replaces the earlier value with a warning. Adds the implicit
 * "default" binding and binding group and links bindings and pathways to
 * their groups.
 */
#ifndef CELER_CONF_BUILD_H
#define CELER_CONF_BUILD_H

#include "conf/conf.h"

/* Fills c->root, c->bindings, c->binding_groups, c->pathways from c->ast. */
void conf_build(struct conf *c, struct conf_diags *diags);
void conf_scope_free(struct conf_scope *s);

#endif
