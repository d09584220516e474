/*
 * fuzz_config.c: the node's configuration parsers (node/config.h) on
 * arbitrary text: a config file (config_parse_text, then config_validate)
 * and a --peers list (config_peers_parse).
 *
 * Properties:
 *  1. each returns only its documented codes (KEEL_ECONFIG / KEEL_EINVAL;
 *     config_peers_parse returns KEEL_ECONFIG although config.h says
 *     KEEL_EINVAL) with a NUL-terminated message, never crashes;
 *  2. a parsed peer list has at most KEEL_MEMBERS_MAX peers, nonzero ids,
 *     and addresses that pass config_addr_check.
 */
#include <stdlib.h>
#include <string.h>

#include "../core/err.h"
#include "../node/config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	FUZZ_CHECK(text != NULL);
	memcpy(text, data, size);
	text[size] = 0;

	static struct node_config c;
	char err[CONFIG_ERR_BYTES_MAX];
	config_defaults(&c);
	err[0] = 0;
	int rc = config_parse_text(&c, "fuzz.conf", text, err, sizeof(err));
	FUZZ_CHECK(rc == 0 || rc == KEEL_ECONFIG);
	FUZZ_CHECK(memchr(err, 0, sizeof(err)) != NULL);
	if (rc == 0) {
		rc = config_validate(&c, err, sizeof(err));
		FUZZ_CHECK(rc == 0 || rc == KEEL_ECONFIG);
		FUZZ_CHECK(memchr(err, 0, sizeof(err)) != NULL);
	}

	static struct config_peer peers[KEEL_MEMBERS_MAX];
	uint32_t count = 0;
	err[0] = 0;
	rc = config_peers_parse(text, peers, &count, err, sizeof(err));
	/* config.h documents KEEL_EINVAL; config.c returns KEEL_ECONFIG. */
	FUZZ_CHECK(rc == 0 || rc == KEEL_EINVAL || rc == KEEL_ECONFIG);
	FUZZ_CHECK(memchr(err, 0, sizeof(err)) != NULL);
	if (rc == 0) {
		FUZZ_CHECK(count <= KEEL_MEMBERS_MAX);
		for (uint32_t i = 0; i < count; i++) {
			FUZZ_CHECK(peers[i].id != KEEL_NODE_NONE);
			FUZZ_CHECK(config_addr_check(peers[i].peer_addr) == 0);
			FUZZ_CHECK(peers[i].client_addr[0] == 0 ||
				   config_addr_check(peers[i].client_addr) == 0);
		}
	}
	rc = config_addr_check(text);
	FUZZ_CHECK(rc == 0 || rc == KEEL_EINVAL);
	free(text);
	return 0;
}
