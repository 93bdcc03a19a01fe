/* replay.c: the driver that links with a fuzz target when the build is not a libFuzzer build.
 * It feeds the target every file of the corpus directories (or files) given as arguments,
 * and then, from a fixed seed, mutated copies of each (bit flips, byte changes, cuts and
 * repeats), so every `meson test` run exercises the parser on known and near-known inputs
 * under whatever sanitizers the build has. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MUTATIONS 64

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void run_one(const uint8_t *data, size_t size)
{
    /* A fresh heap copy of exactly size bytes, so ASan catches reads past the end. */
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    LLVMFuzzerTestOneInput(copy, size);
    free(copy);
}

static void mutate_and_run(const uint8_t *data, size_t size)
{
    size_t cap = size * 2 + 16;
    uint8_t *buf = malloc(cap);
    for (int m = 0; m < MUTATIONS; m++) {
        memcpy(buf, data, size);
        size_t n = size;
        int edits = 1 + (int)(next_rand() % 4);
        for (int e = 0; e < edits && n > 0; e++) {
            size_t at = next_rand() % n;
            switch (next_rand() % 5) {
            case 0: buf[at] ^= (uint8_t)(1u << (next_rand() % 8)); break;
            case 1: buf[at] = (uint8_t)next_rand(); break;
            case 2: n = at; break;                                  /* cut */
            case 3:                                                 /* repeat a tail */
                if (n + (n - at) <= cap) {
                    memcpy(buf + n, buf + at, n - at);
                    n += n - at;
                }
                break;
            default: buf[at] = "#&;=,:/\r\n0"[next_rand() % 10]; break;
            }
        }
        run_one(buf, n);
    }
    free(buf);
}

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc(len > 0 ? (size_t)len : 1);
    size_t got = fread(data, 1, (size_t)(len > 0 ? len : 0), f);
    fclose(f);
    run_one(data, got);
    mutate_and_run(data, got);
    free(data);
    return 0;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    int files = 0, errors = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) {
            perror(argv[i]);
            errors++;
            continue;
        }
        if (!S_ISDIR(sb.st_mode)) {
            errors += run_file(argv[i]);
            files++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        struct dirent *de;
        char **names = NULL;
        size_t n = 0;
        while (d && (de = readdir(d))) {
            if (de->d_name[0] == '.')
                continue;
            names = realloc(names, (n + 1) * sizeof *names);
            names[n] = malloc(strlen(argv[i]) + strlen(de->d_name) + 2);
            sprintf(names[n++], "%s/%s", argv[i], de->d_name);
        }
        if (d)
            closedir(d);
        qsort(names, n, sizeof *names, cmp);
        for (size_t k = 0; k < n; k++) {
            errors += run_file(names[k]);
            files++;
            free(names[k]);
        }
        free(names);
    }
    printf("replayed %d inputs with %d mutations each\n", files, MUTATIONS);
    return errors || files == 0 ? 1 : 0;
}
