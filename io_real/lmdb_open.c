/*
 * lmdb_open.c: open, create and close the LMDB store: refuse a directory
 * that is not a keel store, check the format version, create the named
 * databases of a new store (layout: lmdb_store.c).
 */
#include "lmdb_store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/err.h"
#include "../core/record.h"

/* 1 if dir holds any entry besides . and .., 0 if not, -errno. */
static int dir_has_entries(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return -errno;
	int found = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			found = 1;
			break;
		}
	closedir(d);
	return found;
}

/* Check the directory before LMDB touches it: 1 if it holds a data.mdb,
 * 0 if it is empty (or was created), else an error. */
static int check_dir(struct lmdb_store *s, const struct lmdb_store_config *cfg)
{
	struct stat st;
	if (stat(cfg->dir, &st) != 0) {
		if (errno != ENOENT) {
			lmdb__set_error(s, "%s: %s", cfg->dir, strerror(errno));
			return -errno;
		}
		if (!cfg->create || cfg->read_only) {
			lmdb__set_error(s, "%s: no such directory", cfg->dir);
			return KEEL_ENOTFOUND;
		}
		if (mkdir(cfg->dir, 0700) != 0) {
			lmdb__set_error(s, "mkdir %s: %s", cfg->dir, strerror(errno));
			return -errno;
		}
		return 0;
	}
	if (!S_ISDIR(st.st_mode)) {
		lmdb__set_error(s, "%s is not a directory", cfg->dir);
		return KEEL_EBADMAGIC;
	}
	char path[4096];
	snprintf(path, sizeof(path), "%s/data.mdb", cfg->dir);
	if (stat(path, &st) == 0)
		return 1;
	int has = dir_has_entries(cfg->dir);
	if (has < 0) {
		lmdb__set_error(s, "%s: %s", cfg->dir, strerror(-has));
		return has;
	}
	if (has) {
		lmdb__set_error(s, "%s is not empty and holds no keel store", cfg->dir);
		return KEEL_EBADMAGIC;
	}
	if (!cfg->create || cfg->read_only) {
		lmdb__set_error(s, "%s holds no keel store", cfg->dir);
		return KEEL_ENOTFOUND;
	}
	return 0;
}

static const char *const DB_NAMES[] = {"meta", "log", "kv", "kvlong",
				       "sessions", "ages"};

/* The staging database came after the others: a writable open creates it in
 * a store that lacks it (its content is garbage at every open anyway); a
 * read-only open of such a store goes without. */
static int open_staging(struct lmdb_store *s, MDB_txn *txn)
{
	int mrc = mdb_dbi_open(txn, "staging", s->read_only ? 0 : MDB_CREATE,
			       &s->dbi_stage);
	if (mrc == MDB_NOTFOUND && s->read_only)
		return 0;
	if (mrc == MDB_INCOMPATIBLE) {
		lmdb__set_error(s, "an LMDB file that is not a keel store "
			     "(database \"staging\" has other flags)");
		return KEEL_EBADMAGIC;
	}
	if (mrc != 0)
		return lmdb__err(s, mrc, "open database");
	s->has_stage = true;
	return 0;
}

/* The format marker of this build's version, in txn. */
static int write_format(struct lmdb_store *s, MDB_txn *txn)
{
	uint8_t rec[RECORD_FORMAT_BYTES];
	MDB_val k = lmdb__str(LMDB_META_FORMAT);
	MDB_val v = lmdb__val(rec, record_format_encode(RECORD_STORE_VERSION, rec,
						      sizeof(rec)));
	int mrc = mdb_put(txn, s->dbi_meta, &k, &v, 0);
	return mrc == 0 ? 0 : lmdb__err(s, mrc, "write format");
}

