/*
 * celerd: the celer mail transfer agent daemon.
 *
 *   celerd [-c configfile] [-d] [-h] [-t|--check-config] [--dump-config]
 *
 * -c names the configuration (default /etc/celer/celer.conf); -d keeps the
 * daemon in the foreground with its log on stderr; -t loads and checks the
 * configuration, prints every problem and exits non-zero on any error (like
 * Momentum's validate_config); --dump-config prints the effective
 * configuration after includes and fallback.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/daemon.h"
#include "conf/conf.h"
#include "core/buf.h"

#define CELERD_DEFAULT_CONFIG "/etc/celer/celer.conf"

static void
celerd_usage(FILE *f)
{
    fprintf(f,
            "celerd %s: the celer mail transfer agent\n"
            "usage: celerd [-c configfile] [-d] [-h] [-t|--check-config] [--dump-config]\n"
            "  -c FILE          configuration file (default %s)\n"
            "  -d               stay in the foreground; log to stderr as well\n"
            "  -t, --check-config  check the configuration, print every problem, exit 1 on errors\n"
            "  --dump-config    print the effective configuration after includes and fallback\n"
            "  -h, --help       this text\n",
            CELER_VERSION, CELERD_DEFAULT_CONFIG);
}

static int
celerd_check(const char *path, bool dump)
{
    struct conf_diags diags;
    struct conf *c;

    conf_diags_init(&diags);
    c = conf_load(path, &diags);
    conf_diags_print(&diags, stderr);
    if (c == NULL) {
        fprintf(stderr, "%s: %u error%s, %u warning%s\n", path, diags.errors,
                diags.errors == 1 ? "" : "s", diags.warnings, diags.warnings == 1 ? "" : "s");
        conf_diags_release(&diags);
        return 1;
    }
    if (dump) {
        struct buf out;

        buf_init(&out, BUF_UNLIMITED);
        conf_dump(c, &out);
        fwrite(buf_data(&out).ptr, 1, buf_len(&out), stdout);
        buf_release(&out);
    } else {
        fprintf(stderr, "%s: configuration OK (%u warning%s)\n", path, diags.warnings,
                diags.warnings == 1 ? "" : "s");
    }
    conf_diags_release(&diags);
    conf_unref(c);
    return 0;
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"check-config", no_argument, NULL, 't'},
        {"dump-config", no_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct daemon_opts opts = {.config_path = CELERD_DEFAULT_CONFIG};
    bool check = false, dump = false;
    int ch;

    while ((ch = getopt_long(argc, argv, "c:dht", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            opts.config_path = optarg;
            break;
        case 'd':
            opts.foreground = true;
            break;
        case 't':
            check = true;
            break;
        case 'D':
            dump = true;
            break;
        case 'h':
            celerd_usage(stdout);
            return 0;
        default:
            celerd_usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "celerd: unexpected argument \"%s\"\n", argv[optind]);
        celerd_usage(stderr);
        return 2;
    }
    if (check || dump) {
        return celerd_check(opts.config_path, dump);
    }
    return daemon_main(&opts);
}
