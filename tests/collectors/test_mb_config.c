/* test_mb_config.c: the Modbus configuration file: a full example loads with its defaults
 * and read plans; each kind of mistake is refused with its JSON path. */
#include <errno.h>
#include <string.h>

#include "mb.h"
#include "tap.h"

static const char *good =
    "{\"templates\": ["
    "  {\"name\": \"gas\", \"order\": \"CDAB\", \"registers\": ["
    "    {\"code\": \"a21026\", \"address\": 0, \"type\": \"float32\", \"unit\": \"mg/m3\"},"
    "    {\"code\": \"a21002\", \"address\": 2, \"type\": \"float32\"},"
    "    {\"code\": \"a19001\", \"address\": 4, \"type\": \"int16\", \"scale\": 0.01,"
    "     \"order\": \"ABCD\"},"
    "    {\"code\": \"a00000\", \"table\": \"input\", \"address\": 100, \"type\": \"float64\","
    "     \"order\": \"DCBA\", \"offset\": 1.5}]}],"
    " \"gateways\": ["
    "  {\"name\": \"gw1\", \"tcp\": \"127.0.0.1:5020\", \"interval_ms\": 5000,"
    "   \"close_after_cycle\": true, \"devices\": ["
    "    {\"mn\": \"MN0001\", \"unit\": 1, \"template\": \"gas\"},"
    "    {\"mn\": \"MN0002\", \"unit\": 2, \"template\": \"gas\"}]},"
    "  {\"name\": \"line\", \"rtu\": \"/dev/ttyUSB0\", \"baud\": 19200, \"parity\": \"E\","
    "   \"devices\": [{\"mn\": \"MN0003\", \"unit\": 7, \"template\": \"gas\"}]}]}";

static void test_good(void)
{
    mb_config *c = NULL;
    char err[256] = "";
    int rc = mb_config_parse(good, strlen(good), "t.json", &c, err, sizeof err);
    CHECK_EQ_INT(rc, 0);
    if (rc) {
        printf("# %s\n", err);
        return;
    }
    CHECK_EQ_INT(c->ntemplates, 1);
    CHECK_EQ_INT(c->nendpoints, 2);
    CHECK_EQ_INT(c->ndevices, 3);
    const mb_template *t = &c->templates[0];
    CHECK_EQ_INT(t->nregs, 4);
    CHECK_EQ_INT(t->nblocks, 2); /* holding 0..4 in one read, input 100..103 in another */
    CHECK_EQ_INT(t->blocks[0].count, 5);
    CHECK_EQ_INT(t->blocks[1].table, MB_INPUT);
    CHECK_EQ_INT(t->regs[0].order, MB_CDAB); /* the template's order */
    CHECK_EQ_INT(t->regs[2].order, MB_ABCD); /* the register's own */
    CHECK(t->regs[2].scale == 0.01);
    CHECK(t->regs[3].offset == 1.5);
    const mb_endpoint *e = &c->endpoints[0];
    CHECK_EQ_STR(e->host, "127.0.0.1");
    CHECK_EQ_INT(e->port, 5020);
    CHECK_EQ_INT(e->interval_ms, 5000);
    CHECK_EQ_INT(e->response_timeout_ms, 1000);
    CHECK(e->close_after_cycle);
    CHECK(e->devices[1].tpl == t);
    const mb_endpoint *l = &c->endpoints[1];
    CHECK_EQ_INT(l->kind, MB_RTU);
    CHECK_EQ_INT(l->baud, 19200);
    CHECK_EQ_INT(l->parity, 'E');
    CHECK_EQ_INT(l->devices[0].unit_id, 7);
    mb_config_free(c);
}

/* Replaces the first occurrence of from in good by to, parses, and checks the message. */
static void bad(const char *from, const char *to, const char *want)
{
    char text[4096];
    const char *p = strstr(good, from);
    if (!p) {
        CHECK(!"pattern in the example");
        return;
    }
    snprintf(text, sizeof text, "%.*s%s%s", (int)(p - good), good, to, p + strlen(from));
    mb_config *c = NULL;
    char err[256] = "";
    int rc = mb_config_parse(text, strlen(text), "t.json", &c, err, sizeof err);
    CHECK_EQ_INT(rc, -EINVAL);
    CHECK(c == NULL);
    int has = strstr(err, want) != NULL;
    tap_ok(has, want, __FILE__, __LINE__);
    if (!has)
        printf("#   message: %s\n", err);
}

