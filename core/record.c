/* record.c: encode and validate the stored record formats; see record.h. */
#include "record.h"

#include <string.h>
#include <xxhash.h>

#include "assert.h"
#include "err.h"

void record_put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

uint64_t record_get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* Write the header for a payload of payload_bytes; the caller fills the
 * payload at out + RECORD_HEADER_BYTES, then calls seal(). */
static void header(uint8_t *out, uint32_t kind, uint32_t payload_bytes)
{
	out[0] = (uint8_t)kind;
	out[1] = (uint8_t)RECORD_VERSION;
	out[2] = 0;
	out[3] = 0;
	put_u32(out + 4, payload_bytes);
}

static size_t seal(uint8_t *out, uint32_t payload_bytes)
{
	size_t body = RECORD_HEADER_BYTES + (size_t)payload_bytes;
	record_put_u64(out + body, XXH3_64bits(out, body));
	return body + RECORD_TRAILER_BYTES;
}

/* Check a record's frame: kind, version, reserved, exact length, checksum.
 * On success *payload and *payload_bytes describe the payload inside p. */
static int open_record(const uint8_t *p, size_t n, uint32_t kind,
		       const uint8_t **payload, uint32_t *payload_bytes)
{
	if (p == NULL || n < RECORD_OVERHEAD)
		return KEEL_ECORRUPT;
	if (p[0] != kind || p[1] != RECORD_VERSION || p[2] != 0 || p[3] != 0)
		return KEEL_ECORRUPT;
	uint32_t pb = get_u32(p + 4);
	if ((uint64_t)pb + RECORD_OVERHEAD != (uint64_t)n)
		return KEEL_ECORRUPT;
	size_t body = RECORD_HEADER_BYTES + (size_t)pb;
	if (XXH3_64bits(p, body) != record_get_u64(p + body))
		return KEEL_ECORRUPT;
	*payload = p + RECORD_HEADER_BYTES;
	*payload_bytes = pb;
	return 0;
}

/* ---- entries ------------------------------------------------------------ */

int record_entry_validate(const struct entry *e)
{
	if (e->term == 0 || e->index == 0)
		return KEEL_EINVAL;
	if (e->type < ENTRY_NOOP || e->type > ENTRY_CONFIG)
		return KEEL_EINVAL;
	if (e->data_bytes > KEEL_ENTRY_BYTES_MAX)
		return KEEL_EINVAL;
	if (e->data_bytes > 0 && e->data == NULL)
		return KEEL_EINVAL;
	return 0;
}

size_t record_entry_bytes(const struct entry *e)
{
	return RECORD_OVERHEAD + RECORD_ENTRY_FIXED_BYTES + (size_t)e->data_bytes;
}

size_t record_entry_encode(const struct entry *e, uint8_t *out, size_t cap)
{
	KEEL_ASSERT(record_entry_validate(e) == 0); /* R1 */
	size_t bytes = record_entry_bytes(e);
	KEEL_ASSERT(cap >= bytes);
	uint32_t pb = RECORD_ENTRY_FIXED_BYTES + e->data_bytes;
	header(out, RECORD_ENTRY, pb);
	uint8_t *q = out + RECORD_HEADER_BYTES;
	record_put_u64(q, e->term);
	record_put_u64(q + 8, e->index);
	put_u32(q + 16, e->type);
	if (e->data_bytes > 0)
		memcpy(q + RECORD_ENTRY_FIXED_BYTES, e->data, e->data_bytes);
	size_t n = seal(out, pb);
	KEEL_ASSERT(n == bytes);
	struct entry check;
	KEEL_ASSERT(record_entry_decode(out, n, &check) == 0); /* R1 */
	KEEL_ASSERT(check.index == e->index);
	KEEL_ASSERT(check.term == e->term);
	return n;
}