/* Open (fresh: create) the databases and check the format marker. */
static int open_dbs(struct lmdb_store *s, bool fresh)
{
	MDB_dbi *slot[] = {&s->dbi_meta, &s->dbi_log, &s->dbi_kv,
			   &s->dbi_kvlong, &s->dbi_sessions, &s->dbi_ages};
	MDB_txn *txn;
	int mrc = mdb_txn_begin(s->env, NULL, s->read_only ? MDB_RDONLY : 0,
				&txn);
	if (mrc != 0)
		return lmdb__err(s, mrc, "begin");
	int rc = 0;
	if (!fresh) { /* a crash during creation leaves an empty main db */
		MDB_dbi main;
		MDB_stat st;
		if (mdb_dbi_open(txn, NULL, 0, &main) == 0 &&
		    mdb_stat(txn, main, &st) == 0 && st.ms_entries == 0 &&
		    !s->read_only)
			fresh = true;
	}
	for (size_t i = 0; i < 6 && rc == 0; i++) {
		mrc = mdb_dbi_open(txn, DB_NAMES[i], fresh ? MDB_CREATE : 0,
				   slot[i]);
		if (mrc == MDB_NOTFOUND || mrc == MDB_INCOMPATIBLE) {
			lmdb__set_error(s, "an LMDB file that is not a keel store "
				     "(no database \"%s\")", DB_NAMES[i]);
			rc = KEEL_EBADMAGIC;
		} else if (mrc != 0) {
			rc = lmdb__err(s, mrc, "open database");
		}
	}
	MDB_val k = lmdb__str(LMDB_META_FORMAT), v;
	if (rc == 0 && fresh) {
		rc = write_format(s, txn);
	} else if (rc == 0) {
		uint32_t version = 0;
		mrc = mdb_get(txn, s->dbi_meta, &k, &v);
		rc = mrc == 0 ? record_format_decode(v.mv_data, v.mv_size, &version)
			      : KEEL_EBADMAGIC;
		if (rc == KEEL_EBADVERSION)
			lmdb__set_error(s, "a keel store of another format version "
				     "(this build reads versions %u to %u)",
				  RECORD_STORE_VERSION_MIN, RECORD_STORE_VERSION);
		else if (rc != 0)
			lmdb__set_error(s, "not a keel store (bad format record)");
		if (rc == KEEL_ECORRUPT)
			rc = KEEL_EBADMAGIC;
		/* An older version this build reads: marked as this one's
		 * before anything of this version is written (record.h). */
		if (rc == 0 && version < RECORD_STORE_VERSION && !s->read_only)
			rc = write_format(s, txn);
	}
	if (rc == 0)
		rc = open_staging(s, txn);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	mrc = mdb_txn_commit(txn);
	if (mrc != 0)
		return lmdb__err(s, mrc, "commit");
	if (fresh && (mrc = mdb_env_sync(s->env, 1)) != 0)
		return lmdb__err(s, mrc, "sync");
	return 0;
}

/* ---- the writable map: reservation and the SIGBUS message ---------------- */

/*
 * A write through the map to a block the file system cannot allocate is a
 * SIGBUS. The reservation (lmdb__reserve_*) makes that the rare case; this
 * handler makes it a clear one: it names the map and the offset, says what
 * it means, and then lets the signal kill the process as it would have
 * (committed data is safe: LMDB writes only pages no committed state uses
 * until the commit's meta page, and that is written after the data pages).
 * Process-wide by nature; the table holds the maps of open stores.
 */
#define SIGBUS_MAPS_MAX 16u

static struct {
	volatile uintptr_t base; /* 0: free slot */
	volatile size_t bytes;
	MDB_env *env;
} sigbus_maps[SIGBUS_MAPS_MAX];
static struct sigaction sigbus_old;
static volatile sig_atomic_t sigbus_installed;

static size_t sigbus_fmt_u64(char *out, uint64_t v)
{
	char tmp[24];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}

static void sigbus_handler(int sig, siginfo_t *si, void *uctx)
{
	(void)uctx;
	int saved_errno = errno;
	uintptr_t a = (uintptr_t)si->si_addr;
	for (size_t i = 0; si->si_code > 0 && i < SIGBUS_MAPS_MAX; i++) {
		uintptr_t b = sigbus_maps[i].base;
		if (b == 0 || a < b || a - b >= sigbus_maps[i].bytes)
			continue;
		static const char m1[] = "keel: SIGBUS at byte ";
		static const char m2[] =
			" of an LMDB data file mapped writable (--lmdb-writemap): "
			"the file system could not provide that page: the disk is "
			"full, a read failed (I/O error), or the file was cut "
			"short. A full disk does not affect committed data (LMDB "
			"writes a batch's pages before the page that commits it): "
			"free space, then restart the node.\n";
		char num[24];
		size_t n = sigbus_fmt_u64(num, a - b);
		(void)!write(2, m1, sizeof(m1) - 1);
		(void)!write(2, num, n);
		(void)!write(2, m2, sizeof(m2) - 1);
		break;
	}
	/* Back to what handled SIGBUS before. A fault's access runs again
	 * when this returns and then ends the process (or reaches the old
	 * handler); a SIGBUS sent by kill is raised again for it. */
	sigaction(sig, &sigbus_old, NULL);
	sigbus_installed = 0;
	if (si->si_code <= 0)
		raise(sig);
	errno = saved_errno;
}

