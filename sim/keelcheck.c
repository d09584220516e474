/*
 * keelcheck: decides whether histories are linearizable.
 *
 *   keelcheck [--model auto|register|kv|keel] [--timeout-ms N] [--html DIR]
 *             [--repeat N] FILE...
 *
 * Prints one line per file: "FILE VERDICT ops=N check_ms=T", then for an
 * illegal history "key=TOKEN" (and "html=PATH" with --html), for an unknown
 * one "why=timeout|memory-limit". --repeat N parses and checks each file N
 * times and prints the medians, with parse_ms (for benchmarks).
 *
 * Exit status: 1 if any history is illegal; else 2 if any input was
 * unreadable or malformed (message on stderr with file, line and reason) or
 * a flag was bad; else 3 if any was unknown; else 0.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../core/err.h"
#include "check.h"

#define FILE_BYTES_MAX (1ull << 31) /* one input file */
#define REPEAT_MAX 1000
#define TIMEOUT_MS_MAX (7ull * 24 * 3600 * 1000)

struct opts {
	enum check_model model;
	uint64_t timeout_ms;
	const char *html_dir;
	unsigned repeat;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: keelcheck [--model auto|register|kv|keel] [--timeout-ms N] "
		   "[--html DIR] [--repeat N] FILE...\n");
}

/* Wall time; with --repeat (benchmarks) the thread's CPU time, which a
 * busy shared machine disturbs less. */
