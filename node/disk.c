/* disk.c: the storage thread (see disk.h). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/assert.h"
#include "../core/err.h"
#include "../io_real/log.h"
#include "disk.h"

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void disk_job_init(struct disk_job *j)
{
	memset(j, 0, sizeof *j);
}

bool disk_job_empty(const struct disk_job *j)
{
	return !j->hard_state_changed && j->entry_count == 0 &&
	       j->committed_count == 0 && j->read_count == 0 && j->held == NULL &&
	       j->snap == NULL;
}

static int grow(void **p, uint32_t *cap, uint32_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	uint32_t c = *cap ? *cap : 16;
	while (c < need)
		c *= 2;
	void *q = realloc(*p, (size_t)c * elem);
	if (q == NULL)
		return KEEL_ENOMEM;
	*p = q;
	*cap = c;
	return 0;
}

static uint8_t *copy_bytes(struct disk_job *j, const uint8_t *src, size_t n)
{
	if (n == 0)
		return NULL;
	if (grow((void **)&j->blocks, &j->block_cap, j->block_count + 1,
		 sizeof *j->blocks) != 0)
		return NULL;
	uint8_t *b = malloc(n);
	if (b == NULL)
		return NULL;
	memcpy(b, src, n);
	j->blocks[j->block_count++] = b;
	return b;
}

static int copy_entries(struct disk_job *j, struct entry **arr, uint32_t *count,
			uint32_t *cap, const struct entry *e, size_t n)
{
	if (grow((void **)arr, cap, *count + (uint32_t)n, sizeof **arr) != 0)
		return KEEL_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct entry *d = &(*arr)[*count + i];
		*d = e[i];
		if (e[i].data_bytes > 0) {
			d->data = copy_bytes(j, e[i].data, e[i].data_bytes);
			if (d->data == NULL)
				return KEEL_ENOMEM;
		}
	}
	*count += (uint32_t)n;
	return 0;
}

int disk_job_add_entries(struct disk_job *j, const struct entry *e, size_t n)
{
	if (n == 0)
		return 0;
	if (j->segment_count == DISK_SEGMENTS_MAX)
		return KEEL_EBUSY;
	uint32_t first = j->entry_count;
	int rc = copy_entries(j, &j->entries, &j->entry_count, &j->entry_cap, e, n);
	if (rc != 0)
		return rc;
	j->segments[j->segment_count++] =
		(struct disk_segment){ .first = first, .count = (uint32_t)n };
	return 0;
}

int disk_job_add_committed(struct disk_job *j, const struct entry *e, size_t n)
{
	return copy_entries(j, &j->committed, &j->committed_count,
			    &j->committed_cap, e, n);
}

int disk_job_add_read(struct disk_job *j, uint64_t token, const uint8_t *key,
		      uint32_t key_bytes)
{
	if (j->read_count == DISK_READS_MAX)
		return KEEL_EBUSY;
	if (grow((void **)&j->reads, &j->read_cap, j->read_count + 1,
		 sizeof *j->reads) != 0)
		return KEEL_ENOMEM;
	struct disk_read *r = &j->reads[j->read_count];
	memset(r, 0, sizeof *r);
	r->token = token;
	r->key_bytes = key_bytes;
	r->key = copy_bytes(j, key, key_bytes);
	if (key_bytes > 0 && r->key == NULL)
		return KEEL_ENOMEM;
	j->read_count++;
	return 0;
}

void disk_job_reset(struct disk_job *j)
{
	for (uint32_t i = 0; i < j->block_count; i++)
		free(j->blocks[i]);
	for (uint32_t i = 0; i < j->read_count; i++)
		free(j->reads[i].value);
	free(j->blocks);
	free(j->entries);
	free(j->committed);
	free(j->reads);
	free(j->results);
	KEEL_ASSERT(j->held == NULL);
	snap_work_free(j->snap);
	disk_job_init(j);
}

/* ---- storage thread ----------------------------------------------------- */

static void on_result(void *ctx, const struct kv_result *res)
{
	struct disk_job *j = ctx;
	if (grow((void **)&j->results, &j->result_cap, j->result_count + 1,
		 sizeof *j->results) != 0) {
		j->err = KEEL_ENOMEM; /* the job fails: sticky storage error */
		return;
	}
	j->results[j->result_count++] = *res;
}

/* Invariant 5: results[] so far are final; the loop may answer them. */
static void post_results(struct disk *d, struct disk_job *j)
{
	pthread_mutex_lock(&d->mu);
	if (j->result_count > d->results_posted) {
		d->results_posted = j->result_count;
		uv_async_send(&d->async);
	}
	pthread_mutex_unlock(&d->mu);
}

/* Invariant 4: tell the loop the log part is durable, then wait until it
 * has seen that (it may add committed entries to the job meanwhile). */