static void sigbus_remember(MDB_env *env, uintptr_t base, size_t bytes)
{
	if (!sigbus_installed) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = sigbus_handler;
		sa.sa_flags = SA_SIGINFO;
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGBUS, &sa, &sigbus_old) != 0)
			return; /* no message then; the reservation still holds */
		sigbus_installed = 1;
	}
	for (size_t i = 0; i < SIGBUS_MAPS_MAX; i++)
		if (sigbus_maps[i].base == 0) {
			sigbus_maps[i].env = env;
			sigbus_maps[i].bytes = bytes;
			sigbus_maps[i].base = base;
			return;
		}
}

static void sigbus_forget(MDB_env *env)
{
	for (size_t i = 0; i < SIGBUS_MAPS_MAX; i++)
		if (sigbus_maps[i].base != 0 && sigbus_maps[i].env == env) {
			sigbus_maps[i].base = 0;
			sigbus_maps[i].env = NULL;
		}
}

/* Allocate the file's blocks in [offset, offset + bytes): 0 or an errno. */
static int reserve_blocks(const struct lmdb_store *s, uint64_t offset,
			  uint64_t bytes)
{
	if (s->reserve_limit != 0 && offset + bytes > s->reserve_limit)
		return ENOSPC;
	int rc;
	do
		rc = fallocate(s->fd, 0, (off_t)offset, (off_t)bytes);
	while (rc != 0 && errno == EINTR);
	return rc == 0 ? 0 : errno;
}

int lmdb__reserve_to(struct lmdb_store *s, uint64_t want)
{
	if (want > s->map_bytes)
		want = s->map_bytes;
	if (want <= s->reserved_end)
		return 0;
	uint64_t to = want + want / 4; /* fewer, larger reservations */
	if (to > s->map_bytes)
		to = s->map_bytes;
	int e = reserve_blocks(s, s->reserved_end, to - s->reserved_end);
	if (e == ENOSPC && to > want) { /* all that is needed may still fit */
		to = want;
		e = reserve_blocks(s, s->reserved_end, to - s->reserved_end);
	}
	if (e != 0) {
		lmdb__set_error(s,
				"cannot reserve the data file's blocks up to %.1f MiB for the writable map (high water %.1f MiB): %s",
				(double)to / (1 << 20),
				(double)s->batch_high / (1 << 20), strerror(e));
		return -e;
	}
	s->reserved_end = to;
	s->reservations++;
	return 0;
}

int lmdb__reserve_begin(struct lmdb_store *s)
{
	if (!s->writemap)
		return 0;
	MDB_envinfo info;
	int mrc = mdb_env_info(s->env, &info);
	if (mrc != 0)
		return lmdb__err(s, mrc, "env info");
	s->batch_high = ((uint64_t)info.me_last_pgno + 1) * s->psize;
	s->batch_bytes = 0;
	return lmdb__reserve_to(s, 2 * s->batch_high + s->reserve_ahead);
}

/* The map's range, for the SIGBUS message (LMDB reports no address without
 * MDB_FIXEDMAP): the mapping in /proc/self/maps that holds a record just
 * read through the map, if it has the map's size. */
static void writemap_watch(struct lmdb_store *s)
{
	MDB_txn *txn;
	MDB_val k = lmdb__str(LMDB_META_FORMAT), v = {0};
	if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
		return;
	int mrc = mdb_get(txn, s->dbi_meta, &k, &v);
	uintptr_t at = (uintptr_t)v.mv_data;
	mdb_txn_abort(txn);
	FILE *f = mrc == 0 ? fopen("/proc/self/maps", "r") : NULL;
	if (f == NULL)
		return;
	char line[4096 + 128]; /* a path longer than that only splits a line */
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && lo <= at && at < hi) {
			if (hi - lo == s->map_bytes)
				sigbus_remember(s->env, lo, s->map_bytes);
			break;
		}
	}
	fclose(f);
}

