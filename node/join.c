/* join.c: keel --join and self-promotion (see join.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../core/err.h"
#include "../io_real/log.h"
#include "join.h"

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(uint32_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void kc_config_for(struct kc_config *kc, const char (*list)[KEEL_ADDR_BYTES_MAX],
			  uint32_t count)
{
	kc_config_default(kc);
	kc->timeout_ms = 1000;
	kc->attempts_max = 3;
	for (uint32_t i = 0; i < count && i < KC_ENDPOINTS_MAX; i++)
		snprintf(kc->endpoints[kc->endpoint_count++], KEEL_ADDR_BYTES_MAX,
			 "%s", list[i]);
}

int join_ask(const struct node_config *cfg, keel_node_id *id,
	     uint64_t *cluster_id, char *err, size_t err_bytes)
{
	struct kc_config kcfg;
	kc_config_for(&kcfg, cfg->join, cfg->join_count);
	struct kc c;
	if (kc_init(&c, &kcfg) != 0) {
		snprintf(err, err_bytes, "--join: no addresses");
		return KEEL_EINVAL;
	}
	struct member_change ch = { .kind = MEMBER_ADD_LEARNER };
	snprintf(ch.peer_addr, sizeof ch.peer_addr, "%s", cfg->listen_addr);
	snprintf(ch.client_addr, sizeof ch.client_addr, "%s", cfg->client_addr);
	uint64_t deadline = now_ms() + JOIN_SECONDS_MAX * 1000u;
	int result = KEEL_ETIMEDOUT;
	snprintf(err, err_bytes, "no member answered within %u s", JOIN_SECONDS_MAX);
	while (now_ms() < deadline) {
		struct kc_result r;
		int rc = kc_member_change(&c, &ch, &r);
		if (rc == 0 && r.status == CLIENT_OK && r.member_id != 0 &&
		    r.cluster_id != 0) {
			*id = r.member_id;
			*cluster_id = r.cluster_id;
			kc_result_free(&r);
			result = 0;
			break;
		}
		if (rc == 0 && r.status == CLIENT_BAD_REQUEST) {
			snprintf(err, err_bytes, "the cluster refused to add this node: %s",
				 r.message);
			kc_result_free(&r);
			result = KEEL_EINVAL;
			break;
		}
		/* No leader yet, busy (another change in flight), or an
		 * unanswered attempt: the add is idempotent, ask again. */
		snprintf(err, err_bytes, "last attempt: %s",
			 rc == 0 ? kc_status_name(r.status) : kc_last_error(&c));
		if (rc == 0)
			kc_result_free(&r);
		LOG_INFO("join: not added yet (%s); retrying", err);
		sleep_ms(JOIN_RETRY_MS);
	}
	kc_close(&c);
	return result;
}

/* ---- DIR/JOIN_FILE ---------------------------------------------------------- */

int join_record_write(const char *dir, const struct join_record *jr,
		      char *err, size_t err_bytes)
{
	char path[CONFIG_PATH_BYTES_MAX + 32], tmp[CONFIG_PATH_BYTES_MAX + 40];
	snprintf(path, sizeof path, "%s/%s", dir, JOIN_FILE);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	char text[JOIN_FILE_BYTES_MAX];
	int n = snprintf(text, sizeof text, "listen = %s\nclient = %s\njoin = ",
			 jr->listen_addr, jr->client_addr);
	for (uint32_t i = 0; i < jr->join_count; i++)
		n += snprintf(text + n, sizeof text - (size_t)n, "%s%s",
			      i ? "," : "", jr->join[i]);
	n += snprintf(text + n, sizeof text - (size_t)n, "\n");
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int rc = fd < 0 ? -errno : 0;
	if (rc == 0 && write(fd, text, (size_t)n) != n)
		rc = -EIO;
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc == 0) { /* the rename is durable once the directory is */
		int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	if (rc != 0)
		snprintf(err, err_bytes, "cannot write %s: %s", path, strerror(-rc));
	return rc;
}