static void pause_persisted(struct disk *d)
{
	pthread_mutex_lock(&d->mu);
	d->job_persisted = true;
	uv_async_send(&d->async);
	while (!d->job_continue && !d->stop)
		pthread_cond_wait(&d->cv, &d->mu);
	pthread_mutex_unlock(&d->mu);
}

/* kv_apply of committed[first..committed_count) in the open batch, then
 * its results are posted. */
static int apply_from(struct disk *d, struct disk_job *j, uint32_t first)
{
	if (first == j->committed_count)
		return 0;
	uint64_t t1 = now_ns();
	d->wc.aborted = false;
	int rc = kv_apply(&d->kv, &j->committed[first],
			  j->committed_count - first, on_result, j);
	if (rc == 0 && (d->wc.aborted || j->err != 0))
		rc = j->err != 0 ? j->err : KEEL_ESTORAGE;
	j->apply_ns += now_ns() - t1;
	if (rc == 0)
		post_results(d, j);
	return rc;
}

/* A store batch for the cache to flush into (wcache W4, W6). */
static int batch_begin(struct disk *d)
{
	int rc = d->store->ops->write_begin(d->store->impl);
	d->wc.wrote_real = false;
	return rc;
}

/* Due once flush_ms old, or half full: a flush at a job's step 3 comes
 * before the bound would force one in the middle of an apply (wcache W2),
 * which may be step 1's, ahead of the log's sync. */
static bool flush_due(const struct disk *d)
{
	if (wcache_empty(&d->wc))
		return false;
	return now_ns() - d->flushed_ns >= (uint64_t)d->opt.flush_ms * 1000000u ||
	       wcache_items(&d->wc) >= WCACHE_ITEMS_MAX / 2 ||
	       d->wc.bytes >= WCACHE_BYTES_MAX / 2;
}

/* A small cache rides in the job's log batch (no commit of its own); a
 * large one gets its own batch after the log's sync, so that its writes
 * never delay the log (disk.h). */
static bool flush_small(const struct disk *d)
{
	return flush_due(d) &&
	       wcache_items(&d->wc) <= DISK_FLUSH_RIDE_ITEMS_MAX;
}

static bool flush_large(const struct disk *d)
{
	return flush_due(d) && wcache_items(&d->wc) > DISK_FLUSH_RIDE_ITEMS_MAX;
}

static int flush_into_batch(struct disk *d)
{
	uint64_t t0 = now_ns();
	uint32_t items = wcache_items(&d->wc);
	int rc = wcache_flush(&d->wc);
	if (rc == 0) {
		d->flushed_ns = now_ns();
		d->flush_count++;
		d->flush_items += items;
		d->flush_ns += d->flushed_ns - t0;
	}
	return rc;
}

/* The cache alone, in a batch of its own; then a sync when asked (even
 * with nothing to flush: earlier flushes commit without one). */
static int flush_batch(struct disk *d, bool sync)
{
	const struct store_ops *ops = d->store->ops;
	void *s = d->store->impl;
	if (wcache_empty(&d->wc))
		return sync ? ops->sync(s) : 0;
	int rc = batch_begin(d);
	if (rc != 0)
		return rc;
	rc = flush_into_batch(d);
	if (rc != 0) {
		ops->write_abort(s);
		return rc;
	}
	uint64_t t0 = now_ns();
	rc = ops->write_commit(s);
	if (rc == 0 && sync)
		rc = ops->sync(s);
	d->flush_ns += now_ns() - t0; /* its own batch: the commit is its cost */
	return rc;
}

/* Step 1 of disk.h: apply what was committed at submission, then the hard
 * state and the log segments (and the cache when a flush is due); one
 * commit, one sync. */
static int write_log(struct disk *d, struct disk_job *j)
{
	if (!j->hard_state_changed && j->entry_count == 0 &&
	    j->committed_count == 0 && !flush_small(d))
		return 0;
	const struct store_ops *ops = d->store->ops;
	void *s = d->store->impl;
	int rc = batch_begin(d);
	if (rc != 0)
		return rc;
	rc = apply_from(d, j, 0);
	if (rc == 0 && j->hard_state_changed)
		rc = ops->set_hard_state(s, &j->hard_state);
	for (uint32_t i = 0; rc == 0 && i < j->segment_count; i++) {
		const struct disk_segment *sg = &j->segments[i];
		rc = ops->log_append(s, &j->entries[sg->first], sg->count);
	}
	if (rc == 0 && flush_small(d)) /* the applies above ride along too */
		rc = flush_into_batch(d);
	if (rc != 0) {
		ops->write_abort(s);
		return rc;
	}
	rc = ops->write_commit(s);
	/* Only new log entries and a new term or vote must be durable before
	 * anything that depends on them; the commit index and the applied
	 * state are rebuilt from the log after a crash, so a batch without
	 * them commits without the extra sync (a later sync covers it). */
	bool vote_changed = j->hard_state_changed &&
			    (j->hard_state.term != d->synced_term ||
			     j->hard_state.vote != d->synced_vote);
	if (rc == 0 && (j->entry_count > 0 || vote_changed)) {
		rc = ops->sync(s);
		if (rc == 0 && j->hard_state_changed) {
			d->synced_term = j->hard_state.term;
			d->synced_vote = j->hard_state.vote;
		}
	}
	return rc;
}

