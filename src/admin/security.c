/*
 * security: privilege drop per the Security scope (see security.h).
 */
#include "admin/security.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/mem.h"

int
security_plan_make(const struct conf *c, struct security_plan *plan, struct buf *why)
{
    const struct conf_scope *sec = conf_child(c->root, CONF_SCOPE_SECURITY, NULL);
    const struct conf_setting *user, *group, *root;
    struct passwd *pw;

    *plan = (struct security_plan){.uid = getuid(), .gid = getgid()};
    if (sec == NULL) {
        return 0;
    }
    user = conf_local_get(c, sec, "user");
    group = conf_local_get(c, sec, "group");
    root = conf_scope_get(sec, "chroot");
    pw = getpwnam(user->val.s);
    if (pw == NULL) {
        buf_printf(why, "Security: user \"%s\" does not exist", user->val.s);
        return CELER_ECONFIG;
    }
    plan->uid = pw->pw_uid;
    plan->gid = pw->pw_gid;
    if (conf_scope_get(sec, "group")) {
        struct group *gr = getgrnam(group->val.s);

        if (gr == NULL) {
            buf_printf(why, "Security: group \"%s\" does not exist", group->val.s);
            return CELER_ECONFIG;
        }
        plan->gid = gr->gr_gid;
    }
    if (geteuid() != 0 && (plan->uid != geteuid() || root)) {
        buf_printf(why, "Security: switching to user \"%s\"%s needs root", user->val.s,
                   root ? " and chroot" : "");
        return CELER_ECONFIG;
    }
    plan->change = geteuid() == 0;
    plan->user = xstrdup(user->val.s);
    plan->chroot = root ? xstrdup(root->val.s) : NULL;
    return 0;
}

void
security_plan_release(struct security_plan *plan)
{
    free(plan->user);
    free(plan->chroot);
    plan->user = plan->chroot = NULL;
}

void
security_file_owner(const struct security_plan *plan, uid_t *uid, gid_t *gid)
{
    *uid = plan->change ? plan->uid : (uid_t)-1;
    *gid = plan->change ? plan->gid : (gid_t)-1;
}

int
security_apply(const struct security_plan *plan, struct buf *why)
{
    if (!plan->change) {
        return 0;
    }
    if (plan->chroot && (chroot(plan->chroot) != 0 || chdir("/") != 0)) {
        int err = -errno;

        buf_printf(why, "chroot %s: %s", plan->chroot, strerror(errno));
        return err;
    }
    if (initgroups(plan->user, plan->gid) != 0 || setgid(plan->gid) != 0 ||
        setuid(plan->uid) != 0) {
        int err = -errno;

        buf_printf(why, "switching to user %s: %s", plan->user, strerror(errno));
        return err;
    }
    if (plan->uid != 0 && setuid(0) == 0) {
        buf_printf(why, "privileges could be regained after switching to %s", plan->user);
        return -EPERM;
    }
    return 0;
}
