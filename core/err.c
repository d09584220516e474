/* err.c: names and messages for the codes in err.h. */
#include "err.h"

const char *keel_err_name(int code)
{
	switch (code) {
	case 0:
		return "OK";
#define KEEL_ERR_NAME(name, value, msg) \
	case value:                     \
		return #name;
		KEEL_ERR_TABLE(KEEL_ERR_NAME)
#undef KEEL_ERR_NAME
	default:
		return "ERRNO";
	}
}

const char *keel_err_msg(int code)
{
	switch (code) {
	case 0:
		return "success";
#define KEEL_ERR_MSG(name, value, msg) \
	case value:                    \
		return msg;
		KEEL_ERR_TABLE(KEEL_ERR_MSG)
#undef KEEL_ERR_MSG
	default:
		return "system error";
	}
}

_Bool keel_err_is_keel(int code)
{
	switch (code) {
#define KEEL_ERR_IS(name, value, msg) case value:
		KEEL_ERR_TABLE(KEEL_ERR_IS)
#undef KEEL_ERR_IS
		return 1;
	default:
		return 0;
	}
}
