/* The internal network mode's segment names and per-user directories
 * (net_internal_dir.c), apart from the switching (net_internal.c). */
#ifndef KVISOR_NET_INTERNAL_H
#define KVISOR_NET_INTERNAL_H

#define NET_INTERNAL_SEG_MAX 64 /* characters of a segment name */

/* Check segment name (seg) (NULL: none given): 1 to NET_INTERNAL_SEG_MAX
 * characters of A-Z a-z 0-9 _ . -, not starting with '.'. 0, or -EINVAL
 * after one line naming the device (name) and the option. */
int net_internal_seg_check(const char *name, const char *seg);

/* Open segment (seg)'s directory, creating what is missing (mode 0700):
 * $XDG_RUNTIME_DIR/kvisor/net/SEG when XDG_RUNTIME_DIR is an absolute path,
 * else /run/user/UID/kvisor/net/SEG when /run/user/UID is this user's,
 * else /tmp/kvisor-UID/net/SEG. Each directory kvisor uses there must be a
 * directory (not a symlink), owned by the effective uid, with no access for
 * group or others: anything else is refused. The fd in (*out); 0 or -errno
 * after one line naming (name). */
int net_internal_dir_open(const char *name, const char *seg, int *out);

#endif