static double now_ms(bool cpu)
{
	struct timespec ts;
	clock_gettime(cpu ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int read_file(const char *path, char **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return -errno;
	size_t cap = 1 << 16;
	size_t n = 0;
	char *b = malloc(cap);
	int rc = 0;
	while (b != NULL) {
		if (n == cap) {
			if (cap >= FILE_BYTES_MAX) {
				rc = KEEL_ETOOBIG;
				break;
			}
			char *nb = realloc(b, cap * 2);
			if (nb == NULL)
				break;
			b = nb;
			cap *= 2;
		}
		size_t got = fread(b + n, 1, cap - n, f);
		n += got;
		if (got == 0) {
			if (ferror(f))
				rc = -EIO;
			break;
		}
	}
	fclose(f);
	if (b == NULL && rc == 0)
		rc = KEEL_ENOMEM;
	if (rc != 0) {
		free(b);
		return rc;
	}
	*buf = b;
	*len = n;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a;
	double y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

/* Reports an op the model lacks; returns 2. */
static int model_mismatch(const char *path, const struct check_history *h, enum check_model m)
{
	for (uint32_t i = 0; i < h->op_count; i++) {
		enum check_kind k = (enum check_kind)h->ops[i].kind;
		if (!check_model_allows(m, k)) {
			fprintf(stderr, "keelcheck: %s:%u: operation %s is not in model %s\n", path,
				h->ops[i].line, check_kind_name(k), check_model_name(m));
			return 2;
		}
	}
	fprintf(stderr, "keelcheck: %s: history does not fit model %s\n", path,
		check_model_name(m));
	return 2;
}

static void print_key(const struct check_history *h, uint32_t key)
{
	size_t len;
	const uint8_t *p = check_str_get(&h->keys, key, &len);
	size_t need = check_token_encode(NULL, 0, (struct check_str){ p, len });
	char *tok = malloc(need + 1);
	if (tok == NULL)
		return;
	check_token_encode(tok, need + 1, (struct check_str){ p, len });
	printf(" key=%s", tok);
	free(tok);
}

static int write_html(const struct opts *o, const char *path, struct check_history *h,
		      const struct check_result *res)
{
	if (mkdir(o->html_dir, 0777) != 0 && errno != EEXIST) {
		fprintf(stderr, "keelcheck: %s: %s\n", o->html_dir, strerror(errno));
		return 2;
	}
	size_t n = strlen(o->html_dir) + strlen(base_name(path)) + 8;
	char *out = malloc(n);
	if (out == NULL)
		return 2;
	snprintf(out, n, "%s/%s.html", o->html_dir, base_name(path));
	int rc = check_html_write(h, res, path, out);
	if (rc != 0)
		fprintf(stderr, "keelcheck: %s: %s\n", out, strerror(-rc));
	else
		printf(" html=%s", out);
	free(out);
	return rc == 0 ? 0 : 2;
}

/* Checks one file; returns the exit status it asks for (0, 1, 2 or 3). */
static int check_file(const struct opts *o, const char *path)
{
	char *buf = NULL;
	size_t len = 0;
	int rc = read_file(path, &buf, &len);
	if (rc != 0) {
		fprintf(stderr, "keelcheck: %s: cannot read: %s\n", path,
			rc == KEEL_ETOOBIG ? "file too large" : strerror(-rc));
		return 2;
	}
	double parse_ms[REPEAT_MAX], check_ms[REPEAT_MAX];
	struct check_history h;
	struct check_result res = { 0 };
	int status = 0;
	for (unsigned i = 0; i < o->repeat && status == 0; i++) {
		struct check_parse_error perr;
		if (i > 0) {
			check_result_free(&res);
			check_history_free(&h);
		}
		check_history_init(&h);
		double t0 = now_ms(o->repeat > 1);
		rc = check_parse(&h, buf, len, &perr);
		double t1 = now_ms(o->repeat > 1);
		if (rc != 0) {
			if (rc == KEEL_EMALFORMED)
				fprintf(stderr, "keelcheck: %s:%u: %s\n", path, perr.line, perr.reason);
			else
				fprintf(stderr, "keelcheck: %s: %s\n", path, keel_err_msg(rc));
			status = 2;
			break;
		}
		rc = check_run(&h, o->model, &(struct check_limits){ .timeout_ms = o->timeout_ms },
			       &res);
		double t2 = now_ms(o->repeat > 1);
		if (rc == KEEL_EINVAL) {
			status = model_mismatch(path, &h, o->model == CHECK_MODEL_AUTO ?
							       check_model_for(&h) : o->model);
			break;
		}
		if (rc != 0) {
			fprintf(stderr, "keelcheck: %s: %s\n", path, keel_err_msg(rc));
			status = 2;
			break;
		}
		parse_ms[i] = t1 - t0;
		check_ms[i] = t2 - t1;
	}
	free(buf);
	if (status == 0) {
		printf("%s %s ops=%u check_ms=%.3f", path, check_verdict_name(res.verdict),
		       h.op_count, median(check_ms, o->repeat));
		if (o->repeat > 1)
			printf(" parse_ms=%.3f", median(parse_ms, o->repeat));
		if (res.verdict == CHECK_VERDICT_ILLEGAL) {
			print_key(&h, res.key);
			status = 1;
			if (o->html_dir != NULL && write_html(o, path, &h, &res) != 0)
				status = 1;
		} else if (res.verdict == CHECK_VERDICT_UNKNOWN) {
			/* One token: spaces in the reason become dashes. */
			const char *why = res.unknown_why ? res.unknown_why : "limit";
			printf(" why=");
			for (; *why; why++)
				putchar(*why == ' ' ? '-' : *why);
			status = 3;
		}
		printf("\n");
		fflush(stdout);
	}
	check_result_free(&res);
	check_history_free(&h);
	return status;
}

static bool parse_count(const char *s, uint64_t max, uint64_t *out)
{
	if (s == NULL || *s == '\0')
		return false;
	uint64_t v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > max)
			return false;
	}
	*out = v;
	return true;
}

/* Parses flags; returns the index of the first FILE or -1 after an error. */
static int parse_flags(int argc, char **argv, struct opts *o)
{
	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0)
			return i + 1;
		if (a[0] != '-' || a[1] == '\0')
			return i;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		}
		const char *val = strchr(a, '=');
		size_t name_len = val ? (size_t)(val - a) : strlen(a);
		bool takes = false;
		static const char *const flags[] = { "--model", "--timeout-ms", "--html", "--repeat" };
		int which = -1;
		for (int f = 0; f < 4; f++)
			if (strlen(flags[f]) == name_len && strncmp(a, flags[f], name_len) == 0)
				which = f;
		if (which < 0) {
			fprintf(stderr, "keelcheck: unknown flag %s\n", a);
			return -1;
		}
		takes = val == NULL;
		if (val != NULL)
			val++;
		else if (takes && i + 1 < argc)
			val = argv[++i];
		if (val == NULL) {
			fprintf(stderr, "keelcheck: %s needs a value\n", flags[which]);
			return -1;
		}
		uint64_t n;
		if (which == 0) {
			enum check_model m;
			for (m = CHECK_MODEL_AUTO; m <= CHECK_MODEL_KEEL; m++)
				if (strcmp(val, check_model_name(m)) == 0)
					break;
			if (m > CHECK_MODEL_KEEL) {
				fprintf(stderr, "keelcheck: --model: expected auto, register, kv or keel, got '%s'\n", val);
				return -1;
			}
			o->model = m;
		} else if (which == 1) {
			if (!parse_count(val, TIMEOUT_MS_MAX, &n) || n == 0) {
				fprintf(stderr, "keelcheck: --timeout-ms: expected an integer from 1 to %llu, got '%s'\n",
					(unsigned long long)TIMEOUT_MS_MAX, val);
				return -1;
			}
			o->timeout_ms = n;
		} else if (which == 2) {
			if (*val == '\0') {
				fprintf(stderr, "keelcheck: --html: expected a directory\n");
				return -1;
			}
			o->html_dir = val;
		} else {
			if (!parse_count(val, REPEAT_MAX, &n) || n == 0) {
				fprintf(stderr, "keelcheck: --repeat: expected an integer from 1 to %d, got '%s'\n",
					REPEAT_MAX, val);
				return -1;
			}
			o->repeat = (unsigned)n;
		}
	}
	return i;
}

int main(int argc, char **argv)
{
	struct opts o = { .model = CHECK_MODEL_AUTO, .timeout_ms = 0, .repeat = 1 };
	int first = parse_flags(argc, argv, &o);
	if (first < 0) {
		usage(stderr);
		return 2;
	}
	if (first >= argc) {
		fprintf(stderr, "keelcheck: no FILE given\n");
		usage(stderr);
		return 2;
	}
	bool illegal = false, bad = false, unknown = false;
	for (int i = first; i < argc; i++) {
		int s = check_file(&o, argv[i]);
		illegal |= s == 1;
		bad |= s == 2;
		unknown |= s == 3;
	}
	return illegal ? 1 : bad ? 2 : unknown ? 3 : 0;
}
