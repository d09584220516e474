/*
 * replay.c: a plain main for a fuzz harness: runs LLVMFuzzerTestOneInput
 * once on every file named (a directory: every file in it). No fuzzer
 * runtime; `make test` links it with each harness to replay the committed
 * corpus, so an input that ever crashed fails CI if it crashes again.
 *
 *   fuzz_replay_<target> FILE|DIR...
 *
 * A failed property aborts (so does a sanitizer report under SAN=1); on
 * success the last line is "N passed, 0 failed".
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#define REPLAY_FILE_BYTES_MAX (16u * 1024u * 1024u)
#define REPLAY_PATH_BYTES_MAX 4096u

static int replay_file(const char *path, unsigned *count)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		perror(path);
		return -1;
	}
	uint8_t *buf = malloc(REPLAY_FILE_BYTES_MAX);
	if (buf == NULL) {
		fclose(f);
		return -1;
	}
	size_t n = fread(buf, 1, REPLAY_FILE_BYTES_MAX, f);
	int bad = ferror(f) || !feof(f);
	fclose(f);
	if (bad) {
		fprintf(stderr, "%s: unreadable or over %u bytes\n", path,
			REPLAY_FILE_BYTES_MAX);
		free(buf);
		return -1;
	}
	/* A copy of exactly n bytes, so ASan sees reads past the input. */
	uint8_t *input = malloc(n > 0 ? n : 1);
	if (input == NULL) {
		free(buf);
		return -1;
	}
	memcpy(input, buf, n);
	free(buf);
	(void)LLVMFuzzerTestOneInput(input, n);
	free(input);
	(*count)++;
	return 0;
}

static int replay_path(const char *path, unsigned *count)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		perror(path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_file(path, count);
	DIR *dir = opendir(path);
	if (dir == NULL) {
		perror(path);
		return -1;
	}
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(dir)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char sub[REPLAY_PATH_BYTES_MAX];
		int len = snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		if (len < 0 || (size_t)len >= sizeof(sub) ||
		    replay_file(sub, count) != 0)
			rc = -1;
	}
	closedir(dir);
	return rc;
}

int main(int argc, char **argv)
{
	unsigned count = 0;
	int failed = 0;
	for (int i = 1; i < argc; i++)
		if (replay_path(argv[i], &count) != 0)
			failed++;
	printf("%u passed, %d failed\n", count, failed);
	return failed ? 1 : 0;
}
