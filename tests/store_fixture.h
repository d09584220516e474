/*
 * store_fixture.h: a store under test (either implementation) with its
 * temporary directory, shared by test_store.c, test_lmdb.c and test_kv.c.
 * Temporary directories go under $TMPDIR (or /tmp) and are removed after
 * each test; a test that failed halfway is cleaned up by the next one.
 */
#ifndef KEEL_TEST_STORE_FIXTURE_H
#define KEEL_TEST_STORE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/store.h"
#include "../io_real/lmdb_store.h"
#include "../io_sim/mem_store.h"
#include "harness.h"

struct fixture;

struct fixture_ops {
	const char *name;
	void (*open)(struct fixture *f);   /* a fresh, empty store */
	void (*reopen)(struct fixture *f); /* restart from the durable state */
	void (*close)(struct fixture *f);  /* and remove its files */
};

struct fixture {
	const struct fixture_ops *ops;
	struct store st;
	struct mem_store mem;
	struct lmdb_store lmdb;
	char dir[256];
	bool open;
};

static inline void fixture_tmpdir(struct fixture *f)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(f->dir, sizeof(f->dir), "%s/keel-test-XXXXXX",
		 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	ASSERT_TRUE(mkdtemp(f->dir) != NULL);
}

static inline void fixture_rmdir(struct fixture *f)
{
	static const char *const names[] = {"data.mdb", "lock.mdb", "junk"};
	char p[300];
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", f->dir, names[i]);
		(void)unlink(p);
	}
	(void)rmdir(f->dir);
}

static inline void fixture_run(const struct fixture_ops *ops,
			       void (*body)(struct fixture *f))
{
	static struct fixture fx;
	if (fx.open) /* the previous test failed before closing */
		fx.ops->close(&fx);
	memset(&fx, 0, sizeof(fx));
	fx.ops = ops;
	ops->open(&fx);
	fx.open = true;
	body(&fx);
	fx.open = false;
	ops->close(&fx);
}

#endif