/* Step 3 of disk.h: what the loop added in step 2, into the cache, and a
 * large cache when due. The batch commits (without a sync: same reason as
 * above; LMDB's next commit makes it durable before its own) only when
 * the cache flushed into it. */
static int apply_pulled(struct disk *d, struct disk_job *j, uint32_t first)
{
	if (first == j->committed_count)
		return flush_large(d) ? flush_batch(d, false) : 0;
	const struct store_ops *ops = d->store->ops;
	void *s = d->store->impl;
	int rc = batch_begin(d);
	if (rc == 0)
		rc = apply_from(d, j, first);
	if (rc == 0 && flush_large(d))
		rc = flush_into_batch(d);
	if (rc != 0 || !d->wc.wrote_real) {
		ops->write_abort(s); /* nothing reached the batch, or failed */
		return rc;
	}
	uint64_t t0 = now_ns();
	rc = ops->write_commit(s);
	d->flush_ns += now_ns() - t0; /* committed only for the flush */
	return rc;
}

static void serve_reads(struct disk *d, struct disk_job *j)
{
	for (uint32_t i = 0; i < j->read_count; i++) {
		struct disk_read *r = &j->reads[i];
		const uint8_t *v = NULL;
		uint32_t vb = 0;
		r->status = kv_get(&d->kv, r->key, r->key_bytes, &v, &vb);
		if (r->status == 0 && vb > 0) {
			r->value = malloc(vb);
			if (r->value == NULL) {
				r->status = KEEL_ENOMEM;
				continue;
			}
			memcpy(r->value, v, vb);
		}
		r->value_bytes = r->status == 0 ? vb : 0;
	}
}

/* The store's own applied index (not the cache's): every batch of the
 * job has committed or aborted, so it reads what the store holds. */
static int read_store_applied(struct disk *d)
{
	struct store_meta m;
	int rc = d->store->ops->meta_get(d->store->impl, &m);
	if (rc == 0)
		d->store_applied = m.applied_index;
	return rc;
}

/* Invariant 2 and 7: the cache may hold part of a failed apply. */
static void fail(struct disk *d, int rc)
{
	d->sticky_err = rc;
	wcache_drop(&d->wc);
}

/* A flush outside any job (idle, or stopping); a failure sticks. */
static void flush_alone(struct disk *d, bool sync)
{
	if (d->sticky_err != 0)
		return;
	int rc = flush_batch(d, sync);
	if (rc != 0) {
		LOG_ERROR("storage: writing the applied state failed: %s",
			  log_err_msg(rc));
		fail(d, rc);
	}
}

static void run_job(struct disk *d, struct disk_job *j)
{
	if (d->sticky_err != 0) { /* invariant 2 */
		j->err = KEEL_ESTORAGE;
		return;
	}
	uint64_t t0 = now_ns();
	uint32_t first_pulled = j->committed_count;
	int rc = write_log(d, j);
	/* Snapshot staging and compaction follow the log writes, before the
	 * persisted callback releases the held messages (snapjob.h); staging
	 * after the cache (invariant 7: an install replaces the state). */
	if (rc == 0 && j->snap != NULL && j->snap->stage_count > 0)
		rc = flush_batch(d, false);
	if (rc == 0 && j->snap != NULL) {
		KEEL_ASSERT(j->snap->compact_index <= d->store_applied); /* 7 */
		if (j->snap->stage_count > 0)
			KEEL_ASSERT(wcache_empty(&d->wc));
		rc = snapjob_run(d->snapjob, d->store, j->snap);
	}
	j->persist_ns = now_ns() - t0 - j->apply_ns;
	if (rc == 0) {
		pause_persisted(d);
		rc = apply_pulled(d, j, first_pulled);
	}
	if (rc == 0)
		rc = read_store_applied(d);
	j->flush_count = d->flush_count;
	j->flush_items = d->flush_items;
	j->flush_ns = d->flush_ns;
	j->store_applied = d->store_applied;
	if (rc != 0) {
		fail(d, rc);
		j->err = rc;
		return;
	}
	serve_reads(d, j);
}

/* Wait for a job or stop. Between jobs a non-empty cache is flushed once
 * the longer of flush_ms and idle_flush_ms has passed since the last flush. */
