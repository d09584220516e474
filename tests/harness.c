/* harness.c: registry and runner for harness.h. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>

#define HARNESS_TESTS_MAX 1024

static struct {
	const char *name;
	harness_fn fn;
} tests[HARNESS_TESTS_MAX];
static int test_count;
static jmp_buf test_jmp;

void harness_register(const char *name, harness_fn fn)
{
	if (test_count == HARNESS_TESTS_MAX) {
		fprintf(stderr, "harness: more than %d tests\n", HARNESS_TESTS_MAX);
		exit(2);
	}
	tests[test_count].name = name;
	tests[test_count].fn = fn;
	test_count++;
}

void harness_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	fprintf(stdout, "    %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
	longjmp(test_jmp, 1);
}

static bool selected(const char *name, int argc, char **argv)
{
	if (argc < 2)
		return true;
	for (int i = 1; i < argc; i++)
		if (strstr(name, argv[i]) != NULL)
			return true;
	return false;
}

/* Runs one test; returns whether it passed. Kept apart from main's loop so
 * no local of the loop lives across setjmp. */
static bool run_one(int i)
{
	if (setjmp(test_jmp) != 0) {
		printf("FAIL %s\n", tests[i].name);
		return false;
	}
	tests[i].fn();
	printf("ok   %s\n", tests[i].name);
	return true;
}

int main(int argc, char **argv)
{
	int passed = 0;
	int failed = 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 0; i < test_count; i++) {
		if (!selected(tests[i].name, argc, argv))
			continue;
		if (run_one(i))
			passed++;
		else
			failed++;
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
