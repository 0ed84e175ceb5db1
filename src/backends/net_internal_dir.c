/* Where the endpoints of an internal network segment live: segment names,
 * and the per-user directories, created 0700 and checked when they exist. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvisor/log.h"
#include "net_internal.h"

int net_internal_seg_check(const char *name, const char *seg)
{
	size_t len;

	if (!seg) {
		log_err("%s: internal: no segment name (name=SEG)", name);
		return -EINVAL;
	}
	len = strlen(seg);
	if (len < 1 || len > NET_INTERNAL_SEG_MAX) {
		log_err("%s: name: segment name must be 1 to %d characters, got %zu", name,
			NET_INTERNAL_SEG_MAX, len);
		return -EINVAL;
	}
	if (strspn(seg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") !=
	    len) {
		log_err("%s: name: segment name '%s' may only contain A-Z a-z 0-9 _ . -", name,
			seg);
		return -EINVAL;
	}
	/* "." and ".." would name the parent directories. */
	if (seg[0] == '.') {
		log_err("%s: name: segment name '%s' may not start with '.'", name, seg);
		return -EINVAL;
	}
	return 0;
}

/* Open directory (comp) under (parent), creating it 0700 if missing, and
 * refuse it unless it is a directory of this user closed to others: other
 * users must not reach the sockets in it, nor plant their own. (path) is
 * its full path, for messages. The fd in (*out); 0 or -errno. */
static int net_internal_subdir(const char *name, int parent, const char *comp, const char *path,
			       int *out)
{
	struct stat st;
	int fd, err;

	if (mkdirat(parent, comp, 0700) < 0 && errno != EEXIST) {
		err = errno;
		log_err("%s: internal: mkdir %s: %s", name, path, strerror(err));
		return -err;
	}
	/* O_NOFOLLOW: a symlink planted there is refused, not followed. */
	fd = openat(parent, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		if (err == ENOTDIR || err == ELOOP)
			log_err("%s: internal: %s is not a directory", name, path);
		else
			log_err("%s: internal: %s: %s", name, path, strerror(err));
		return -err;
	}
	if (fstat(fd, &st) < 0) {
		err = errno;
		log_err("%s: internal: %s: %s", name, path, strerror(err));
		goto err_close;
	}
	if (st.st_uid != geteuid()) {
		err = EPERM;
		log_err("%s: internal: %s belongs to uid %u, not to uid %u", name, path,
			(unsigned)st.st_uid, (unsigned)geteuid());
		goto err_close;
	}
	if (st.st_mode & 077) {
		err = EPERM;
		log_err("%s: internal: %s is open to other users (mode %04o, expected 0700)", name,
			path, (unsigned)(st.st_mode & 07777));
		goto err_close;
	}
	*out = fd;
	return 0;

err_close:
	close(fd);
	return -err;
}

/* The directory to start from and the names under it, in (base), (comps). */
static void net_internal_base(char *base, size_t cap, const char *comps[2], char *tmpname,
			      size_t tmpcap)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	unsigned uid = (unsigned)geteuid();
	struct stat st;

	comps[0] = "kvisor";
	comps[1] = "net";
	if (xdg && xdg[0] == '/') {
		snprintf(base, cap, "%s", xdg);
		return;
	}
	snprintf(base, cap, "/run/user/%u", uid);
	if (stat(base, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == uid)
		return;
	snprintf(base, cap, "/tmp");
	snprintf(tmpname, tmpcap, "kvisor-%u", uid);
	comps[0] = tmpname;
}

int net_internal_dir_open(const char *name, const char *seg, int *out)
{
	char base[PATH_MAX], path[PATH_MAX], tmpname[32];
	const char *comps[3];
	int fd, next = -1, ret, err;
	size_t len;

	net_internal_base(base, sizeof(base), comps, tmpname, sizeof(tmpname));
	comps[2] = seg;
	fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		log_err("%s: internal: %s: %s", name, base, strerror(err));
		return -err;
	}
	len = strlen(base);
	memcpy(path, base, len + 1);
	for (int i = 0; i < 3; i++) {
		int n = snprintf(path + len, sizeof(path) - len, "/%s", comps[i]);

		if (n < 0 || (size_t)n >= sizeof(path) - len) {
			log_err("%s: internal: %s/...: path too long", name, base);
			close(fd);
			return -ENAMETOOLONG;
		}
		len += (size_t)n;
		ret = net_internal_subdir(name, fd, comps[i], path, &next);
		close(fd);
		if (ret)
			return ret;
		fd = next;
	}
	*out = fd;
	return 0;
}