static void wait_for_work(struct disk *d)
{
	while (!d->stop && (d->job == NULL || d->job_done)) {
		if (wcache_empty(&d->wc) || d->sticky_err != 0) {
			pthread_cond_wait(&d->cv, &d->mu);
			continue;
		}
		uint32_t ms = d->opt.flush_ms > d->opt.idle_flush_ms
				      ? d->opt.flush_ms
				      : d->opt.idle_flush_ms;
		uint64_t due = d->flushed_ns + (uint64_t)ms * 1000000u;
		if (now_ns() >= due) {
			pthread_mutex_unlock(&d->mu);
			flush_alone(d, false);
			pthread_mutex_lock(&d->mu);
			continue;
		}
		struct timespec ts = { /* the cv waits on CLOCK_MONOTONIC */
			.tv_sec = (time_t)(due / 1000000000ull),
			.tv_nsec = (long)(due % 1000000000ull),
		};
		pthread_cond_timedwait(&d->cv, &d->mu, &ts);
	}
}

static void *thread_main(void *arg)
{
	struct disk *d = arg;
	pthread_mutex_lock(&d->mu);
	for (;;) {
		wait_for_work(d);
		if (d->job == NULL || d->job_done) {
			KEEL_ASSERT(d->stop);
			break;
		}
		struct disk_job *j = d->job;
		pthread_mutex_unlock(&d->mu);
		run_job(d, j);
		pthread_mutex_lock(&d->mu);
		d->job_done = true;
		uv_async_send(&d->async);
	}
	pthread_mutex_unlock(&d->mu);
	flush_alone(d, true); /* a clean stop leaves the store up to date */
	return NULL;
}

/* Invariants 4 to 6: new results first (so that the loop has read them
 * before the storage thread, let go, may grow results[] again), then
 * persisted, then done; the storage thread waits after persisted until
 * the callback returned. */
static void on_async(uv_async_t *a)
{
	struct disk *d = a->data;
	pthread_mutex_lock(&d->mu);
	struct disk_job *j = d->job;
	uint32_t posted = d->results_posted;
	bool persisted = j != NULL && d->job_persisted && !d->job_continue;
	bool done = j != NULL && d->job_done;
	if (done) {
		d->job = NULL;
		d->job_done = false;
	}
	pthread_mutex_unlock(&d->mu);
	if (j != NULL && posted > d->results_taken) {
		d->results(d->ctx, &j->results[d->results_taken],
			   posted - d->results_taken);
		d->results_taken = posted;
	}
	if (persisted) {
		d->persisted(d->ctx, j);
		pthread_mutex_lock(&d->mu);
		d->job_continue = true;
		pthread_cond_broadcast(&d->cv);
		pthread_mutex_unlock(&d->mu);
	}
	if (done)
		d->done(d->ctx, j);
}

int disk_start(struct disk *d, uv_loop_t *loop, struct store *store,
	       const struct disk_options *opt, const struct disk_callbacks *cb,
	       void *ctx)
{
	KEEL_ASSERT(opt->flush_ms <= DISK_FLUSH_MS_MAX);
	memset(d, 0, sizeof *d);
	d->store = store;
	wcache_init(&d->wc, store);
	kv_init(&d->kv, &d->wc.view, &(struct keel_alloc){ 0 });
	d->opt = *opt;
	d->flushed_ns = now_ns();
	struct store_meta meta; /* the thread has not started: ours to read */
	int mrc = store->ops->meta_get(store->impl, &meta);
	if (mrc != 0)
		return mrc;
	d->store_applied = meta.applied_index;
	d->persisted = cb->persisted;
	d->results = cb->results;
	d->done = cb->done;
	d->ctx = ctx;
	pthread_mutex_init(&d->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->cv, &ca);
	pthread_condattr_destroy(&ca);
	int rc = uv_async_init(loop, &d->async, on_async);
	if (rc != 0)
		return rc;
	d->async.data = d;
	rc = pthread_create(&d->thread, NULL, thread_main, d);
	if (rc != 0) {
		uv_close((uv_handle_t *)&d->async, NULL);
		return -rc;
	}
	d->started = true;
	return 0;
}

bool disk_busy(const struct disk *d)
{
	return d->job != NULL;
}

void disk_submit(struct disk *d, struct disk_job *j)
{
	pthread_mutex_lock(&d->mu);
	KEEL_ASSERT(d->job == NULL); /* invariant 1 */
	d->job = j;
	d->job_done = false;
	d->job_persisted = false;
	d->job_continue = false;
	d->results_posted = 0;
	d->results_taken = 0;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

void disk_stop(struct disk *d)
{
	if (!d->started)
		return;
	pthread_mutex_lock(&d->mu);
	d->stop = true;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
	pthread_join(d->thread, NULL);
	wcache_free(&d->wc);
	d->started = false;
	uv_close((uv_handle_t *)&d->async, NULL);
}
