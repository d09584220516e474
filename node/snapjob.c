/* snapjob.c: compaction and snapshots on the storage thread (see
 * snapjob.h). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/assert.h"
#include "../core/err.h"
#include "../io_real/log.h"
#include "snapjob.h"

struct snap_work *snap_work_new(void)
{
	return calloc(1, sizeof(struct snap_work));
}

void snap_work_free(struct snap_work *w)
{
	if (w == NULL)
		return;
	free(w->send.chunk);
	for (uint32_t i = 0; i < w->stage_count; i++)
		free((void *)w->stage[i].c.chunk);
	free(w);
}

int snap_work_add_chunk(struct snap_work *w, const struct raft_snapshot_chunk *c)
{
	if (w->stage_count == SNAPJOB_STAGE_MAX)
		return KEEL_EBUSY;
	struct snap_stage *sg = &w->stage[w->stage_count];
	memset(sg, 0, sizeof *sg);
	sg->c = *c;
	sg->c.chunk = NULL;
	if (c->chunk_bytes > 0) {
		uint8_t *copy = malloc(c->chunk_bytes);
		if (copy == NULL)
			return KEEL_ENOMEM;
		memcpy(copy, c->chunk, c->chunk_bytes);
		sg->c.chunk = copy;
	}
	w->stage_count++;
	return 0;
}

void snapjob_close(struct snapjob *sj)
{
	snap_reader_close(&sj->reader);
	sj->owner = KEEL_NODE_NONE;
}

static int compact(struct store *st, struct snap_work *w)
{
	struct store_meta meta;
	int rc = st->ops->meta_get(st->impl, &meta);
	if (rc != 0)
		return rc;
	if (w->compact_index <= meta.snapshot_index)
		return 0; /* an install already moved the snapshot point past it */
	rc = st->ops->write_begin(st->impl);
	if (rc != 0)
		return rc;
	rc = st->ops->log_compact(st->impl, w->compact_index, w->compact_term,
				  &w->compact_membership);
	if (rc != 0) {
		st->ops->write_abort(st->impl);
		return rc;
	}
	rc = st->ops->write_commit(st->impl);
	if (rc == 0)
		rc = st->ops->sync(st->impl);
	if (rc == 0)
		w->compacted = true;
	return rc;
}

static int open_stream(struct snapjob *sj, struct store *st, keel_node_id to)
{
	snapjob_close(sj);
	uint64_t last_index = 0;
	int rc = snap_reader_open(&sj->reader, st, &(struct keel_alloc){ 0 },
				  &last_index);
	if (rc == 0)
		sj->owner = to;
	return rc;
}

/* Produce the chunk the loop asked for (raft.h: a stream that cannot
 * produce that offset starts over). */
static int produce(struct snapjob *sj, struct store *st, struct snap_send *sd)
{
	bool fresh = sd->new_stream || !sj->reader.open || sj->owner != sd->to ||
		     sj->reader.last_index != sd->last_index;
	uint64_t offset = sd->offset;
	if (fresh) {
		int rc = open_stream(sj, st, sd->to);
		if (rc != 0)
			return rc;
		offset = 0;
	}
	const uint8_t *chunk = NULL;
	uint32_t bytes = 0;
	bool done = false;
	int rc = snap_reader_chunk(&sj->reader, offset, &chunk, &bytes, &done);
	if (rc == KEEL_ERANGE && !fresh) {
		rc = open_stream(sj, st, sd->to);
		if (rc != 0)
			return rc;
		offset = 0;
		rc = snap_reader_chunk(&sj->reader, 0, &chunk, &bytes, &done);
	}
	if (rc != 0)
		return rc;
	sd->chunk = malloc(bytes > 0 ? bytes : 1);
	if (sd->chunk == NULL)
		return KEEL_ENOMEM;
	if (bytes > 0)
		memcpy(sd->chunk, chunk, bytes);
	sd->chunk_bytes = bytes;
	sd->done = done;
	sd->out_last_index = sj->reader.last_index;
	sd->out_offset = offset;
	sd->produced = true;
	if (done) /* the stream is complete: release the read transaction */
		snapjob_close(sj);
	return 0;
}

static void sleep_ms(uint32_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Errors that abandon this install and leave the store as it was (the
 * batch was aborted): a malformed chunk, a map too full for the staged
 * copy or the switch (LMDB's MAP_FULL/TXN_FULL are not sticky), or a
 * snapshot older than the store's own compaction point. Raft is told and
 * the leader starts over; any other error is the store's and sticks. */
static bool install_abandoned(int rc)
{
	return rc == KEEL_EMALFORMED || rc == KEEL_ENOMEM || rc == KEEL_EINVAL;
}

static int stage(struct snapjob *sj, struct store *st, struct snap_work *w)
{
	for (uint32_t i = 0; i < w->stage_count; i++) {
		struct snap_stage *sg = &w->stage[i];
		if (sj->stage_broken &&
		    sg->failures == sj->stage_broken_failures) {
			sg->err = KEEL_ESTATE;
			continue;
		}
		sj->stage_broken = false; /* handed out after the failure */
		if (w->delay_ms > 0)
			sleep_ms(w->delay_ms);
		int rc = snap_stage_chunk(st, &sg->c);
		if (rc == 0 && sg->c.done) {
			rc = snap_install(st, &sg->c);
			sg->installed = rc == 0;
		}
		if (install_abandoned(rc)) {
			sg->err = rc;
			sj->stage_broken = true;
			sj->stage_broken_failures = sg->failures;
			continue;
		}
		if (rc != 0)
			return rc;
	}
	return 0;
}

int snapjob_run(struct snapjob *sj, struct store *st, struct snap_work *w)
{
	if (w->close_reader)
		snapjob_close(sj);
	int rc = 0;
	if (w->compact_index > 0)
		rc = compact(st, w);
	if (rc == 0 && w->has_send)
		rc = produce(sj, st, &w->send);
	if (rc == 0 && w->stage_count > 0)
		rc = stage(sj, st, w);
	return rc;
}
