/* Settings: defaults, INI files with errors that name file and line, flags, checks. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "tap.h"

static char path[] = "/tmp/plume-test-config-XXXXXX";

static void write_file(const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

int main(void)
{
    engine_config cfg;
    char err[256] = "";
    int fd = mkstemp(path);
    close(fd);

    engine_config_defaults(&cfg);
    CHECK_EQ_STR(cfg.db_dir, "./plume-data");
    CHECK_EQ_STR(cfg.hj212_listen, "127.0.0.1:9212");
    CHECK_EQ_STR(cfg.query_listen, "127.0.0.1:6390");
    CHECK_EQ_INT(cfg.retention_s[STORAGE_IV_RTD], 30 * 86400);
    CHECK_EQ_INT(cfg.retention_s[STORAGE_IV_HOUR], 0);
    CHECK_EQ_INT(cfg.hj212_idle_timeout_s, 900);
    CHECK(!cfg.hj212_open);
    CHECK_EQ_INT(engine_config_check(&cfg, err, sizeof err), 0);

    write_file("; comment\n[storage]\ndir = /var/lib/plume\nretention_min = 2h\n"
               "[hj212]\nopen = yes\nmax_connections = 150000\n");
    CHECK_EQ_INT(engine_config_load(&cfg, path, err, sizeof err), 0);
    CHECK_EQ_STR(cfg.db_dir, "/var/lib/plume");
    CHECK_EQ_INT(cfg.retention_s[STORAGE_IV_MIN], 7200);
    CHECK(cfg.hj212_open);
    CHECK_EQ_INT(cfg.hj212_max_connections, 150000);

    /* An unknown setting and a bad value are named with their line. */
    write_file("[storage]\ndir = x\n[hj212]\nmax_connectionz = 5\n");
    CHECK_EQ_INT(engine_config_load(&cfg, path, err, sizeof err), -EINVAL);
    CHECK(strstr(err, ":4:") != NULL);
    CHECK(strstr(err, "max_connectionz") != NULL);
    write_file("[hj212]\n\nidle_timeout = soon\n");
    CHECK_EQ_INT(engine_config_load(&cfg, path, err, sizeof err), -EINVAL);
    CHECK(strstr(err, ":3:") != NULL && strstr(err, "duration") != NULL);
    CHECK(engine_config_load(&cfg, "/nonexistent/plume.ini", err, sizeof err) < 0);
    CHECK(strstr(err, "/nonexistent/plume.ini") != NULL);

    /* Flags use the same names; '-' may stand for '_'. */
    engine_config_defaults(&cfg);
    CHECK_EQ_INT(engine_config_set(&cfg, "query.max-clients", "7", err, sizeof err), 0);
    CHECK_EQ_INT(cfg.query_max_clients, 7);
    CHECK_EQ_INT(engine_config_set(&cfg, "query.nope", "7", err, sizeof err), -ENOENT);
    CHECK_EQ_INT(engine_config_set(&cfg, "noseparator", "7", err, sizeof err), -ENOENT);
    CHECK_EQ_INT(engine_config_set(&cfg, "query.max_clients", "-1", err, sizeof err), -EINVAL);

    /* Checks across settings. */
    CHECK_EQ_INT(engine_config_set(&cfg, "query.listen", "0.0.0.0:6390", err, sizeof err), 0);
    CHECK_EQ_INT(engine_config_check(&cfg, err, sizeof err), -EINVAL);
    CHECK(strstr(err, "query.token") != NULL);
    engine_config_set(&cfg, "query.token", "s3cret", err, sizeof err);
    CHECK_EQ_INT(engine_config_check(&cfg, err, sizeof err), 0);
    engine_config_set(&cfg, "hj212.crc_policy", "maybe", err, sizeof err);
    CHECK_EQ_INT(engine_config_check(&cfg, err, sizeof err), -EINVAL);

    /* The printed configuration reads back to the same settings. */
    engine_config_defaults(&cfg);
    engine_config_set(&cfg, "storage.dir", "/srv/data", err, sizeof err);
    FILE *f = fopen(path, "w");
    engine_config_print(&cfg, f);
    fclose(f);
    engine_config back;
    engine_config_defaults(&back);
    CHECK_EQ_INT(engine_config_load(&back, path, err, sizeof err), 0);
    CHECK(memcmp(&back, &cfg, sizeof cfg) == 0);

    unlink(path);
    return tap_done();
}
