/*
 * mutant.h: planted bugs, compiled in only by `make mutants`.
 *
 * `make mutants` builds keelsim once per bug with -DKEEL_MUTANT=N and runs
 * seeds until the simulator catches it. Every other build has KEEL_MUTANT 0,
 * so each `if (MUTANT(X))` below is a constant false the compiler removes.
 * A production binary never carries a planted bug.
 */
#ifndef KEEL_MUTANT_H
#define KEEL_MUTANT_H

#ifndef KEEL_MUTANT
#define KEEL_MUTANT 0
#endif

#define MUTANT(n) (KEEL_MUTANT == (n))

/* core/raft */
#define MUTANT_COMMIT_OLD_TERM 1       /* count replicas for a previous term's entry (figure 8) */
#define MUTANT_VOTE_BEFORE_DURABLE 2   /* vote response leaves before term/vote are durable */
#define MUTANT_ACK_BEFORE_DURABLE 3    /* append ack leaves before entries are durable */
#define MUTANT_TRUNCATE_NO_CONFLICT 4  /* delayed/duplicate append truncates matching entries */
#define MUTANT_VOTE_NO_LOG_CHECK 5     /* grant votes without the up-to-date-log check */
#define MUTANT_READ_BEFORE_TERM_COMMIT 6 /* ReadIndex before an entry of this term committed */
#define MUTANT_READ_NO_QUORUM 7        /* leader answers reads without the quorum round */
/* core/kv */
#define MUTANT_NO_SESSION_DEDUP 8      /* a retried write is applied again */
/* sim client */
#define MUTANT_INDETERMINATE_AS_FAIL 9 /* a timed-out write is recorded as failed */
/* core/raft */
#define MUTANT_NO_CHECK_QUORUM 10      /* a partitioned leader never steps down */
/* core/kv */
#define MUTANT_SESSION_NOT_ATOMIC 11   /* kv and sessions committed in separate batches */
/* core/raft */
#define MUTANT_FIXED_ELECTION_TIMEOUT 12 /* no jitter: split votes forever */

/* core/raft (issue 7) */
#define MUTANT_CONFIG_NO_TERM_COMMIT 13 /* membership change before an entry of this term committed (M2) */
#define MUTANT_REMOVED_LEADER_LEADS 14  /* a leader removed from the voters keeps leading (M5) */
/* core/snapshot */
#define MUTANT_SNAPSHOT_NOT_ATOMIC 15   /* install switches kv and the applied index in separate batches */

#define MUTANT_COUNT 15

#endif