int join_record_read(const char *dir, struct join_record *jr, char *err,
		     size_t err_bytes)
{
	char path[CONFIG_PATH_BYTES_MAX + 32];
	snprintf(path, sizeof path, "%s/%s", dir, JOIN_FILE);
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		if (errno == ENOENT)
			return KEEL_ENOTFOUND;
		snprintf(err, err_bytes, "cannot read %s: %s", path, strerror(errno));
		return -errno;
	}
	char text[JOIN_FILE_BYTES_MAX + 1];
	size_t n = fread(text, 1, JOIN_FILE_BYTES_MAX, f);
	fclose(f);
	text[n] = '\0';
	/* Same syntax as a config file: parse it with the config parser. */
	struct node_config c;
	config_defaults(&c);
	char sub[CONFIG_ERR_BYTES_MAX];
	if (config_parse_text(&c, path, text, sub, sizeof sub) != 0 ||
	    c.listen_addr[0] == '\0' || c.client_addr[0] == '\0') {
		snprintf(err, err_bytes, "%s is damaged: %s", path,
			 sub[0] ? sub : "addresses missing");
		return KEEL_ECORRUPT;
	}
	memset(jr, 0, sizeof *jr);
	snprintf(jr->listen_addr, sizeof jr->listen_addr, "%s", c.listen_addr);
	snprintf(jr->client_addr, sizeof jr->client_addr, "%s", c.client_addr);
	jr->join_count = c.join_count;
	memcpy(jr->join, c.join, sizeof jr->join);
	return 0;
}

/* ---- promotion --------------------------------------------------------------- */

static bool stopping(struct join_promoter *jp)
{
	return __atomic_load_n(&jp->stop, __ATOMIC_RELAXED) != 0;
}

static void *promoter_main(void *arg)
{
	struct join_promoter *jp = arg;
	struct kc c;
	if (kc_init(&c, &jp->kc) != 0)
		return NULL;
	bool was_member = false;
	struct member_change ch = { .kind = MEMBER_PROMOTE, .id = jp->id };
	while (!stopping(jp)) {
		uint32_t role = __atomic_load_n(jp->self_role, __ATOMIC_RELAXED);
		if (role == MEMBER_VOTER)
			break;
		if (role == 0 && was_member)
			break; /* removed: nothing to promote */
		if (role == MEMBER_LEARNER) {
			was_member = true;
			struct kc_result r;
			int rc = kc_member_change(&c, &ch, &r);
			if (rc == 0) {
				if (r.status == CLIENT_OK)
					LOG_INFO("promotion to voter committed");
				kc_result_free(&r);
			}
		}
		sleep_ms(JOIN_PROMOTE_INTERVAL_MS);
	}
	kc_close(&c);
	return NULL;
}

int join_promoter_start(struct join_promoter *jp, keel_node_id id,
			const struct join_record *jr, const uint32_t *self_role)
{
	memset(jp, 0, sizeof *jp);
	jp->id = id;
	jp->self_role = self_role;
	kc_config_for(&jp->kc, jr->join, jr->join_count);
	/* This node too: as a learner it answers NOT_LEADER with the leader it
	 * knows, so the request finds the leader after every --join address
	 * has gone (removed, or down). */
	if (jp->kc.endpoint_count < KC_ENDPOINTS_MAX)
		snprintf(jp->kc.endpoints[jp->kc.endpoint_count++],
			 KEEL_ADDR_BYTES_MAX, "%s", jr->client_addr);
	/* Each attempt is short so a stopping node does not wait long. */
	jp->kc.timeout_ms = 500;
	jp->kc.attempts_max = 2;
	if (jp->kc.endpoint_count == 0)
		return 0;
	int rc = pthread_create(&jp->thread, NULL, promoter_main, jp);
	if (rc != 0)
		return -rc;
	jp->started = true;
	return 0;
}

void join_promoter_stop(struct join_promoter *jp)
{
	if (!jp->started)
		return;
	__atomic_store_n(&jp->stop, 1, __ATOMIC_RELAXED);
	pthread_join(jp->thread, NULL);
	jp->started = false;
}
