/*
 * check_model.c: the three models' step function and initial states.
 *
 * A model state is one interned value id: CHECK_ABSENT or a string id in
 * h->vals. All models share one step function; a model only fixes the
 * initial state (kv starts at "", the others absent) and which operations
 * it has (check_model_allows).
 *
 * Invariants:
 *  1. step never changes the state of an operation whose result it rejects.
 *  2. An operation with result CHECK_ANY (indeterminate) is legal in every
 *     state: the search relies on this to finish once every ok operation is
 *     placed (indeterminate ones can always go last).
 */
#include "check_int.h"

#include <stdlib.h>
#include <string.h>

#include "../core/assert.h"
#include "../core/err.h"

enum check_model check_model_for(const struct check_history *h)
{
	switch (h->format) {
	case CHECK_FORMAT_JEPSEN:
		return CHECK_MODEL_REGISTER;
	case CHECK_FORMAT_EDN:
		return CHECK_MODEL_KV;
	default:
		return CHECK_MODEL_KEEL;
	}
}

uint32_t check_initial_state(struct check_history *h, enum check_model model)
{
	if (model != CHECK_MODEL_KV)
		return CHECK_ABSENT;
	uint32_t id;
	return check_strtab_intern(&h->vals, "", 0, &id) == 0 ? id : CHECK_ANY;
}

bool check_model_allows(enum check_model model, enum check_kind kind)
{
	switch (model) {
	case CHECK_MODEL_REGISTER:
		return kind == CHECK_GET || kind == CHECK_PUT || kind == CHECK_CAS;
	case CHECK_MODEL_KV:
		return kind == CHECK_GET || kind == CHECK_PUT || kind == CHECK_APPEND;
	default:
		return true;
	}
}

/* The value of appending arg to state (absent counts as ""). Returns 0 or
 * KEEL_ETOOBIG / KEEL_ENOMEM. */
int check_append_value(struct check_history *h, uint32_t state, uint32_t arg, uint32_t *out)
{
	KEEL_ASSERT(arg != CHECK_ABSENT);
	if (state == CHECK_ABSENT) {
		*out = arg;
		return 0;
	}
	size_t a_len, b_len;
	const uint8_t *a = check_str_get(&h->vals, state, &a_len);
	const uint8_t *b = check_str_get(&h->vals, arg, &b_len);
	if (a_len + b_len > CHECK_STRING_BYTES_MAX)
		return KEEL_ETOOBIG;
	if (b_len == 0) {
		*out = state;
		return 0;
	}
	uint8_t small[512];
	uint8_t *buf = a_len + b_len <= sizeof small ? small : malloc(a_len + b_len);
	if (buf == NULL)
		return KEEL_ENOMEM;
	memcpy(buf, a, a_len);
	/* a may move when the table grows, but not before the intern below. */
	memcpy(buf + a_len, b, b_len);
	int rc = check_strtab_intern(&h->vals, buf, a_len + b_len, out);
	if (buf != small)
		free(buf);
	return rc;
}

int check_step_ids(struct check_history *h, uint8_t kind, uint32_t value,
		   uint32_t expected, uint32_t result, uint32_t state, uint32_t *out)
{
	switch (kind) {
	case CHECK_GET:
		*out = state;
		return result == CHECK_ANY || result == state;
	case CHECK_PUT:
		*out = value;
		return 1;
	case CHECK_DEL:
		*out = CHECK_ABSENT;
		return result == CHECK_ANY || result == (state != CHECK_ABSENT);
	case CHECK_CAS: {
		uint32_t hit = state == expected;
		*out = hit ? value : state;
		return result == CHECK_ANY || result == hit;
	}
	case CHECK_APPEND: {
		int rc = check_append_value(h, state, value, out);
		return rc == 0 ? 1 : rc;
	}
	default:
		KEEL_UNREACHABLE();
	}
}

bool check_step(struct check_history *h, const struct check_op *op, uint32_t state,
		uint32_t *out)
{
	int rc = check_step_ids(h, op->kind, op->value, op->expected, op->result, state, out);
	if (rc < 0)
		*out = CHECK_ANY;
	return rc == 1;
}