int record_entry_decode(const uint8_t *p, size_t n, struct entry *e)
{
	const uint8_t *q;
	uint32_t pb;
	int rc = open_record(p, n, RECORD_ENTRY, &q, &pb);
	if (rc != 0)
		return rc;
	if (pb < RECORD_ENTRY_FIXED_BYTES)
		return KEEL_ECORRUPT;
	struct entry d = {
		.term = record_get_u64(q),
		.index = record_get_u64(q + 8),
		.type = get_u32(q + 16),
		.data_bytes = pb - RECORD_ENTRY_FIXED_BYTES,
		.data = q + RECORD_ENTRY_FIXED_BYTES,
	};
	if (d.data_bytes == 0)
		d.data = NULL;
	if (record_entry_validate(&d) != 0)
		return KEEL_ECORRUPT;
	*e = d;
	return 0;
}

/* ---- fixed-size meta records --------------------------------------------- */

size_t record_ids_encode(uint64_t cluster_id, keel_node_id node_id,
			 uint8_t *out, size_t cap)
{
	KEEL_ASSERT(cap >= RECORD_IDS_BYTES);
	header(out, RECORD_IDS, 16);
	record_put_u64(out + 8, cluster_id);
	record_put_u64(out + 16, node_id);
	size_t n = seal(out, 16);
	uint64_t c;
	keel_node_id id;
	KEEL_ASSERT(record_ids_decode(out, n, &c, &id) == 0);
	KEEL_ASSERT(c == cluster_id);
	return n;
}

int record_ids_decode(const uint8_t *p, size_t n, uint64_t *cluster_id,
		      keel_node_id *node_id)
{
	const uint8_t *q;
	uint32_t pb;
	int rc = open_record(p, n, RECORD_IDS, &q, &pb);
	if (rc != 0)
		return rc;
	if (pb != 16)
		return KEEL_ECORRUPT;
	*cluster_id = record_get_u64(q);
	*node_id = record_get_u64(q + 8);
	return 0;
}

size_t record_hard_encode(const struct raft_hard_state *hs, uint8_t *out,
			  size_t cap)
{
	KEEL_ASSERT(cap >= RECORD_HARD_BYTES);
	header(out, RECORD_HARD, 24);
	record_put_u64(out + 8, hs->term);
	record_put_u64(out + 16, hs->vote);
	record_put_u64(out + 24, hs->commit);
	size_t n = seal(out, 24);
	struct raft_hard_state check;
	KEEL_ASSERT(record_hard_decode(out, n, &check) == 0);
	KEEL_ASSERT(check.term == hs->term);
	return n;
}

int record_hard_decode(const uint8_t *p, size_t n, struct raft_hard_state *hs)
{
	const uint8_t *q;
	uint32_t pb;
	int rc = open_record(p, n, RECORD_HARD, &q, &pb);
	if (rc != 0)
		return rc;
	if (pb != 24)
		return KEEL_ECORRUPT;
	hs->term = record_get_u64(q);
	hs->vote = record_get_u64(q + 8);
	hs->commit = record_get_u64(q + 16);
	return 0;
}

size_t record_applied_encode(uint64_t index, uint8_t *out, size_t cap)
{
	KEEL_ASSERT(cap >= RECORD_APPLIED_BYTES);
	header(out, RECORD_APPLIED, 8);
	record_put_u64(out + 8, index);
	size_t n = seal(out, 8);
	uint64_t check;
	KEEL_ASSERT(record_applied_decode(out, n, &check) == 0);
	KEEL_ASSERT(check == index);
	return n;
}

int record_applied_decode(const uint8_t *p, size_t n, uint64_t *index)
{
	const uint8_t *q;
	uint32_t pb;
	int rc = open_record(p, n, RECORD_APPLIED, &q, &pb);
	if (rc != 0)
		return rc;
	if (pb != 8)
		return KEEL_ECORRUPT;
	*index = record_get_u64(q);
	return 0;
}

size_t record_session_encode(const struct kv_session *se, uint8_t *out,
			     size_t cap)
{
	KEEL_ASSERT(cap >= RECORD_SESSION_BYTES);
	KEEL_ASSERT(se->client_id != 0);
	KEEL_ASSERT(se->status <= KV_STALE_SEQ);
	header(out, RECORD_SESSION, 28);
	record_put_u64(out + 8, se->client_id);
	record_put_u64(out + 16, se->seq);
	record_put_u64(out + 24, se->last_index);
	put_u32(out + 32, se->status);
	size_t n = seal(out, 28);
	struct kv_session check;
	KEEL_ASSERT(record_session_decode(out, n, &check) == 0);
	KEEL_ASSERT(check.seq == se->seq);
	return n;
}