static void test_bad(void)
{
    bad("\"float32\", \"unit\"", "\"float31\", \"unit\"", "$.templates[0].registers[0]: \"type\"");
    bad("\"order\": \"CDAB\"", "\"order\": \"ACBD\"", "$.templates[0]: \"order\"");
    bad("\"address\": 2,", "\"address\": 70000,", "registers[1]: \"address\" must be");
    bad("\"address\": 2,", "\"address\": 2.5,", "whole number");
    bad("\"unit\": 2,", "\"unit\": 1,", "$.gateways[0].devices[1]: unit id 1 is already used");
    bad("\"mn\": \"MN0002\"", "\"mn\": \"MN0001\"", "MN MN0001 is configured twice");
    bad("\"template\": \"gas\"}]}", "\"template\": \"gaz\"}]}", "no template named 'gaz'");
    bad("127.0.0.1:5020", "127.0.0.1", "is not host:port");
    bad("127.0.0.1:5020", "127.0.0.1:99999", "bad port");
    bad("\"tcp\": \"127.0.0.1:5020\"", "\"rtu\": \"/dev/x\", \"tcp\": \"127.0.0.1:5020\"",
        "exactly one of");
    bad("\"parity\": \"E\"", "\"parity\": \"X\"", "\"parity\"");
    bad("\"code\": \"a21002\"", "\"code\": \"a21026\"", "appears twice");
    bad("\"scale\": 0.01", "\"scale\": 0", "must not be 0");
    bad("\"interval_ms\": 5000", "\"interval_ms\": 5", "\"interval_ms\" must be");
    bad("\"mn\": \"MN0003\"", "\"mn\": \"MN 3\"", "character an MN cannot have");
    bad("\"unit\": 7", "\"unit\": 250", "\"unit\" must be"); /* RTU: 1-247 */
    bad("\"name\": \"line\"", "\"name\": \"gw1\"", "gateway name 'gw1' is used twice");
    bad("{\"templates\": [", "{\"templates\": 3, \"x\": [", "$.templates: must be");
    bad("\"close_after_cycle\": true", "\"close_after_cycle\": 1", "true or false");

    mb_config *c = NULL;
    char err[256];
    const char *broken = "{\n\"templates\": [\n{,}]}";
    CHECK_EQ_INT(mb_config_parse(broken, strlen(broken), "x.json", &c, err, sizeof err),
                 -EINVAL);
    CHECK(strstr(err, "x.json:3: not valid JSON") != NULL);
    /* A mistake is named by its line too: the line its object (or member) starts on. */
    const char *lines = "{\n"
                        " \"templates\": [{\"name\": \"t\", \"registers\": [\n"
                        "   {\"code\": \"a\", \"address\": 0, \"type\": \"int16\"}]}],\n"
                        " \"gateways\": [\n"
                        "  {\"name\": \"g\", \"tcp\": \"h:1\",\n"
                        "   \"devices\": [\n"
                        "    {\"mn\": \"A\", \"unit\": 1, \"template\": \"t\"},\n"
                        "    {\"mn\": \"B\", \"unit\": 999, \"template\": \"t\"}]}]}";
    CHECK_EQ_INT(mb_config_parse(lines, strlen(lines), "x.json", &c, err, sizeof err), -EINVAL);
    CHECK(strstr(err, "x.json:8: $.gateways[0].devices[1]: \"unit\"") != NULL);
    char other[1024];
    snprintf(other, sizeof other, "%s", lines);
    memcpy(strstr(other, "int16"), "int17", 5);
    CHECK_EQ_INT(mb_config_parse(other, strlen(other), "x.json", &c, err, sizeof err), -EINVAL);
    CHECK(strstr(err, "x.json:3: $.templates[0].registers[0]: \"type\"") != NULL);
    snprintf(other, sizeof other, "%s", lines);
    memcpy(strstr(other, "h:1"), "h:0", 3);
    CHECK_EQ_INT(mb_config_parse(other, strlen(other), "x.json", &c, err, sizeof err), -EINVAL);
    CHECK(strstr(err, "x.json:5: $.gateways[0]: \"tcp\"") != NULL);
    if (!strstr(err, "x.json:5:"))
        printf("#   message: %s\n", err);
    CHECK_EQ_INT(mb_config_load_file("/nonexistent/modbus.json", &c, err, sizeof err), -ENOENT);
    CHECK(strstr(err, "cannot open") != NULL);
}

int main(void)
{
    test_good();
    test_bad();
    return tap_done();
}
