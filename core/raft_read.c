/*
 * raft_read.c: ReadIndex linearizable reads on the leader.
 *
 * Invariants:
 *   D1 a read is released only once the leader has committed an entry of its
 *      current term (commit >= term_start_index) and a quorum of voters has
 *      answered a heartbeat round started after the read arrived (round
 *      numbers are the append ctx; the leader counts itself).
 *   D2 a released read carries max(commit at arrival, term_start_index):
 *      every write acknowledged before the read arrived is at or below it.
 *   D3 reads are released in arrival order; pending plus finished reads stay
 *      <= RAFT_READS_PENDING_MAX; when leadership is lost every pending read
 *      fails with KEEL_ELEADERSHIP in the next ready.
 */
#include "err.h"
#include "mutant.h"
#include "raft_impl.h"

int raft_read_index(struct raft *r, uint64_t ctx)
{
	KEEL_ASSERT(!r->ready_pending); /* R1 */
	if (r->role != RAFT_LEADER)
		return KEEL_ENOTLEADER;
	if (r->reads_pending_count + r->reads_done_count >= RAFT_READS_PENDING_MAX)
		return KEEL_EBUSY; /* D3 */
	/* A round whose heartbeats have not left yet started after this read
	 * arrived too: share it. */
	if (!r->hb_round_fresh)
		raft_bcast_heartbeat(r);
	struct raft_pending_read *p = &r->reads_pending[r->reads_pending_count++];
	p->ctx = ctx;
	p->index = r->commit;
	p->round = r->hb_round;
	raft_reads_release(r);
	return 0;
}

static void finish(struct raft *r, const struct raft_pending_read *p,
		   uint64_t index, int err)
{
	KEEL_ASSERT(r->reads_done_count < RAFT_READS_PENDING_MAX); /* D3 */
	struct raft_read *d = &r->reads_done[r->reads_done_count++];
	d->ctx = p->ctx;
	d->index = index;
	d->err = err;
}

static void pop_front(struct raft *r, uint32_t n)
{
	KEEL_ASSERT(n <= r->reads_pending_count);
	r->reads_pending_count -= n;
	for (uint32_t i = 0; i < r->reads_pending_count; i++)
		r->reads_pending[i] = r->reads_pending[i + n];
}

void raft_reads_release(struct raft *r)
{
	if (r->role != RAFT_LEADER || r->reads_pending_count == 0)
		return;
	bool term_committed = r->commit >= r->term_start_index; /* D1 */
	if (!term_committed && !MUTANT(MUTANT_READ_BEFORE_TERM_COMMIT))
		return;
	uint64_t confirmed = raft_quorum_value(r, r->hb_round, true); /* D1 */
	if (MUTANT(MUTANT_READ_NO_QUORUM))
		confirmed = UINT64_MAX;
	uint32_t n = 0;
	while (n < r->reads_pending_count && r->reads_pending[n].round <= confirmed) {
		const struct raft_pending_read *p = &r->reads_pending[n];
		uint64_t index = p->index;
		if (term_committed && index < r->term_start_index)
			index = r->term_start_index; /* D2 */
		KEEL_ASSERT(index <= r->commit || !term_committed);
		finish(r, p, index, 0);
		n++;
	}
	pop_front(r, n);
}

void raft_reads_fail_all(struct raft *r, int err)
{
	KEEL_ASSERT(err < 0);
	for (uint32_t i = 0; i < r->reads_pending_count; i++)
		finish(r, &r->reads_pending[i], 0, err);
	r->reads_pending_count = 0;
}
