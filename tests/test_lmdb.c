/*
 * test_lmdb.c: what only the LMDB store has: a process that dies without
 * closing, bytes flipped on disk, directories that are not keel stores,
 * read-only opening, a poisoned batch when the map is full, and consistent
 * snapshot iteration while writes go on. The shared behaviour is in
 * test_store.c.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "../core/err.h"
#include "../core/record.h"
#include "store_fixture.h"

static struct fixture fx;

static void tmp_begin(void)
{
	if (fx.open) { /* a previous test failed halfway */
		lmdb_store_close(&fx.lmdb);
		fixture_rmdir(&fx);
	}
	memset(&fx, 0, sizeof(fx));
	fixture_tmpdir(&fx);
	fx.open = true;
}

static void tmp_end(void)
{
	lmdb_store_close(&fx.lmdb);
	fixture_rmdir(&fx);
	fx.open = false;
}

static bool fx_writemap; /* open_store with the writable map */

static int open_store(bool create, bool read_only)
{
	struct lmdb_store_config cfg = {.dir = fx.dir, .create = create,
					.read_only = read_only,
					.writemap = fx_writemap,
					.map_bytes = fx_writemap ? 64u << 20 : 0,
					.reserve_ahead_bytes = 1u << 20};
	int rc = lmdb_store_open(&fx.lmdb, &cfg);
	if (rc == 0)
		lmdb_store_bind(&fx.lmdb, &fx.st);
	return rc;
}

#define OPS (fx.st.ops)
#define S (fx.st.impl)

static void put_entry(uint64_t index, const uint8_t *data, uint32_t n)
{
	struct entry e = {.term = 1, .index = index, .type = ENTRY_COMMAND,
			  .data_bytes = n, .data = data};
	ASSERT_EQ(OPS->write_begin(S), 0);
	ASSERT_EQ(OPS->log_append(S, &e, 1), 0);
	ASSERT_EQ(OPS->write_commit(S), 0);
}

static void put_kv(const char *k, const char *v)
{
	ASSERT_EQ(OPS->write_begin(S), 0);
	ASSERT_EQ(OPS->kv_put(S, (const uint8_t *)k, (uint32_t)strlen(k),
			      (const uint8_t *)v, (uint32_t)strlen(v)),
		  0);
	ASSERT_EQ(OPS->write_commit(S), 0);
}

static void process_death(void)
{
	tmp_begin();
	ASSERT_EQ(open_store(true, false), 0);
	put_kv("before", "1");
	lmdb_store_close(&fx.lmdb);
	fflush(NULL);
	pid_t pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		/* like kill -9: commit (one synced, one not) and vanish */
		if (open_store(false, false) != 0)
			_exit(3);
		struct kv_session se = {4, 2, 9, KV_OK};
		if (OPS->write_begin(S) != 0 ||
		    OPS->kv_put(S, (const uint8_t *)"k", 1,
				(const uint8_t *)"v", 1) != 0 ||
		    OPS->session_put(S, &se) != 0 ||
		    OPS->write_commit(S) != 0 || OPS->sync(S) != 0)
			_exit(4);
		if (OPS->write_begin(S) != 0 ||
		    OPS->kv_put(S, (const uint8_t *)"k2", 2,
				(const uint8_t *)"v2", 2) != 0 ||
		    OPS->write_commit(S) != 0)
			_exit(5);
		_exit(0);
	}
	int status;
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);
	ASSERT_EQ(open_store(false, false), 0);
	const uint8_t *v;
	uint32_t vb;
	ASSERT_EQ(OPS->kv_get(S, (const uint8_t *)"before", 6, &v, &vb), 0);
	ASSERT_EQ(OPS->kv_get(S, (const uint8_t *)"k", 1, &v, &vb), 0);
	ASSERT_MEM_EQ(v, "v", 1);
	/* committed without sync: the OS still has it after a process death */
	ASSERT_EQ(OPS->kv_get(S, (const uint8_t *)"k2", 2, &v, &vb), 0);
	struct kv_session se;
	ASSERT_EQ(OPS->session_get(S, 4, &se), 0);
	ASSERT_U64_EQ(se.last_index, 9);
	ASSERT_EQ(OPS->session_oldest(S, &se), 0);
	ASSERT_U64_EQ(se.client_id, 4);
	tmp_end();
}

