/* replay.c - runs a fuzz target over every file of its saved corpus, so inputs that once
 * crashed (and the seeds) are exercised by the ordinary test suite and the sanitizer build. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return -1;
    }
    uint8_t *data = NULL;
    size_t len = 0, alloc = 0;
    for (;;) {
        if (len == alloc) {
            alloc = alloc ? alloc * 2 : 65536;
            uint8_t *n = realloc(data, alloc);
            if (!n) {
                free(data);
                fclose(f);
                return -1;
            }
            data = n;
        }
        size_t got = fread(data + len, 1, alloc - len, f);
        if (got == 0)
            break;
        len += got;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(data, len);
    free(data);
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    DIR *d = opendir(argv[1]);
    if (!d) {
        /* A target without a saved corpus must not pass by running nothing. */
        fprintf(stderr, "replay: no corpus directory %s\n", argv[1]);
        return 1;
    }
    int n = 0, rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", argv[1], e->d_name);
        if (replay_file(path) < 0)
            rc = 1;
        n++;
    }
    closedir(d);
    if (n == 0) {
        fprintf(stderr, "replay: corpus %s is empty\n", argv[1]);
        return 1;
    }
    printf("replayed %d inputs\n", n);
    return rc;
}
