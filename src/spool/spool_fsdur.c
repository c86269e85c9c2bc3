/*
 * spool_fsdur: what the file system underneath the spool makes durable
 * (see spool_fsdur.h).
 */
#include "spool/spool_fsdur.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "core/mem.h"

/*
 * True for ext2/3/4 (the ext4 driver: with a journal the create is in the
 * transaction fsync commits, without one ext4_sync_parent() writes the new
 * entry's directories), XFS (fsync forces the log up to the inode, which
 * includes the create), btrfs (fsync logs the new name with the inode) and
 * tmpfs (nothing to make durable). Elsewhere the spool syncs the directory
 * itself.
 */
bool
spool_fs_syncs_new_entries(int fd)
{
    struct statfs st;

    if (fstatfs(fd, &st) != 0) {
        return false;
    }
    switch ((unsigned long)st.f_type) {
    case 0xEF53UL:     /* EXT4_SUPER_MAGIC (also ext2/ext3 on the ext4 driver) */
    case 0x58465342UL: /* XFS_SUPER_MAGIC */
    case 0x9123683EUL: /* BTRFS_SUPER_MAGIC */
    case 0x01021994UL: /* TMPFS_MAGIC */
        return getenv("CELER_SPOOL_DIRSYNC") == NULL;
    default:
        return false;
    }
}

int
spool_sync_parent_of(const char *path)
{
    size_t len = strlen(path);
    char *dir;
    int fd, err = 0;

    while (len > 1 && path[len - 1] == '/') {
        len--; /* "a/b/" */
    }
    while (len > 0 && path[len - 1] != '/') {
        len--; /* the last component */
    }
    while (len > 1 && path[len - 1] == '/') {
        len--;
    }
    dir = len == 0 ? xstrdup(".") : xstrndup(path, len);
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        err = -errno;
    }
    if (fd >= 0) {
        close(fd);
    }
    free(dir);
    return err;
}