TEST(process_death_keeps_committed_batches)
{
	fx_writemap = false;
	process_death();
}

TEST(process_death_keeps_committed_batches_writemap)
{
	fx_writemap = true;
	process_death();
	fx_writemap = false;
}

/* Flip one byte of every on-disk copy of pattern in data.mdb; returns the
 * number of copies. */
static int flip_on_disk(const uint8_t *pattern, size_t n, size_t at)
{
	char path[300];
	snprintf(path, sizeof(path), "%s/data.mdb", fx.dir);
	FILE *f = fopen(path, "r+b");
	ASSERT_TRUE(f != NULL);
	ASSERT_EQ(fseek(f, 0, SEEK_END), 0);
	long size = ftell(f);
	ASSERT_TRUE(size > 0);
	uint8_t *buf = malloc((size_t)size);
	ASSERT_TRUE(buf != NULL);
	rewind(f);
	ASSERT_EQ(fread(buf, 1, (size_t)size, f), (size_t)size);
	int copies = 0;
	for (long i = 0; i + (long)n <= size; i++) {
		if (memcmp(buf + i, pattern, n) != 0)
			continue;
		ASSERT_EQ(fseek(f, i + (long)at, SEEK_SET), 0);
		uint8_t b = buf[i + at] ^ 0x20;
		ASSERT_EQ(fwrite(&b, 1, 1, f), 1);
		copies++;
	}
	fclose(f);
	free(buf);
	return copies;
}

TEST(byte_flipped_on_disk_is_caught)
{
	tmp_begin();
	ASSERT_EQ(open_store(true, false), 0);
	uint8_t pattern[200], other[200];
	for (size_t i = 0; i < sizeof(pattern); i++) {
		pattern[i] = (uint8_t)("keel-corruption-target"[i % 22]);
		other[i] = (uint8_t)i;
	}
	put_entry(1, other, sizeof(other));
	put_entry(2, pattern, sizeof(pattern));
	put_entry(3, other, sizeof(other));
	ASSERT_EQ(OPS->sync(S), 0);
	lmdb_store_close(&fx.lmdb);
	ASSERT_GT(flip_on_disk(pattern, sizeof(pattern), 100), 0);
	ASSERT_EQ(open_store(false, false), 0);
	struct entry e;
	ASSERT_EQ(OPS->log_get(S, 2, &e), KEEL_ECORRUPT);
	ASSERT_TRUE(strstr(fx.lmdb.error, "checksum") != NULL);
	ASSERT_EQ(OPS->log_get(S, 1, &e), 0);
	ASSERT_MEM_EQ(e.data, other, sizeof(other));
	ASSERT_EQ(OPS->log_get(S, 3, &e), 0);
	tmp_end();
}

TEST(not_a_keel_store_is_refused)
{
	tmp_begin();
	char path[300];
	/* a directory with someone else's files */
	snprintf(path, sizeof(path), "%s/junk", fx.dir);
	FILE *f = fopen(path, "w");
	ASSERT_TRUE(f != NULL);
	fputs("not keel\n", f);
	fclose(f);
	ASSERT_EQ(open_store(true, false), KEEL_EBADMAGIC);
	ASSERT_TRUE(strstr(fx.lmdb.error, "no keel store") != NULL);
	ASSERT_EQ(access(path, F_OK), 0); /* untouched */
	snprintf(path, sizeof(path), "%s/data.mdb", fx.dir);
	ASSERT_NE(access(path, F_OK), 0); /* nothing created */
	/* a data.mdb that is not LMDB */
	f = fopen(path, "w");
	ASSERT_TRUE(f != NULL);
	for (int i = 0; i < 2000; i++)
		fputs("garbage ", f);
	fclose(f);
	ASSERT_EQ(open_store(true, false), KEEL_EBADMAGIC);
	ASSERT_TRUE(fx.lmdb.error[0] != '\0');
	unlink(path);
	snprintf(path, sizeof(path), "%s/junk", fx.dir);
	unlink(path);
	/* a file where the directory should be */
	fixture_rmdir(&fx);
	f = fopen(fx.dir, "w");
	ASSERT_TRUE(f != NULL);
	fclose(f);
	ASSERT_EQ(open_store(true, false), KEEL_EBADMAGIC);
	unlink(fx.dir);
	/* nothing there and no create */
	ASSERT_EQ(open_store(false, false), KEEL_ENOTFOUND);
	ASSERT_EQ(mkdir(fx.dir, 0700), 0);
	ASSERT_EQ(open_store(false, false), KEEL_ENOTFOUND);
	tmp_end();
}