int record_session_decode(const uint8_t *p, size_t n, struct kv_session *se)
{
	const uint8_t *q;
	uint32_t pb;
	int rc = open_record(p, n, RECORD_SESSION, &q, &pb);
	if (rc != 0)
		return rc;
	if (pb != 28)
		return KEEL_ECORRUPT;
	struct kv_session d = {
		.client_id = record_get_u64(q),
		.seq = record_get_u64(q + 8),
		.last_index = record_get_u64(q + 16),
		.status = get_u32(q + 24),
	};
	if (d.client_id == 0 || d.status > KV_STALE_SEQ)
		return KEEL_ECORRUPT;
	*se = d;
	return 0;
}

size_t record_format_encode(uint32_t version, uint8_t *out, size_t cap)
{
	KEEL_ASSERT(cap >= RECORD_FORMAT_BYTES);
	KEEL_ASSERT(version >= RECORD_STORE_VERSION_MIN);
	KEEL_ASSERT(version <= RECORD_STORE_VERSION);
	header(out, RECORD_FORMAT, 12);
	record_put_u64(out + 8, RECORD_STORE_MAGIC);
	put_u32(out + 16, version);
	size_t n = seal(out, 12);
	uint32_t back = 0;
	KEEL_ASSERT(record_format_decode(out, n, &back) == 0);
	KEEL_ASSERT(back == version);
	return n;
}

int record_format_decode(const uint8_t *p, size_t n, uint32_t *version)
{
	const uint8_t *q;
	uint32_t pb;
	int rc = open_record(p, n, RECORD_FORMAT, &q, &pb);
	if (rc != 0)
		return rc;
	if (pb != 12)
		return KEEL_ECORRUPT;
	if (record_get_u64(q) != RECORD_STORE_MAGIC)
		return KEEL_EBADMAGIC;
	uint32_t v = get_u32(q + 8);
	if (v < RECORD_STORE_VERSION_MIN || v > RECORD_STORE_VERSION)
		return KEEL_EBADVERSION;
	*version = v;
	return 0;
}

/* ---- snapshot point ------------------------------------------------------ */

static size_t addr_len(const char *a)
{
	return strnlen(a, KEEL_ADDR_BYTES_MAX);
}

int record_membership_validate(const struct membership *m)
{
	if (m->member_count > KEEL_MEMBERS_MAX)
		return KEEL_EINVAL;
	for (uint32_t i = 0; i < m->member_count; i++) {
		const struct member *mb = &m->members[i];
		if (mb->role != MEMBER_VOTER && mb->role != MEMBER_LEARNER)
			return KEEL_EINVAL;
		if (addr_len(mb->peer_addr) >= KEEL_ADDR_BYTES_MAX ||
		    addr_len(mb->client_addr) >= KEEL_ADDR_BYTES_MAX)
			return KEEL_EINVAL;
		/* raft.h M4, as the codec checks it: ids are handed out
		 * below next_id, so a next_id at or below one would reuse it. */
		if (m->next_id != 0 && mb->id >= m->next_id)
			return KEEL_EINVAL;
	}
	return 0;
}

size_t record_snap_bytes(const struct membership *m)
{
	size_t n = RECORD_OVERHEAD + 20u;
	for (uint32_t i = 0; i < m->member_count; i++)
		n += 8u + 4u + 2u + addr_len(m->members[i].peer_addr) +
		     addr_len(m->members[i].client_addr);
	return n + (m->next_id != 0 ? 8u : 0u);
}

static uint8_t *put_addr(uint8_t *q, const char *a)
{
	size_t len = addr_len(a);
	*q++ = (uint8_t)len;
	memcpy(q, a, len);
	return q + len;
}

