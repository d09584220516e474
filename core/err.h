/*
 * err.h: keel's error codes.
 *
 * 0 is success; failures are negative ints. Our own codes live in the one
 * table below (code, value, message); OS failures pass through as -errno,
 * so our values start at -1000 to stay clear of every errno.
 */
#ifndef KEEL_ERR_H
#define KEEL_ERR_H

#define KEEL_ERR_TABLE(X)                                                     \
	X(KEEL_EINVAL, -1000, "invalid argument")                             \
	X(KEEL_ENOMEM, -1001, "out of memory")                                \
	X(KEEL_ENOTLEADER, -1002, "not the leader")                           \
	X(KEEL_EBUSY, -1003, "queue full, try again later")                   \
	X(KEEL_ETOOBIG, -1004, "size exceeds its limit")                      \
	X(KEEL_ETRUNCATED, -1005, "input ends early")                         \
	X(KEEL_EBADMAGIC, -1006, "bad frame magic")                           \
	X(KEEL_EBADVERSION, -1007, "unsupported protocol version")            \
	X(KEEL_EBADTYPE, -1008, "unknown message type")                       \
	X(KEEL_ECHECKSUM, -1009, "checksum mismatch")                         \
	X(KEEL_EMALFORMED, -1010, "malformed payload")                        \
	X(KEEL_ERANGE, -1011, "field out of range")                           \
	X(KEEL_ECORRUPT, -1012, "stored data is corrupt")                     \
	X(KEEL_ENOTFOUND, -1013, "not found")                                 \
	X(KEEL_ECLUSTER, -1014, "peer belongs to another cluster")            \
	X(KEEL_ESHUTDOWN, -1015, "shutting down")                             \
	X(KEEL_ETIMEDOUT, -1016, "timed out")                                 \
	X(KEEL_EINDETERMINATE, -1017, "outcome unknown: may or may not have taken effect") \
	X(KEEL_ECOMPACTED, -1018, "entries were compacted away")              \
	X(KEEL_ELEADERSHIP, -1019, "leadership lost before completion")       \
	X(KEEL_ESTORAGE, -1020, "storage failed; the node stopped serving")   \
	X(KEEL_EEXIST, -1021, "already exists")                               \
	X(KEEL_ESTATE, -1022, "operation not valid in the current state")     \
	X(KEEL_ENOLEADER, -1023, "no leader known")                           \
	X(KEEL_ECONFIG, -1024, "configuration error")

enum keel_err {
#define KEEL_ERR_ENUM(name, value, msg) name = (value),
	KEEL_ERR_TABLE(KEEL_ERR_ENUM)
#undef KEEL_ERR_ENUM
};

/* "KEEL_ENOTLEADER" for our codes, "ERRNO" for -errno, "OK" for 0. Never NULL. */
const char *keel_err_name(int code);

/* Our message for our codes; "system error" for -errno (the caller that knows
 * it is an errno uses strerror). Never NULL. */
const char *keel_err_msg(int code);

/* True when code is one of the table's codes. */
_Bool keel_err_is_keel(int code);

#endif
