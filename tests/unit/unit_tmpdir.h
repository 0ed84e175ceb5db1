/* A scratch directory per test case, made and removed by the parent
 * process (check's unchecked fixtures), so a failing forked test leaves
 * nothing behind. Include once; call unit_tmpdir_make("NAME") from the
 * setup fixture and use unit_tmpdir_remove as the teardown. */
#ifndef KVISOR_UNIT_TMPDIR_H
#define KVISOR_UNIT_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

/* Short, so paths built from it fit in PATH_MAX without truncation. */
static char tmpdir[64];

static void unit_tmpdir_make(const char *name)
{
	int n = snprintf(tmpdir, sizeof(tmpdir), "/tmp/kvisor-check-%s.XXXXXX", name);

	ck_assert(n > 0 && (size_t)n < sizeof(tmpdir));
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static int unit_tmpdir_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void unit_tmpdir_remove(void)
{
	if (tmpdir[0])
		nftw(tmpdir, unit_tmpdir_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	tmpdir[0] = '\0';
}

#endif
