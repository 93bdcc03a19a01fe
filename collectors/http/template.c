/* template.c: URLs, headers and bodies with placeholders. A platform's URL names the
 * facility or device and the time window ("/facilities/{facility}/hourly?begin={from}"),
 * and a POST body often carries the same in JSON; one expander serves all three. A
 * placeholder is a brace, a name of letters, digits and underscores, and a brace; any other
 * brace is text, so a JSON body is written as it is sent. Values substituted into a URL are
 * percent-encoded (a "+08:00" zone must not turn into a space). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "http_src.h"

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_';
}

static bool unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

int http_template_expand(const char *tmpl, bool url_encode, http_var_fn fn, void *arg,
                         char *out, size_t cap, char *err, size_t errlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    if (cap == 0)
        return -ERANGE;
    for (const char *p = tmpl; *p;) {
        const char *q = p + 1;
        if (*p == '{')
            while (name_char(*q))
                q++;
        if (*p != '{' || q == p + 1 || *q != '}') { /* text */
            if (o + 1 >= cap)
                return -ERANGE;
            out[o++] = *p++;
            continue;
        }
        const char *v = fn(arg, p + 1, (size_t)(q - p - 1));
        if (!v) {
            if (err)
                snprintf(err, errlen, "unknown placeholder {%.*s}", (int)(q - p - 1), p + 1);
            return -ENOENT;
        }
        for (; *v; v++) {
            unsigned char c = (unsigned char)*v;
            bool enc = url_encode && !unreserved(c);
            if (o + (enc ? 3 : 1) >= cap)
                return -ERANGE;
            if (enc) {
                out[o++] = '%';
                out[o++] = hex[c >> 4];
                out[o++] = hex[c & 15];
            } else {
                out[o++] = (char)c;
            }
        }
        p = q + 1;
    }
    out[o] = '\0';
    return (int)o;
}