/* The store version in fx.dir's format record, rewritten raw (with a
 * valid checksum) or read back. */
static void format_record(uint32_t set_version, uint32_t *get_version)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	ASSERT_EQ(mdb_env_create(&env), 0);
	ASSERT_EQ(mdb_env_set_maxdbs(env, LMDB_STORE_DBS_MAX), 0);
	ASSERT_EQ(mdb_env_open(env, fx.dir, 0, 0600), 0);
	ASSERT_EQ(mdb_txn_begin(env, NULL, 0, &txn), 0);
	ASSERT_EQ(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	MDB_val k = {6, "format"}, v;
	ASSERT_EQ(mdb_get(txn, dbi, &k, &v), 0);
	uint8_t rec[RECORD_FORMAT_BYTES];
	ASSERT_EQ(v.mv_size, sizeof(rec));
	memcpy(rec, v.mv_data, sizeof(rec));
	uint8_t *ver = rec + RECORD_HEADER_BYTES + 8; /* big-endian u32 */
	if (get_version != NULL) {
		*get_version = (uint32_t)ver[0] << 24 | (uint32_t)ver[1] << 16 |
			       (uint32_t)ver[2] << 8 | ver[3];
		mdb_txn_abort(txn);
		mdb_env_close(env);
		return;
	}
	ver[0] = (uint8_t)(set_version >> 24);
	ver[1] = (uint8_t)(set_version >> 16);
	ver[2] = (uint8_t)(set_version >> 8);
	ver[3] = (uint8_t)set_version;
	record_put_u64(rec + RECORD_HEADER_BYTES + 12,
		       XXH3_64bits(rec, RECORD_HEADER_BYTES + 12));
	v = (MDB_val){sizeof(rec), rec};
	ASSERT_EQ(mdb_put(txn, dbi, &k, &v, 0), 0);
	ASSERT_EQ(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static void set_format_version(uint32_t version)
{
	format_record(version, NULL);
}

static uint32_t format_version(void)
{
	uint32_t v = 0;
	format_record(0, &v);
	return v;
}

TEST(foreign_lmdb_and_other_version_are_refused)
{
	tmp_begin();
	/* an LMDB environment made by someone else */
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	ASSERT_EQ(mdb_env_create(&env), 0);
	ASSERT_EQ(mdb_env_set_maxdbs(env, 4), 0);
	ASSERT_EQ(mdb_env_open(env, fx.dir, 0, 0600), 0);
	ASSERT_EQ(mdb_txn_begin(env, NULL, 0, &txn), 0);
	ASSERT_EQ(mdb_dbi_open(txn, "other", MDB_CREATE, &dbi), 0);
	MDB_val k = {1, "x"}, v = {1, "y"};
	ASSERT_EQ(mdb_put(txn, dbi, &k, &v, 0), 0);
	ASSERT_EQ(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	ASSERT_EQ(open_store(true, false), KEEL_EBADMAGIC);
	ASSERT_TRUE(strstr(fx.lmdb.error, "not a keel store") != NULL);
	fixture_rmdir(&fx);
	ASSERT_EQ(mkdir(fx.dir, 0700), 0);

	/* a keel store whose format record says a newer version */
	ASSERT_EQ(open_store(true, false), 0);
	lmdb_store_close(&fx.lmdb);
	set_format_version(RECORD_STORE_VERSION + 1);
	ASSERT_EQ(open_store(true, false), KEEL_EBADVERSION);
	ASSERT_TRUE(strstr(fx.lmdb.error, "version") != NULL);
	ASSERT_EQ(format_version(), RECORD_STORE_VERSION + 1); /* untouched */
	tmp_end();
}

/* A store of the oldest version this build reads opens; opened for writing
 * it is marked as this build's version (so an older build refuses it
 * cleanly), opened read-only it is left as it is. */
TEST(an_older_store_version_opens_and_is_marked_current)
{
	tmp_begin();
	ASSERT_EQ(open_store(true, false), 0);
	lmdb_store_close(&fx.lmdb);
	set_format_version(RECORD_STORE_VERSION_MIN);
	ASSERT_EQ(open_store(false, true), 0);
	lmdb_store_close(&fx.lmdb);
	ASSERT_EQ(format_version(), RECORD_STORE_VERSION_MIN);
	ASSERT_EQ(open_store(false, false), 0);
	lmdb_store_close(&fx.lmdb);
	ASSERT_EQ(format_version(), RECORD_STORE_VERSION);
	set_format_version(RECORD_STORE_VERSION_MIN - 1);
	ASSERT_EQ(open_store(false, false), KEEL_EBADVERSION);
	tmp_end();
}

TEST(read_only_open_for_tools)
{
	tmp_begin();
	ASSERT_EQ(open_store(false, true), KEEL_ENOTFOUND);
	ASSERT_EQ(open_store(true, false), 0);
	put_kv("k", "v");
	ASSERT_EQ(OPS->sync(S), 0);
	lmdb_store_close(&fx.lmdb); /* LMDB: one open per process at a time */
	ASSERT_EQ(open_store(false, true), 0);
	const uint8_t *v;
	uint32_t vb;
	ASSERT_EQ(OPS->kv_get(S, (const uint8_t *)"k", 1, &v, &vb), 0);
	ASSERT_EQ(OPS->write_begin(S), KEEL_ESTATE);
	ASSERT_EQ(OPS->sync(S), 0);
	tmp_end();
}

TEST(full_map_poisons_only_the_batch)
{
	tmp_begin();
	struct lmdb_store_config cfg = {.dir = fx.dir, .create = true,
					.map_bytes = 1u << 20};
	ASSERT_EQ(lmdb_store_open(&fx.lmdb, &cfg), 0);
	lmdb_store_bind(&fx.lmdb, &fx.st);
	put_kv("small", "1");
	static uint8_t big[KEEL_VALUE_BYTES_MAX];
	memset(big, 7, sizeof(big));
	ASSERT_EQ(OPS->write_begin(S), 0);
	int rc = 0;
	for (uint32_t i = 0; i < 64 && rc == 0; i++) {
		uint8_t key[4] = {'b', (uint8_t)i, 0, 1};
		rc = OPS->kv_put(S, key, 4, big, sizeof(big));
	}
	ASSERT_EQ(rc, KEEL_ENOMEM);
	ASSERT_EQ(OPS->kv_put(S, (const uint8_t *)"x", 1, big, 1), KEEL_ENOMEM);
	ASSERT_EQ(OPS->write_commit(S), KEEL_ENOMEM); /* aborted */
	/* the store goes on */
	const uint8_t *v;
	uint32_t vb;
	ASSERT_EQ(OPS->kv_get(S, (const uint8_t *)"small", 5, &v, &vb), 0);
	uint8_t key0[4] = {'b', 0, 0, 1};
	ASSERT_EQ(OPS->kv_get(S, key0, 4, &v, &vb), KEEL_ENOTFOUND);
	put_kv("after", "2");
	tmp_end();
}

TEST(snapshot_is_consistent_while_writes_go_on)
{
	tmp_begin();
	ASSERT_EQ(open_store(true, false), 0);
	uint8_t longkey[700];
	memset(longkey, 'L', sizeof(longkey));
	ASSERT_EQ(OPS->write_begin(S), 0);
	for (int i = 0; i < 100; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%03d", i);
		ASSERT_EQ(OPS->kv_put(S, (const uint8_t *)k, 4,
				      (const uint8_t *)"v1", 2), 0);
	}
	ASSERT_EQ(OPS->kv_put(S, longkey, sizeof(longkey),
			      (const uint8_t *)"long", 4), 0);
	struct kv_session se = {9, 3, 50, KV_OK};
	ASSERT_EQ(OPS->session_put(S, &se), 0);
	ASSERT_EQ(OPS->set_applied(S, 50), 0);
	ASSERT_EQ(OPS->write_commit(S), 0);

	struct lmdb_snapshot snap;
	ASSERT_EQ(lmdb_snapshot_begin(&fx.lmdb, &snap), 0);
	ASSERT_U64_EQ(snap.meta.applied_index, 50);
	/* writes after the snapshot began */
	ASSERT_EQ(OPS->write_begin(S), 0);
	ASSERT_EQ(OPS->kv_put(S, (const uint8_t *)"k000", 4,
			      (const uint8_t *)"v2", 2), 0);
	ASSERT_EQ(OPS->kv_del(S, (const uint8_t *)"k001", 4), 0);
	ASSERT_EQ(OPS->kv_put(S, (const uint8_t *)"new", 3,
			      (const uint8_t *)"x", 1), 0);
	ASSERT_EQ(OPS->kv_del(S, longkey, sizeof(longkey)), 0);
	ASSERT_EQ(OPS->session_del(S, 9), 0);
	ASSERT_EQ(OPS->set_applied(S, 60), 0);
	ASSERT_EQ(OPS->write_commit(S), 0);

	int kvs = 0, sessions = 0, longs = 0;
	struct store_item it;
	int rc;
	while ((rc = lmdb_snapshot_next(&snap, &it)) == 1) {
		if (it.kind == STORE_ITEM_SESSION) {
			ASSERT_U64_EQ(it.session.client_id, 9);
			ASSERT_U64_EQ(it.session.seq, 3);
			sessions++;
			continue;
		}
		ASSERT_EQ(it.kind, STORE_ITEM_KV);
		if (it.key_bytes == sizeof(longkey)) {
			ASSERT_MEM_EQ(it.val, "long", 4);
			longs++;
		} else {
			ASSERT_EQ(it.key_bytes, 4);
			ASSERT_EQ(it.val_bytes, 2);
			ASSERT_MEM_EQ(it.val, "v1", 2);
		}
		kvs++;
	}
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(kvs, 101);
	ASSERT_EQ(longs, 1);
	ASSERT_EQ(sessions, 1);
	lmdb_snapshot_end(&snap);
	/* a new snapshot sees the new state */
	ASSERT_EQ(lmdb_snapshot_begin(&fx.lmdb, &snap), 0);
	ASSERT_U64_EQ(snap.meta.applied_index, 60);
	kvs = 0;
	while ((rc = lmdb_snapshot_next(&snap, &it)) == 1)
		kvs++;
	ASSERT_EQ(rc, 0);
	ASSERT_EQ(kvs, 100);
	lmdb_snapshot_end(&snap);
	tmp_end();
}

/* A store written before the staging database existed: a writable open
 * adds it, a read-only open goes without (and reports nothing staged). */
TEST(store_without_staging_database_opens)
{
	tmp_begin();
	ASSERT_EQ(open_store(true, false), 0);
	put_kv("k", "v");
	lmdb_store_close(&fx.lmdb);
	/* drop the staging database with LMDB itself */
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	ASSERT_EQ(mdb_env_create(&env), 0);
	ASSERT_EQ(mdb_env_set_maxdbs(env, LMDB_STORE_DBS_MAX), 0);
	ASSERT_EQ(mdb_env_open(env, fx.dir, MDB_NOTLS, 0600), 0);
	ASSERT_EQ(mdb_txn_begin(env, NULL, 0, &txn), 0);
	ASSERT_EQ(mdb_dbi_open(txn, "staging", 0, &dbi), 0);
	ASSERT_EQ(mdb_drop(txn, dbi, 1), 0);
	ASSERT_EQ(mdb_txn_commit(txn), 0);
	mdb_env_close(env);

	ASSERT_EQ(open_store(false, true), 0);
	ASSERT_FALSE(fx.lmdb.has_stage);
	uint64_t n = 9;
	ASSERT_EQ(OPS->stage_count(S, &n), 0);
	ASSERT_U64_EQ(n, 0);
	lmdb_store_close(&fx.lmdb);

	ASSERT_EQ(open_store(false, false), 0);
	ASSERT_TRUE(fx.lmdb.has_stage);
	struct store_item it = {.kind = STORE_ITEM_KV, .key = (const uint8_t *)"s",
				.key_bytes = 1};
	ASSERT_EQ(OPS->write_begin(S), 0);
	ASSERT_EQ(OPS->stage_put(S, &it), 0);
	ASSERT_EQ(OPS->write_commit(S), 0);
	ASSERT_EQ(OPS->stage_count(S, &n), 0);
	ASSERT_U64_EQ(n, 1);
	const uint8_t *v;
	uint32_t vb;
	ASSERT_EQ(OPS->kv_get(S, (const uint8_t *)"k", 1, &v, &vb), 0);
	tmp_end();
}

/* ---- the writable map (--lmdb-writemap, lmdb_store.h L6) ----------------- */

static uint64_t data_stat(bool allocated)
{
	char p[300];
	snprintf(p, sizeof(p), "%s/data.mdb", fx.dir);
	struct stat st;
	ASSERT_EQ(stat(p, &st), 0);
	return allocated ? (uint64_t)st.st_blocks * 512u : (uint64_t)st.st_size;
}

static uint64_t high_water(void)
{
	MDB_envinfo info;
	ASSERT_EQ(mdb_env_info(fx.lmdb.env, &info), 0);
	return ((uint64_t)info.me_last_pgno + 1) * fx.lmdb.psize;
}

static void open_wm(uint64_t map, uint64_t ahead)
{
	struct lmdb_store_config cfg = {.dir = fx.dir, .create = true,
					.writemap = true, .map_bytes = map,
					.reserve_ahead_bytes = ahead};
	int rc = lmdb_store_open(&fx.lmdb, &cfg);
	if (rc != 0)
		fprintf(stderr, "open: %s\n", fx.lmdb.error);
	ASSERT_EQ(rc, 0);
	lmdb_store_bind(&fx.lmdb, &fx.st);
}

TEST(writemap_reserves_the_file_ahead_of_each_batch)
{
	tmp_begin();
	const uint64_t map = 64u << 20, ahead = 2u << 20;
	open_wm(map, ahead);
	ASSERT_U64_EQ(data_stat(false), map); /* the map's size, sparse */
	ASSERT_TRUE(data_stat(true) < map / 2);
	static uint8_t data[16384];
	uint64_t calls_at_open = fx.lmdb.reservations;
	for (uint64_t i = 1; i <= 400; i++) {
		memset(data, (int)i, sizeof(data));
		uint64_t high = high_water();
		ASSERT_EQ(OPS->write_begin(S), 0);
		/* reserved when the batch begins, before it writes anything */
		uint64_t want = 2 * high + ahead < map ? 2 * high + ahead : map;
		uint64_t reserved = fx.lmdb.reserved_end;
		ASSERT_TRUE(reserved >= want);
		ASSERT_TRUE(data_stat(true) >= reserved);
		struct entry e = {.term = 1, .index = i, .type = ENTRY_COMMAND,
				  .data_bytes = sizeof(data), .data = data};
		ASSERT_EQ(OPS->log_append(S, &e, 1), 0);
		ASSERT_EQ(OPS->write_commit(S), 0);
		ASSERT_TRUE(high_water() <= reserved); /* the batch fit */
	}
	ASSERT_TRUE(high_water() > 4u << 20); /* the log grew the file... */
	ASSERT_TRUE(fx.lmdb.reservations > calls_at_open); /* ...and the reservation */
	ASSERT_TRUE(fx.lmdb.reservations < calls_at_open + 40); /* in steps */
	/* The same file opens without the writable map, and again with it. */
	lmdb_store_close(&fx.lmdb);
	ASSERT_EQ(open_store(false, false), 0);
	struct entry e;
	ASSERT_EQ(OPS->log_get(S, 400, &e), 0);
	ASSERT_EQ(e.data_bytes, sizeof(data));
	ASSERT_EQ(e.data[0], (uint8_t)400);
	put_kv("plain", "1");
	lmdb_store_close(&fx.lmdb);
	open_wm(map, ahead);
	const uint8_t *v;
	uint32_t vb;
	ASSERT_EQ(OPS->kv_get(S, (const uint8_t *)"plain", 5, &v, &vb), 0);
	ASSERT_EQ(OPS->log_get(S, 1, &e), 0);
	ASSERT_EQ(e.data[0], (uint8_t)1);
	tmp_end();
}

/* Batches of one 64 KiB entry each from index *next until one is refused;
 * returns that batch's error. */
static int append_until_refused(uint64_t *next)
{
	static uint8_t data[65536];
	for (uint32_t n = 0; n < 1000; n++) {
		int rc = OPS->write_begin(S);
		if (rc != 0)
			return rc;
		struct entry en = {.term = 1, .index = *next,
				   .type = ENTRY_COMMAND,
				   .data_bytes = sizeof(data), .data = data};
		ASSERT_EQ(OPS->log_append(S, &en, 1), 0);
		ASSERT_EQ(OPS->write_commit(S), 0);
		(*next)++;
	}
	return 0;
}

TEST(a_failed_reservation_refuses_the_batch_and_changes_nothing)
{
	tmp_begin();
	open_wm(64u << 20, 1u << 20);
	put_kv("a", "1");
	/* Room for less than a quarter more (the store's testing limit, as
	 * on a full disk): the reservation falls back to just what is
	 * needed, then fails. */
	uint64_t r0 = fx.lmdb.reserved_end;
	fx.lmdb.reserve_limit = r0 + (r0 / 4) / 2;
	uint64_t next = 1;
	ASSERT_EQ(append_until_refused(&next), -ENOSPC);
	ASSERT_TRUE(next > 1);
	ASSERT_TRUE(fx.lmdb.reserved_end > r0); /* the fallback reserved more */
	ASSERT_TRUE(fx.lmdb.reserved_end <= fx.lmdb.reserve_limit);
	ASSERT_TRUE(strstr(fx.lmdb.error, "cannot reserve") != NULL);
	ASSERT_TRUE(strstr(fx.lmdb.error, "No space left") != NULL);
	/* Nothing changed, and the store is not stuck: */
	uint64_t first, last;
	ASSERT_EQ(OPS->log_bounds(S, &first, &last), 0);
	ASSERT_U64_EQ(last, next - 1);
	ASSERT_EQ(OPS->write_begin(S), -ENOSPC); /* still no space */
	fx.lmdb.reserve_limit = 0; /* space was freed */
	static uint8_t one[100];
	put_entry(next, one, sizeof(one));
	lmdb_store_close(&fx.lmdb);
	open_wm(64u << 20, 1u << 20);
	ASSERT_EQ(OPS->log_bounds(S, &first, &last), 0);
	ASSERT_U64_EQ(last, next);
	const uint8_t *v;
	uint32_t vb;
	ASSERT_EQ(OPS->kv_get(S, (const uint8_t *)"a", 1, &v, &vb), 0);
	ASSERT_MEM_EQ(v, "1", 1);
	tmp_end();
}

TEST(a_snapshot_install_fits_the_reservation)
{
	tmp_begin();
	open_wm(256u << 20, 4096); /* almost no reserve ahead */
	/* Stage 60,000 items of random keys over several batches... */
	uint64_t x = 88172645463325252ull, put = 0;
	uint8_t key[16], val[100];
	memset(val, 'v', sizeof(val));
	for (uint32_t b = 0; b < 60; b++) {
		ASSERT_EQ(OPS->write_begin(S), 0);
		for (uint32_t i = 0; i < 1000; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			int n = snprintf((char *)key, sizeof(key), "k%llu",
					 (unsigned long long)(x % 100000000u));
			struct store_item it = {.kind = STORE_ITEM_KV, .key = key,
						.key_bytes = (uint32_t)n,
						.val = val,
						.val_bytes = sizeof(val)};
			ASSERT_EQ(OPS->stage_put(S, &it), 0);
			put += (uint64_t)n + sizeof(val);
		}
		ASSERT_EQ(OPS->write_commit(S), 0);
	}
	/* ...and switch to them in one batch, which adds a whole kv tree:
	 * the batch reserves for what it puts as it goes. */
	uint64_t high = high_water();
	ASSERT_EQ(OPS->write_begin(S), 0);
	ASSERT_EQ(OPS->stage_install(S), 0);
	uint64_t reserved = fx.lmdb.reserved_end;
	ASSERT_TRUE(reserved >= 2 * high + 2 * put);
	ASSERT_EQ(OPS->write_commit(S), 0);
	ASSERT_TRUE(high_water() <= reserved);
	ASSERT_TRUE(data_stat(true) >= reserved);
	const uint8_t *v;
	uint32_t vb;
	int n = snprintf((char *)key, sizeof(key), "k%llu",
			 (unsigned long long)(x % 100000000u));
	ASSERT_EQ(OPS->kv_get(S, key, (uint32_t)n, &v, &vb), 0);
	tmp_end();
}

TEST(a_batch_far_larger_than_the_reserve_ahead_fits)
{
	tmp_begin();
	open_wm(256u << 20, 1u << 20); /* 1 MiB ahead, a 48 MiB batch */
	static uint8_t data[3000]; /* just over a page: the worst page use */
	memset(data, 7, sizeof(data));
	ASSERT_EQ(OPS->write_begin(S), 0);
	for (uint64_t i = 1; i <= 16384; i++) {
		struct entry e = {.term = 1, .index = i, .type = ENTRY_COMMAND,
				  .data_bytes = sizeof(data), .data = data};
		ASSERT_EQ(OPS->log_append(S, &e, 1), 0);
	}
	uint64_t reserved = fx.lmdb.reserved_end;
	ASSERT_EQ(OPS->write_commit(S), 0);
	ASSERT_TRUE(high_water() > 40u << 20);
	ASSERT_TRUE(high_water() <= reserved);
	ASSERT_TRUE(data_stat(true) >= reserved);
	tmp_end();
}

TEST(a_sigbus_in_the_writable_map_says_what_happened)
{
	tmp_begin();
	int pipefd[2];
	ASSERT_EQ(pipe(pipefd), 0);
	fflush(NULL);
	pid_t pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		dup2(pipefd[1], 2);
		close(pipefd[0]);
		open_wm(16u << 20, 1u << 20);
		put_kv("k", "v");
		/* The file loses its pages under the map (as when the file
		 * system cannot provide them): the next access faults. */
		char p[300];
		snprintf(p, sizeof(p), "%s/data.mdb", fx.dir);
		if (truncate(p, 0) != 0)
			_exit(3);
		const uint8_t *v;
		uint32_t vb;
		(void)OPS->kv_get(S, (const uint8_t *)"k", 1, &v, &vb);
		_exit(0); /* not reached */
	}
	close(pipefd[1]);
	char out[2048];
	size_t n = 0;
	ssize_t r;
	while (n < sizeof(out) - 1 &&
	       (r = read(pipefd[0], out + n, sizeof(out) - 1 - n)) > 0)
		n += (size_t)r;
	out[n] = '\0';
	close(pipefd[0]);
	int status;
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	/* Killed by the SIGBUS (or, under a sanitizer, by its handler). */
	ASSERT_TRUE((WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS) ||
		    (WIFEXITED(status) && WEXITSTATUS(status) != 0 &&
		     WEXITSTATUS(status) != 3));
	ASSERT_TRUE(strstr(out, "keel: SIGBUS at byte ") != NULL);
	ASSERT_TRUE(strstr(out, "disk is full") != NULL);
	tmp_end();
}

TEST(a_sigbus_sent_by_kill_still_ends_the_process)
{
	tmp_begin();
	fflush(NULL);
	pid_t pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		open_wm(16u << 20, 1u << 20); /* installs the handler */
		/* quiet: a sanitizer's handler would report the signal */
		if (freopen("/dev/null", "w", stderr) == NULL)
			_exit(3);
		kill(getpid(), SIGBUS);
		_exit(0); /* the handler must not swallow it */
	}
	int status;
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE((WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS) ||
		    (WIFEXITED(status) && WEXITSTATUS(status) != 0 &&
		     WEXITSTATUS(status) != 3));
	tmp_end();
}