size_t record_snap_encode(uint64_t index, uint64_t term,
			  const struct membership *m, uint8_t *out, size_t cap)
{
	KEEL_ASSERT(record_membership_validate(m) == 0); /* R1 */
	size_t bytes = record_snap_bytes(m);
	KEEL_ASSERT(cap >= bytes);
	uint32_t pb = (uint32_t)(bytes - RECORD_OVERHEAD);
	header(out, RECORD_SNAP, pb);
	uint8_t *q = out + RECORD_HEADER_BYTES;
	record_put_u64(q, index);
	record_put_u64(q + 8, term);
	put_u32(q + 16, m->member_count);
	q += 20;
	for (uint32_t i = 0; i < m->member_count; i++) {
		record_put_u64(q, m->members[i].id);
		put_u32(q + 8, m->members[i].role);
		q = put_addr(q + 12, m->members[i].peer_addr);
		q = put_addr(q, m->members[i].client_addr);
	}
	if (m->next_id != 0) {
		record_put_u64(q, m->next_id);
		q += 8;
	}
	KEEL_ASSERT((size_t)(q - out) == RECORD_HEADER_BYTES + pb);
	size_t n = seal(out, pb);
	KEEL_ASSERT(n == bytes);
	uint64_t ci, ct;
	struct membership cm;
	KEEL_ASSERT(record_snap_decode(out, n, &ci, &ct, &cm) == 0); /* R1 */
	KEEL_ASSERT(ci == index);
	KEEL_ASSERT(cm.member_count == m->member_count);
	KEEL_ASSERT(cm.next_id == m->next_id);
	return n;
}

/* Read one length-prefixed address from q[0..end); NULL when it does not
 * fit, is too long or holds a NUL. */
static const uint8_t *get_addr(const uint8_t *q, const uint8_t *end, char *a)
{
	if (q >= end)
		return NULL;
	size_t len = *q++;
	if (len >= KEEL_ADDR_BYTES_MAX || (size_t)(end - q) < len)
		return NULL;
	if (memchr(q, 0, len) != NULL)
		return NULL;
	memset(a, 0, KEEL_ADDR_BYTES_MAX);
	memcpy(a, q, len);
	return q + len;
}

int record_snap_decode(const uint8_t *p, size_t n, uint64_t *index,
		       uint64_t *term, struct membership *m)
{
	const uint8_t *q;
	uint32_t pb;
	int rc = open_record(p, n, RECORD_SNAP, &q, &pb);
	if (rc != 0)
		return rc;
	if (pb < 20)
		return KEEL_ECORRUPT;
	const uint8_t *end = q + pb;
	uint32_t count = get_u32(q + 16);
	if (count > KEEL_MEMBERS_MAX)
		return KEEL_ECORRUPT;
	struct membership d;
	memset(&d, 0, sizeof(d));
	d.member_count = count;
	const uint8_t *c = q + 20;
	for (uint32_t i = 0; i < count; i++) {
		if (end - c < 12)
			return KEEL_ECORRUPT;
		d.members[i].id = record_get_u64(c);
		d.members[i].role = get_u32(c + 8);
		c = get_addr(c + 12, end, d.members[i].peer_addr);
		if (c == NULL)
			return KEEL_ECORRUPT;
		c = get_addr(c, end, d.members[i].client_addr);
		if (c == NULL)
			return KEEL_ECORRUPT;
	}
	if (end - c == 8) {
		d.next_id = record_get_u64(c);
		if (d.next_id == 0) /* written only when nonzero */
			return KEEL_ECORRUPT;
		c += 8;
	}
	if (c != end || record_membership_validate(&d) != 0)
		return KEEL_ECORRUPT;
	*index = record_get_u64(q);
	*term = record_get_u64(q + 8);
	*m = d;
	return 0;
}

bool store_item_valid(const struct store_item *it)
{
	if (it->kind == STORE_ITEM_KV)
		return it->key != NULL && it->key_bytes >= 1 &&
		       it->key_bytes <= KEEL_KEY_BYTES_MAX &&
		       it->val_bytes <= KEEL_VALUE_BYTES_MAX &&
		       (it->val_bytes == 0 || it->val != NULL);
	if (it->kind == STORE_ITEM_SESSION)
		return it->session.client_id != 0 &&
		       it->session.status <= KV_STALE_SEQ;
	return false;
}
