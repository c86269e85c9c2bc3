/*
 * security: the Security scope: who celerd runs as once its sockets are bound.
 *
 * Resolves User/Group/Supplemental... from the configuration into ids before
 * anything is opened (so files can be created for that user), then, after
 * the listeners are bound, chroots (if Chroot is set) and switches to the
 * group and user for good. Without a Security scope celerd keeps the
 * identity it was started with (Momentum would switch to "ecuser"; celer
 * does not assume that account exists). A Security scope while not running
 * as root is honoured only if it names the current user; otherwise it is an
 * error, since the daemon could not do what the operator asked.
 */
#ifndef CELER_ADMIN_SECURITY_H
#define CELER_ADMIN_SECURITY_H

#include <stdbool.h>
#include <sys/types.h>

#include "conf/conf.h"
#include "core/buf.h"

struct security_plan {
    bool change; /* switch identity after binding */
    uid_t uid;   /* target user (or the current one) */
    gid_t gid;
    char *user;   /* owned; NULL without change */
    char *chroot; /* owned; NULL for none */
};

/* Resolves the plan from c; CELER_ECONFIG with the reason in why. */
int security_plan_make(const struct conf *c, struct security_plan *plan, struct buf *why) CELER_WUR;
void security_plan_release(struct security_plan *plan);
/* The owner for files created before the switch: (-1,-1) when there is no switch. */
void security_file_owner(const struct security_plan *plan, uid_t *uid, gid_t *gid);
/* Chroot and drop privileges; irreversible. -errno with the step in why. */
int security_apply(const struct security_plan *plan, struct buf *why) CELER_WUR;

#endif