/* After mdb_env_open with MDB_WRITEMAP: what the reservation needs and the
 * first reservation. */
static int writemap_init(struct lmdb_store *s,
			 const struct lmdb_store_config *cfg)
{
	MDB_envinfo info;
	MDB_stat st;
	int mrc;
	if ((mrc = mdb_env_get_fd(s->env, &s->fd)) != 0 ||
	    (mrc = mdb_env_info(s->env, &info)) != 0 ||
	    (mrc = mdb_env_stat(s->env, &st)) != 0) {
		lmdb__set_error(s, "writable map: %s", mdb_strerror(mrc));
		return KEEL_ESTORAGE;
	}
	s->psize = st.ms_psize;
	s->map_bytes = info.me_mapsize;
	s->reserve_ahead = cfg->reserve_ahead_bytes != 0
				   ? cfg->reserve_ahead_bytes
				   : LMDB_STORE_RESERVE_AHEAD_BYTES;
	s->reserve_limit = cfg->reserve_limit_bytes;
	s->reserved_end = 0;
	return lmdb__reserve_begin(s);
}

int lmdb_store_open(struct lmdb_store *s, const struct lmdb_store_config *cfg)
{
	memset(s, 0, sizeof(*s));
	s->read_only = cfg->read_only;
	int exists = check_dir(s, cfg);
	if (exists < 0)
		return exists;
	int mrc = mdb_env_create(&s->env);
	if (mrc != 0) {
		lmdb__set_error(s, "mdb_env_create: %s", mdb_strerror(mrc));
		return KEEL_ESTORAGE;
	}
	uint64_t map = cfg->map_bytes != 0 ? cfg->map_bytes
					   : LMDB_STORE_MAP_BYTES_DEFAULT;
	s->writemap = cfg->writemap && !cfg->read_only;
	unsigned flags = MDB_NOTLS | MDB_NOMETASYNC |
			 (cfg->read_only ? MDB_RDONLY : 0) |
			 (s->writemap ? MDB_WRITEMAP : 0);
	int rc = 0;
	if ((mrc = mdb_env_set_maxdbs(s->env, LMDB_STORE_DBS_MAX)) != 0 ||
	    (mrc = mdb_env_set_mapsize(s->env, (size_t)map)) != 0 ||
	    (mrc = mdb_env_open(s->env, cfg->dir, flags, 0600)) != 0) {
		if (mrc == MDB_INVALID) {
			lmdb__set_error(s, "%s/data.mdb is not an LMDB file", cfg->dir);
			rc = KEEL_EBADMAGIC;
		} else if (mrc == MDB_VERSION_MISMATCH) {
			lmdb__set_error(s, "%s: LMDB version mismatch", cfg->dir);
			rc = KEEL_EBADVERSION;
		} else {
			lmdb__set_error(s, "open %s: %s", cfg->dir, mdb_strerror(mrc));
			rc = mrc > 0 ? -mrc : KEEL_ESTORAGE;
		}
	}
	if (rc == 0 && s->writemap)
		rc = writemap_init(s, cfg);
	if (rc == 0)
		rc = open_dbs(s, exists == 0);
	if (rc == 0 && s->writemap)
		writemap_watch(s);
	if (rc != 0) {
		char why[LMDB_STORE_ERROR_BYTES];
		memcpy(why, s->error, sizeof(why));
		if (s->writemap)
			sigbus_forget(s->env);
		mdb_env_close(s->env);
		memset(s, 0, sizeof(*s));
		memcpy(s->error, why, sizeof(why));
		return rc;
	}
	return 0;
}

void lmdb_store_close(struct lmdb_store *s)
{
	if (s->env == NULL)
		return;
	lmdb__write_abort(s);
	lmdb__snap_end(s);
	if (s->rtxn != NULL)
		mdb_txn_abort(s->rtxn);
	if (s->writemap)
		sigbus_forget(s->env);
	mdb_env_close(s->env);
	free(s->buf);
	memset(s, 0, sizeof(*s));
}

