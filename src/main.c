/* main.c - command line, the capture loop and exit status (0 done or interrupted, 1
 * anomalies at or above --fail-on, 2 usage, 3 capture, key log or output error). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "capture.h"
#include "html.h"
#include "filter.h"
#include "esc.h"
#include "dump.h"
#include "iflist.h"
#include "jsonx.h"
#include "keyfollow.h"
#include "keylog.h"
#include "log.h"
#include "mem.h"
#include "nodecache.h"
#include "pcapng.h"
#include "reasm.h"
#include "run.h"
#include "reorder.h"
#include "report.h"
#include "rules.h"
#include "select.h"
#include "session.h"
#include "svg.h"
#include "summarize.h"
#include "w_html.h"
#include "w_json.h"
#include "w_lines.h"
#include "w_text.h"
#include "workers.h"

#define MAIN_MAX_FILES 256
#define MAIN_MAX_PORTS 64
#define MAIN_MAX_DOMAINS 64
/* Live: how long a closed connection waits for its trailing packets before it is written. */
#define MAIN_LIVE_LINGER_US 750000
/* Bytes of each pcapng input searched for Decryption Secrets Blocks: editcap
 * --inject-secrets writes them ahead of the packets, so the start of the file is enough. */
#define MAIN_SECRETS_SCAN ((size_t)64 << 20)

enum {
    OPT_PORTS = 256,
    OPT_JSON,
    OPT_IDLE,
    OPT_SYN_TIMEOUT,
    OPT_ORDER,
    OPT_MAX_SESSIONS,
    OPT_VERIFY,
    OPT_SECRETS,
    OPT_FAIL_ON,
    OPT_EML,
    OPT_BANNER_DELAY,
    OPT_SLOW_REPLY,
    OPT_LOCAL_DOMAIN,
    OPT_FEED_CHUNK,
    OPT_NO_HASH,
    OPT_MAX_TRANSCRIPT,
    OPT_VERSION,
    OPT_WORKERS,
    OPT_TLS_KEYLOG,
    OPT_HTML,
    OPT_SVG,
    OPT_LOCAL_DOMAINS,
    OPT_TRUSTED_NET,
    OPT_LINES,
    OPT_LINES_STYLE,
    OPT_MIN_SEVERITY,
    OPT_ANOMALY,
    OPT_ADDRESS,
    OPT_DOMAIN,
};

struct main_opts {
    const char *iface;
    const char *files[MAIN_MAX_FILES];
    size_t nfiles;
    long long count;
    int snaplen;
    int snaplen_set;
    int syn_timeout_set;
    int buffer_kib;
    int promisc;
    const char *user;
    uint16_t ports[MAIN_MAX_PORTS];
    size_t nports;
    const char *json_path;
    int quiet;
    double idle_s;
    int order_end; /* --order end: reports as sessions end (offline too); live always */
    double syn_timeout_s;
    long long max_sessions;
    int verify;
    int show_secrets;
    int fail_on;
    const char *eml_dir;
    int eml_fd; /* eml_dir, opened once at start-up */
    double banner_delay_ms;
    double slow_reply_ms;
    const char *domains[MAIN_MAX_DOMAINS];
    size_t ndomains;
    struct rule_net nets[MAIN_MAX_DOMAINS];
    size_t nnets;
    long long feed_chunk;
    int hash;
    long long max_transcript;
    long long workers;
    const char *tls_keylog;
    struct keylog *keylog;       /* --tls-keylog and the inputs' own secrets; NULL when none */
    struct keyfollow *keyfollow; /* live: --tls-keylog read again as it grows */
    char *filter;
    const char *html_path;      /* --html FILE */
    const char *svg_dir;        /* --svg DIR */
    int svg_fd;                 /* svg_dir, opened once at start-up */
    int lines;                  /* --lines: 1 + enum lines_style once decided; 0: the text view */
    int lines_style;            /* --lines-style: -1 auto (aligned on a terminal, else TSV) */
    struct filter print_filter; /* --min-severity, --anomaly, --address, --domain */
    const char *dump_path;      /* -w */
    uint64_t dump_max_bytes;    /* -C */
    unsigned dump_max_files;    /* -W */
};

/* 1: interrupted (SIGINT, SIGTERM); 2: a live worker told that another one ended. */
static volatile sig_atomic_t main_stop;
static struct cap *main_cap;

static void
main_on_signal(int sig)
{
    main_stop = sig == WRK_SIG_PEER_ENDED && main_stop != 1 ? 2 : 1;
    if (main_cap)
        cap_break(main_cap);
}

static void
main_usage(FILE *f)
{
    fputs("usage: smtpsniff (-i IFACE | -r FILE [-r FILE...]) [options] [BPF filter]\n"
          "       smtpsniff summarize [--json | --lines [--lines-style S]] [--html FILE]\n"
          "                 [--svg DIR] [--join-window MS] [filters] REPORT.ndjson...\n"
          "                      the closing summary of NDJSON reports ('-' = stdin), each\n"
          "                      file one sensor: a session two sensors saw (same Community\n"
          "                      ID, starts within MS, default 1000) counts once; --json\n"
          "                      writes it as one NDJSON line; --lines, --html, --svg and\n"
          "                      the print filters as below, for all inputs, by start time\n"
          "                      (a joined session once, the first input's record); exit 3\n"
          "                      for an unreadable file\n"
          "  -i IFACE            capture live on IFACE\n"
          "  -r FILE             read a pcap or pcapng file ('-' = stdin), gzip-compressed or\n"
          "                      not; repeatable, files are merged in timestamp order\n"
          "  -c N                stop after N packets\n"
          "  -s SNAPLEN          live snapshot length (default 262144)\n"
          "  -B KIB              live capture buffer size in KiB\n"
          "  -p                  do not put the interface in promiscuous mode\n"
          "  -D                  list the interfaces that can be captured on, then exit\n"
          "  -w FILE             also write the packets read (those the filter let through)\n"
          "                      to the pcap file FILE, live or from files\n"
          "  -C SIZE             with -w: start a new file (FILE1, FILE2...) once one is\n"
          "                      larger than SIZE million bytes (suffix k, m, g: KiB, MiB, GiB)\n"
          "  -W N                with -C: at most N files, FILE0..FILE<N-1>, reused in a ring\n"
          "  -Z USER             drop privileges to USER after opening the interface, the\n"
          "                      capture files and every output file (first -w file included);\n"
          "                      clears the capability bounding set and sets no_new_privs\n"
          "  -n                  accepted for tcpdump compatibility (names are never resolved)\n"
          "  -v                  accepted for tcpdump compatibility (no effect)\n",
          f);
    /* Two strings: C99 compilers need not take one longer than 4095 characters. */
    fputs("  --ports LIST        mail ports analysed (default 25,465,587,2525); with a BPF\n"
          "                      filter, connections on other ports it lets through are\n"
          "                      analysed only when their content is SMTP (220 greeting,\n"
          "                      EHLO/HELO)\n"
          "  --json FILE         write NDJSON reports to FILE ('-' = stdout)\n"
          "  -q, --quiet         no text view on stdout; live, no \"listening on\" line and no\n"
          "                      packet counts on stderr; no progress line\n",
          f);
    fputs("  --lines             one line per transaction on stdout instead of the text view\n"
          "                      (a session without one gets a line too): Zeek smtp.log TSV\n"
          "                      (zeek-cut reads it), aligned columns on a terminal\n"
          "  --lines-style S     tsv or aligned whatever stdout is (implies --lines)\n"
          "  --min-severity SEV  print only sessions with an anomaly of severity SEV or higher\n"
          "  --anomaly ID        print only sessions with anomaly ID (repeatable: any of them)\n"
          "  --address ADDR      print only sessions whose MAIL FROM or a RCPT TO is ADDR\n"
          "                      (repeatable; case-insensitive)\n"
          "  --domain DOMAIN     print only sessions with a MAIL FROM or RCPT TO address in\n"
          "                      DOMAIN or a subdomain of it (repeatable; case-insensitive);\n"
          "                      --address and --domain together: any of them matches.\n"
          "                      Filters choose what is printed (text view, lines, NDJSON\n"
          "                      sessions, live anomalies), all given must hold; the summary\n"
          "                      and --fail-on count every session\n"
          "  --idle-timeout SEC  end a connection after SEC seconds of capture time without\n"
          "                      packets (default 600, 0 = never); live, the wall clock\n"
          "  --order start|end   reading files, sessions come in the order they began\n"
          "                      (start, the default: written at the end, from temporary\n"
          "                      files) or as they end (end: at once); live, as they end\n"
          "  --syn-timeout SEC   live: tell an unanswered SYN after SEC seconds without\n"
          "                      SYN-ACK, or at its first retransmission (default 3)\n"
          "  --max-sessions N    connections tracked at once (default 50000)\n"
          "  --verify-checksums  ignore every segment with a wrong TCP checksum (without it:\n"
          "                      only those from a side whose checksums otherwise verify)\n"
          "  --show-secrets      include passwords and AUTH data in the output\n"
          "  --tls-keylog FILE   decrypt STARTTLS and port 465 sessions with the TLS secrets in\n"
          "                      FILE (NSS key log, SSLKEYLOGFILE); secrets embedded in pcapng\n"
          "                      inputs (editcap --inject-secrets) are used with or without it;\n"
          "                      at most 2 GiB and 8388608 lines read, 1048576 connections held;\n"
          "                      live, FILE is read again as it grows (it may not exist yet)\n"
          "  --fail-on SEV       exit 1 when an anomaly of severity SEV (info, notice, warning,\n"
          "                      error) or higher was found\n"
          "  --eml DIR           write each message to DIR/session-<id>-<n>.eml as it is\n"
          "                      read, after Return-Path and X-Smtpsniff-Rcpt-To lines (the\n"
          "                      envelope); mode 0600, never over an existing file; DIR must\n"
          "                      exist and not be world-writable without the sticky bit\n"
          "  --banner-delay MS   greeting delay reported as banner_delay (default 3000)\n"
          "  --slow-reply MS     reply delay reported as slow_reply (default 10000)\n"
          "  --local-domain D    a domain the server is final destination for (repeatable;\n"
          "                      --local-domains D1,D2,... gives several at once)\n"
          "  --trusted-net CIDR  a client network the server relays for (repeatable; default:\n"
          "                      loopback and the private ranges)\n"
          "  --no-hash           do not compute SHA-256 of messages\n"
          "  --max-transcript N  transcript lines kept per session (default 1000)\n",
          f);
    fputs("  --html FILE         write a self-contained HTML report to FILE: the summary's\n"
          "                      figures, then each session's ladder diagram, anomalies and\n"
          "                      transcript (sessions with anomalies first; at most 500\n"
          "                      sessions of each kind drawn, 10000 listed)\n"
          "  --svg DIR           write each session's ladder to DIR/session-<id>.svg (mode\n"
          "                      0600, never over an existing file; DIR must exist)\n"
          "  --workers N         analyse in N processes, each owning a share of the\n"
          "                      connections; on files, same output as one process;\n"
          "                      live, the kernel shares the interface out by flow\n"
          "  -h, --help          this help\n"
          "  --version           print the version\n"
          "sessions: \"session N\" (JSON id) is the frame number of the connection's first\n"
          "  packet, as Wireshark numbers frames (1-based, several files in merged order);\n"
          "  reading files, sessions come in that order (--order); live, as they end;\n"
          "  transcript times are milliseconds since that first packet\n"
          "exit status: 0 done, also when SIGINT or SIGTERM ended the analysis (the summary\n"
          "  says interrupted); 1 an anomaly at or above --fail-on was found; 2 usage error;\n"
          "  3 the capture, the TLS key log or the output could not be read or written (a\n"
          "  closed output pipe, as with | head, ends the run with 3 and no message)\n",
          f);
}

static void main_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void
main_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("smtpsniff: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (try 'smtpsniff --help')\n", stderr);
    exit(2);
}

static long long
main_number(const char *s, long long lo, long long hi, const char *what)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        main_usage_error("invalid %s '%s' (%lld..%lld)", what, s, lo, hi);
    return v;
}

static double
main_real(const char *s, double lo, double hi, const char *what)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        main_usage_error("invalid %s '%s'", what, s);
    return v;
}

static void
main_parse_ports(struct main_opts *o, const char *s)
{
    o->nports = 0;
    const char *p = s;
    while (*p) {
        char buf[16];
        size_t n = strcspn(p, ",");
        if (n == 0 || n >= sizeof buf)
            main_usage_error("invalid --ports list '%s'", s);
        memcpy(buf, p, n);
        buf[n] = 0;
        if (o->nports == MAIN_MAX_PORTS)
            main_usage_error("too many ports in '%s'", s);
        o->ports[o->nports++] = (uint16_t)main_number(buf, 1, 65535, "port");
        p += n;
        if (*p == ',')
            p++;
    }
    if (o->nports == 0)
        main_usage_error("invalid --ports list '%s'", s);
}

/* -C: millions of bytes as tcpdump counts them, or k, m, g for KiB, MiB, GiB. */
static uint64_t
main_file_size(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    uint64_t unit = 1000000;
    if (*end && !end[1]) {
        switch (*end) {
        case 'k':
        case 'K':
            unit = 1024;
            end++;
            break;
        case 'm':
        case 'M':
            unit = 1024 * 1024;
            end++;
            break;
        case 'g':
        case 'G':
            unit = 1024 * 1024 * 1024;
            end++;
            break;
        default:
            break;
        }
    }
    if (errno || end == s || *end || s[0] == '-' || v == 0 || v > UINT64_MAX / unit / 2)
        main_usage_error("invalid -C file size '%s' (millions of bytes, or a number with k, m "
                         "or g)",
                         s);
    return (uint64_t)v * unit;
}

/* Trailing arguments joined into one filter expression, as tcpdump does. */
static char *
main_join(int argc, char **argv)
{
    size_t len = 1;
    for (int i = 0; i < argc; i++)
        len += strlen(argv[i]) + 1;
    char *s = mem_alloc(len);
    if (!s)
        return NULL;
    size_t off = 0;
    for (int i = 0; i < argc; i++) {
        size_t n = strlen(argv[i]);
        memcpy(s + off, argv[i], n);
        off += n;
        s[off++] = i + 1 < argc ? ' ' : '\0';
    }
    if (argc == 0)
        s[0] = 0;
    return s;
}

static void
main_parse(struct main_opts *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"ports", required_argument, NULL, OPT_PORTS},
        {"json", required_argument, NULL, OPT_JSON},
        {"quiet", no_argument, NULL, 'q'},
        {"idle-timeout", required_argument, NULL, OPT_IDLE},
        {"syn-timeout", required_argument, NULL, OPT_SYN_TIMEOUT},
        {"order", required_argument, NULL, OPT_ORDER},
        {"max-sessions", required_argument, NULL, OPT_MAX_SESSIONS},
        {"verify-checksums", no_argument, NULL, OPT_VERIFY},
        {"show-secrets", no_argument, NULL, OPT_SECRETS},
        {"fail-on", required_argument, NULL, OPT_FAIL_ON},
        {"eml", required_argument, NULL, OPT_EML},
        {"banner-delay", required_argument, NULL, OPT_BANNER_DELAY},
        {"slow-reply", required_argument, NULL, OPT_SLOW_REPLY},
        {"local-domain", required_argument, NULL, OPT_LOCAL_DOMAIN},
        {"local-domains", required_argument, NULL, OPT_LOCAL_DOMAINS},
        {"trusted-net", required_argument, NULL, OPT_TRUSTED_NET},
        {"feed-chunk", required_argument, NULL, OPT_FEED_CHUNK},
        {"no-hash", no_argument, NULL, OPT_NO_HASH},
        {"max-transcript", required_argument, NULL, OPT_MAX_TRANSCRIPT},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {"workers", required_argument, NULL, OPT_WORKERS},
        {"tls-keylog", required_argument, NULL, OPT_TLS_KEYLOG},
        {"html", required_argument, NULL, OPT_HTML},
        {"svg", required_argument, NULL, OPT_SVG},
        {"lines", no_argument, NULL, OPT_LINES},
        {"lines-style", required_argument, NULL, OPT_LINES_STYLE},
        {"min-severity", required_argument, NULL, OPT_MIN_SEVERITY},
        {"anomaly", required_argument, NULL, OPT_ANOMALY},
        {"address", required_argument, NULL, OPT_ADDRESS},
        {"domain", required_argument, NULL, OPT_DOMAIN},
        {NULL, 0, NULL, 0},
    };
    int c;
    opterr = 0;
    /* The leading ':' makes a missing argument ':' rather than '?' (an unknown option).
     * No '+': options may follow the filter expression, as with tcpdump (getopt moves the
     * filter words to the end); "--" ends the options before a filter word with a '-'. */
    int list_ifaces = 0;
    while ((c = getopt_long(argc, argv, ":i:r:c:s:B:Z:w:C:W:Dpnqhv", longopts, NULL)) != -1) {
        switch (c) {
        case 'i':
            o->iface = optarg;
            break;
        case 'r':
            if (o->nfiles == MAIN_MAX_FILES)
                main_usage_error("too many -r files (at most %s)", "256");
            o->files[o->nfiles++] = optarg;
            break;
        case 'c':
            o->count = main_number(optarg, 1, LLONG_MAX, "packet count");
            break;
        case 's':
            o->snaplen = (int)main_number(optarg, 0, 262144, "snap length");
            o->snaplen_set = 1;
            break;
        case 'B':
            o->buffer_kib = (int)main_number(optarg, 1, 4 * 1024 * 1024, "buffer size");
            break;
        case 'Z':
            o->user = optarg;
            break;
        case 'D':
            list_ifaces = 1;
            break;
        case 'w':
            o->dump_path = optarg;
            break;
        case 'C':
            o->dump_max_bytes = main_file_size(optarg);
            break;
        case 'W':
            o->dump_max_files = (unsigned)main_number(optarg, 1, 1000000, "-W file count");
            break;
        case 'p':
            o->promisc = 0;
            break;
        case 'n':
        case 'v':
            break;
        case 'q':
            o->quiet = 1;
            break;
        case 'h':
            main_usage(stdout);
            exit(0);
        case OPT_VERSION:
            printf("smtpsniff %s\n", SMTPSNIFF_VERSION);
            exit(0);
        case OPT_PORTS:
            main_parse_ports(o, optarg);
            break;
        case OPT_JSON:
            o->json_path = optarg;
            break;
        case OPT_IDLE:
            o->idle_s = main_real(optarg, 0, 1e7, "idle timeout");
            break;
        case OPT_SYN_TIMEOUT:
            o->syn_timeout_s = main_real(optarg, 0.1, 1e7, "SYN timeout");
            o->syn_timeout_set = 1;
            break;
        case OPT_ORDER:
            if (strcmp(optarg, "start") == 0)
                o->order_end = 0;
            else if (strcmp(optarg, "end") == 0)
                o->order_end = 1;
            else
                main_usage_error("invalid --order '%s' (start, end)", optarg);
            break;
        case OPT_MAX_SESSIONS:
            o->max_sessions = main_number(optarg, 16, 10 * 1000 * 1000, "--max-sessions");
            break;
        case OPT_VERIFY:
            o->verify = 1;
            break;
        case OPT_SECRETS:
            o->show_secrets = 1;
            break;
        case OPT_FAIL_ON:
            o->fail_on = rule_severity_parse(optarg);
            if (o->fail_on < 0)
                main_usage_error("invalid severity '%s' (info, notice, warning, error)", optarg);
            break;
        case OPT_EML:
            o->eml_dir = optarg;
            break;
        case OPT_BANNER_DELAY:
            o->banner_delay_ms = main_real(optarg, 0, 1e9, "--banner-delay");
            break;
        case OPT_SLOW_REPLY:
            o->slow_reply_ms = main_real(optarg, 0, 1e9, "--slow-reply");
            break;
        case OPT_LOCAL_DOMAIN:
            if (o->ndomains == MAIN_MAX_DOMAINS)
                main_usage_error("too many --local-domain options (at most %s)", "64");
            o->domains[o->ndomains++] = optarg;
            break;
        case OPT_LOCAL_DOMAINS:
            /* A comma-separated list; the words stay in argv, so only cut them in place. */
            for (char *d = optarg; d && *d;) {
                char *comma = strchr(d, ',');
                if (comma)
                    *comma = '\0';
                if (*d) {
                    if (o->ndomains == MAIN_MAX_DOMAINS)
                        main_usage_error("too many local domains (at most %s)", "64");
                    o->domains[o->ndomains++] = d;
                }
                d = comma ? comma + 1 : NULL;
            }
            break;
        case OPT_TRUSTED_NET:
            if (o->nnets == MAIN_MAX_DOMAINS)
                main_usage_error("too many --trusted-net options (at most %s)", "64");
            if (rule_net_parse(optarg, &o->nets[o->nnets]) < 0)
                main_usage_error("invalid --trusted-net '%s' (an address or ADDRESS/PREFIX)",
                                 optarg);
            o->nnets++;
            break;
        case OPT_FEED_CHUNK:
            o->feed_chunk = main_number(optarg, 1, 1 << 20, "--feed-chunk");
            break;
        case OPT_NO_HASH:
            o->hash = 0;
            break;
        case OPT_MAX_TRANSCRIPT:
            o->max_transcript = main_number(optarg, 0, 10 * 1000 * 1000, "--max-transcript");
            break;
        case OPT_WORKERS:
            o->workers = main_number(optarg, 1, 64, "--workers");
            break;
        case OPT_TLS_KEYLOG:
            o->tls_keylog = optarg;
            break;
        case OPT_HTML:
            o->html_path = optarg;
            break;
        case OPT_SVG:
            o->svg_dir = optarg;
            break;
        case OPT_LINES:
            o->lines = 1;
            break;
        case OPT_LINES_STYLE:
            o->lines = 1;
            if (strcmp(optarg, "tsv") == 0)
                o->lines_style = LINES_TSV;
            else if (strcmp(optarg, "aligned") == 0)
                o->lines_style = LINES_ALIGNED;
            else
                main_usage_error("invalid --lines-style '%s' (tsv, aligned)", optarg);
            break;
        case OPT_MIN_SEVERITY:
        case OPT_ANOMALY:
        case OPT_ADDRESS:
        case OPT_DOMAIN: {
            char ferr[256];
            enum filter_kind k = c == OPT_MIN_SEVERITY ? FILTER_MIN_SEVERITY
                                 : c == OPT_ANOMALY    ? FILTER_ANOMALY
                                 : c == OPT_ADDRESS    ? FILTER_ADDRESS
                                                       : FILTER_DOMAIN;
            if (filter_add(&o->print_filter, k, optarg, ferr, sizeof ferr) < 0)
                main_usage_error("%s", ferr);
            break;
        }
        case ':':
            main_usage_error("option '%s' is missing its argument", argv[optind - 1]);
            break;
        default:
            main_usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (list_ifaces) {
        char err[512];
        if (iflist_print(stdout, err, sizeof err) != 0) {
            log_plain("%s", err);
            exit(3);
        }
        exit(fflush(stdout) == 0 ? 0 : 3);
    }
    if (!o->iface && o->nfiles == 0)
        main_usage_error("%s", "nothing to read: give -i IFACE or -r FILE");
    if ((o->dump_max_bytes || o->dump_max_files) && !o->dump_path)
        main_usage_error("%s", "-C and -W need -w FILE");
    if (o->dump_max_files && !o->dump_max_bytes)
        main_usage_error("%s", "-W needs -C SIZE (the size at which a new file starts)");
    if (o->dump_path && strcmp(o->dump_path, "-") == 0)
        main_usage_error("%s", "-w needs a file name (the reports may be on stdout)");
    if (o->dump_path && o->iface && o->workers > 1)
        main_usage_error("%s", "-w cannot be combined with live --workers (each worker sees "
                               "only its share of the interface)");
    if (o->iface && o->nfiles > 0)
        main_usage_error("%s", "-i and -r cannot be combined");
    if (o->user && !getpwnam(o->user))
        main_usage_error("-Z: unknown user '%s'", o->user);
    if (o->snaplen_set && !o->iface)
        fputs("smtpsniff: warning: -s only applies to live capture (-i): a file keeps the "
              "lengths it was written with\n",
              stderr);
    if (o->syn_timeout_set && !o->iface)
        fputs("smtpsniff: warning: --syn-timeout only applies to live capture (-i): reading a "
              "file, an unanswered SYN is told when its connection ends\n",
              stderr);
    size_t stdin_files = 0;
    for (size_t i = 0; i < o->nfiles; i++)
        stdin_files += strcmp(o->files[i], "-") == 0;
    if (stdin_files > 1)
        main_usage_error("%s", "standard input (-r -) can be read only once");
    if (o->workers > 1 && stdin_files)
        main_usage_error("%s", "--workers cannot read standard input (every worker reads the "
                               "capture itself)");
    if (o->lines && o->quiet)
        main_usage_error("%s", "--lines writes to standard output, which -q silences");
    if (o->lines && o->json_path && strcmp(o->json_path, "-") == 0)
        main_usage_error("%s", "--lines and --json - cannot both write to standard output");
    if (o->lines)
        o->lines = 1 + (o->lines_style >= 0     ? o->lines_style
                        : isatty(STDOUT_FILENO) ? LINES_ALIGNED
                                                : LINES_TSV);
    if (optind < argc) {
        o->filter = main_join(argc - optind, argv + optind);
        if (!o->filter) {
            fputs("smtpsniff: out of memory\n", stderr);
            exit(3);
        }
    }
}

/* A write of the report failed. A closed output pipe (`| head`) is how a reader says it
 * has seen enough: the run ends with status 3 and no message, as other Unix tools end
 * quietly; any other failure is said. */
static void
main_write_error(int err)
{
    if (err != EPIPE)
        log_plain("cannot write the report: %s", strerror(err ? err : EIO));
}

static void
main_emit(void *ctx, const struct jt_node *session, const struct smtp_session *smtp,
          const uint64_t order[2], int sev)
{
    struct report *r = ctx;
    if (report_session(r, session, smtp, order, sev) < 0 && !main_stop) {
        main_write_error(errno);
        exit(3);
    }
}

static json_t *
main_summary(struct cap *cap, const struct sess_mgr *sm, const struct run_stats *run,
             const char *truncated_file, const struct keylog *keylog, uint64_t not_smtp)
{
    struct cap_stats cs;
    struct reasm_stats rs;
    struct sess_stats ss;
    cap_get_stats(cap, &cs);
    reasm_get_stats(&rs);
    sess_mgr_stats(sm, &ss);
    json_t *o = json_object();
    jx_set(o, "type", json_string("summary"));
    jx_set(o, "schema", json_string("smtpsniff.summary/1"));
    jx_set(o, "packets", json_integer((json_int_t)cs.packets));
    jx_set(o, "bytes", json_integer((json_int_t)cs.bytes));
    if (cs.live) {
        jx_set(o, "kernel_drops", json_integer((json_int_t)cs.kernel_drops));
        jx_set(o, "interface_drops", json_integer((json_int_t)cs.iface_drops));
    }
    if (run->first_us)
        jx_set(o, "first_packet", jx_time(run->first_us));
    if (run->last_us)
        jx_set(o, "last_packet", jx_time(run->last_us));
    jx_set(o, "truncated_packets", json_integer((json_int_t)run->truncated));
    jx_set(o, "timestamps_backwards", json_integer((json_int_t)run->ts_backwards));
    jx_set(o, "ipv4_reserved", json_integer((json_int_t)run->v4_reserved));
    jx_set(o, "fragments_dropped", json_integer((json_int_t)run->frag_dropped));
    jx_set(o, "fragment_conflicts", json_integer((json_int_t)run->frag_conflicts));
    jx_set(o, "non_ip", json_integer((json_int_t)run->non_ip));
    jx_set(o, "malformed", json_integer((json_int_t)run->malformed));
    jx_set(o, "unsupported_link",
           json_integer((json_int_t)(run->unsupported + cs.unsupported_link)));
    jx_set(o, "tcp_packets", json_integer((json_int_t)rs.tcp_packets));
    jx_set(o, "midstream", json_integer((json_int_t)rs.midstream));
    jx_set(o, "not_smtp", json_integer((json_int_t)not_smtp));
    jx_set(o, "sessions_shed", json_integer((json_int_t)rs.sessions_shed));
    jx_set(o, "syn_evicted", json_integer((json_int_t)rs.syn_evicted));
    jx_set(o, "v6_map_full", json_integer((json_int_t)rs.v6_map_full));
    jx_set(o, "bad_checksums", json_integer((json_int_t)rs.bad_checksums));
    jx_set(o, "bad_checksums_ignored", json_integer((json_int_t)rs.bad_checksums_ignored));
    jx_set(o, "conflicting_copies", json_integer((json_int_t)rs.conflicting_copies));
    jx_set(o, "unparsable", json_integer((json_int_t)rs.unparsable));
    jx_set(o, "holes_filled", json_integer((json_int_t)rs.holes_filled));
    jx_set(o, "ipv6_fragments", json_integer((json_int_t)rs.ipv6_fragments));
    jx_set(o, "eml_written", json_integer((json_int_t)ss.eml_written));
    jx_set(o, "eml_partial", json_integer((json_int_t)ss.eml_partial));
    jx_set(o, "eml_errors", json_integer((json_int_t)ss.eml_errors));
    jx_set(o, "no_memory", json_integer((json_int_t)ss.no_memory));
    jx_set(o, "capture_truncated", json_boolean(truncated_file != NULL));
    if (truncated_file)
        jx_set(o, "capture_truncated_file", jx_str(truncated_file));
    json_t *dmg = json_array();
    for (size_t i = 0; i < cap_damage_count(cap); i++) {
        const struct cap_damage *d = cap_damage_get(cap, i);
        json_t *e = json_object();
        jx_set(e, "file", jx_str(d->file));
        jx_set(e, "offset", d->offset >= 0 ? json_integer((json_int_t)d->offset) : json_null());
        jx_set(e, "reason", jx_str(d->reason));
        json_array_append_new(dmg, e);
    }
    jx_set(o, "capture_damaged", dmg);
    jx_set(o, "interrupted", json_boolean(main_stop == 1));
    struct keylog_stats ks;
    keylog_get_stats(keylog, &ks);
    if (ks.dropped)
        jx_set(o, "tls_keylog_dropped", json_integer((json_int_t)ks.dropped));
    return o;
}

static int
main_open_capture(const struct main_opts *o, int fanout_group, struct cap **cap, char *err,
                  size_t errlen)
{
    struct cap_opts co = {
        .iface = o->iface,
        .files = o->files,
        .nfiles = o->nfiles,
        .filter = o->filter,
        .snaplen = o->snaplen,
        .buffer_kib = o->buffer_kib,
        .promisc = o->promisc,
        .ports = o->ports,
        .nports = o->filter ? 0 : o->nports,
        .fanout_group = fanout_group,
    };
    if (cap_open(cap, &co, err, errlen) < 0) {
        log_plain("%s", err);
        /* A filter the user typed that does not compile is a usage error. */
        return o->filter && strstr(err, ": bad filter expression '") ? 2 : 3;
    }
    return 0;
}

static void
main_live_anomaly(void *ctx, const struct jt_node *session, const struct jt_node *anomaly)
{
    if (report_live_anomaly(ctx, session, anomaly) < 0 && !main_stop) {
        main_write_error(errno);
        exit(3);
    }
}

static void
main_live_waiting(void *ctx, const struct jt_node *session, const char *awaiting, int64_t waited_us,
                  int64_t now_us)
{
    if (report_live_waiting(ctx, session, awaiting, waited_us, now_us) < 0 && !main_stop) {
        main_write_error(errno);
        exit(3);
    }
}

struct main_progress {
    struct report *rep;
    int failed;
};

static void
main_on_progress(void *ctx, uint64_t frame)
{
    struct main_progress *p = ctx;
    if (report_progress(p->rep, frame) < 0)
        p->failed = 1;
}

static uint64_t
main_sessions_so_far(void *ctx)
{
    struct sess_stats ss;
    sess_mgr_stats(ctx, &ss);
    return ss.opened;
}

/* The end of a live capture on stderr, in tcpdump's words (the summary has them too). */
static void
main_live_counts(struct cap *cap)
{
    struct cap_stats cs;
    cap_get_stats(cap, &cs);
    fprintf(stderr, "%llu packet%s captured\n", (unsigned long long)cs.packets,
            cs.packets == 1 ? "" : "s");
    fprintf(stderr, "%llu packet%s received by filter\n", (unsigned long long)cs.received,
            cs.received == 1 ? "" : "s");
    fprintf(stderr, "%llu packet%s dropped by kernel\n", (unsigned long long)cs.kernel_drops,
            cs.kernel_drops == 1 ? "" : "s");
    if (cs.iface_drops)
        fprintf(stderr, "%llu packet%s dropped by interface\n", (unsigned long long)cs.iface_drops,
                cs.iface_drops == 1 ? "" : "s");
}

/* The analysis proper: one process, or one worker's shard (index of count). Writes the
 * sessions and the summary to rep; returns the exit status. shared_frames: live workers'
 * common frame counter (NULL otherwise). */
static int
main_analyse(const struct main_opts *o, struct cap *cap, struct report *rep, unsigned index,
             unsigned count, uint64_t *shared_frames)
{
    char err[512];
    struct sess_config sc = {
        .smtp = {.show_secrets = o->show_secrets,
                 .hash_bodies = o->hash,
                 .max_transcript = (size_t)o->max_transcript,
                 .keylog = o->keylog,
                 .keylog_refresh = o->keyfollow ? keyfollow_refresh : NULL,
                 .keylog_refresh_arg = o->keyfollow},
        .rules = {.banner_delay_ms = o->banner_delay_ms,
                  .slow_reply_ms = o->slow_reply_ms,
                  .local_domains = o->domains,
                  .nlocal_domains = o->ndomains,
                  .trusted_nets = o->nets,
                  .ntrusted_nets = o->nnets},
        .feed_chunk = (size_t)o->feed_chunk,
        .eml = o->eml_dir ? eml_create(o->eml_fd, o->eml_dir) : NULL,
        .implicit_tls_port = 465,
        .live_anomaly = o->iface ? main_live_anomaly : NULL,
        .live_ctx = rep,
        .live_waiting = o->iface ? main_live_waiting : NULL,
        .idle_timeout_us = (int64_t)(o->idle_s * 1e6),
        .syn_timeout_us = (int64_t)(o->syn_timeout_s * 1e6),
    };
    struct sess_mgr *sm = o->eml_dir && !sc.eml ? NULL : sess_mgr_create(&sc, main_emit, rep);
    if (!sm) {
        fputs("smtpsniff: out of memory\n", stderr);
        eml_destroy(sc.eml);
        return 3;
    }
    struct reasm_ops ops;
    sess_mgr_ops(sm, &ops);
    /* A filter of the user's lets other ports through: those are analysed only when
     * their content is SMTP (select.h); the mail ports always are. */
    struct sel *sel = NULL;
    if (o->filter && !(sel = sel_create(o->ports, o->nports, &ops, &ops))) {
        fputs("smtpsniff: out of memory\n", stderr);
        sess_mgr_destroy(sm);
        return 3;
    }
    struct reasm_config rc = {
        .max_sessions = (size_t)o->max_sessions / (count ? count : 1),
        .verify_checksums = o->verify,
        .idle_timeout_us = (int64_t)(o->idle_s * 1e6),
        .ports = o->ports,
        .nports = o->filter ? 0 : o->nports,
        /* Live, the kernel has already given this worker only its own connections. */
        .shard_count = o->iface ? 1 : count,
        .shard_index = o->iface ? 0 : index,
        /* Live, a closed session is written within about a second of its last packet. */
        .linger_us = o->iface ? MAIN_LIVE_LINGER_US : 0,
    };
    if (reasm_init(&rc, &ops, err, sizeof err) < 0) {
        log_plain("%s", err);
        sel_destroy(sel);
        sess_mgr_destroy(sm);
        eml_destroy(sc.eml);
        return 3;
    }

    main_cap = cap;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = main_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (shared_frames)
        sigaction(WRK_SIG_PEER_ENDED, &sa, NULL);
    /* A closed pipe is reported as a write error on the next write, not a silent death. */
    signal(SIGPIPE, SIG_IGN);
    /* A file size limit makes an .eml write fail (EFBIG), counted, instead of killing us. */
    signal(SIGXFSZ, SIG_IGN);

    struct run_stats rst;
    memset(&rst, 0, sizeof rst);
    rst.progress_line = !o->iface && index == 0 && !o->quiet && isatty(STDERR_FILENO);
    rst.progress_sessions = main_sessions_so_far;
    rst.progress_ctx = sm;
    rst.shared_frames = shared_frames;
    rst.live_clock = o->iface != NULL;
    struct main_progress prog = {.rep = rep};
    int status =
        run_packets(cap, (uint64_t)o->count, &main_stop, &rst,
                    count > 1 && !o->iface ? main_on_progress : NULL, &prog, err, sizeof err);
    if (status != 0)
        log_plain("%s", err);
    if (o->iface && count <= 1 && !o->quiet)
        main_live_counts(cap);
    /* Every open session is written (capture_end), then the summary. Live, the capture ends
     * now (the interruption), not at the last packet: a session's silence lasts until now. */
    reasm_finish(o->iface ? run_clock_us(&rst) : rst.last_us);
    char tname[512];
    /* The capture module has said so on stderr, once per file. */
    const char *tfile = cap_truncated(cap, tname, sizeof tname) ? tname : NULL;
    json_t *summary = main_summary(cap, sm, &rst, tfile, o->keylog, sel_not_smtp(sel));
    if (report_summary(rep, summary) < 0 || prog.failed) {
        main_write_error(errno);
        status = 3;
    }
    json_decref(summary);
    reasm_shutdown();
    sel_destroy(sel);
    sess_mgr_destroy(sm);
    /* An .eml file not written is an output error, told once the analysis is done. */
    if (eml_finish(sc.eml) && status == 0)
        status = 3;
    eml_destroy(sc.eml);
    return status;
}

/* The outputs and what they print: the one place where a writer (writer.h) is registered,
 * for a worker and its parent alike (docs/design.md, "Adding an output"). Each session goes
 * to them in this order. json, text: the streams, html: the pictures (NULL: none). A worker
 * has no streams: its text stream's writer (text view or --lines) only renders the text of
 * its framed records. 0, or -1 on allocation failure. */
static int
main_writers(const struct main_opts *o, struct report *rep, FILE *json, FILE *text,
             struct html *html, int worker)
{
    int flush = o->iface != NULL;
    report_set_filter(rep, &o->print_filter);
    if (html && report_add_writer(rep, &w_html_ops, w_html_create(html)) < 0)
        return -1;
    if (json && report_add_writer(rep, &w_json_ops, w_json_create(json, flush)) < 0)
        return -1;
    if (!text && !worker)
        return 0;
    if (o->lines)
        return report_add_writer(rep, &w_lines_ops,
                                 w_lines_create(text, (enum lines_style)(o->lines - 1), flush));
    return report_add_writer(rep, &w_text_ops, w_text_create(text, flush));
}

struct main_worker_ctx {
    const struct main_opts *o;
    struct dump *dump;       /* -w on files: written by the first worker, which reads all */
    struct cap **live_caps;  /* live: one handle per worker, opened by the parent */
    uint64_t *shared_frames; /* live: the frame counter all workers number from */
};

static int
main_worker(void *ctx, unsigned index, unsigned count, FILE *out)
{
    const struct main_worker_ctx *wc = ctx;
    const struct main_opts *o = wc->o;
    struct cap *cap = NULL;
    char err[512];
    int rc = 0;
    if (wc->live_caps) {
        /* The other workers' handles stay open in their own processes. */
        for (unsigned i = 0; i < count; i++)
            if (i != index)
                cap_close(wc->live_caps[i]);
        cap = wc->live_caps[index];
    } else {
        rc = main_open_capture(o, 0, &cap, err, sizeof err);
        if (rc != 0)
            return rc;
        if (index > 0)
            cap_quiet(cap); /* every worker reads the files: one says what is wrong */
        else
            cap_set_dump(cap, wc->dump); /* it reads every packet, whatever its shard */
    }
    struct report *rep = report_create_framed(
        out, o->json_path != NULL || o->html_path || o->svg_dir,
        !o->quiet && !(o->json_path && strcmp(o->json_path, "-") == 0), o->iface != NULL);
    if (rep && main_writers(o, rep, NULL, NULL, NULL, 1) < 0) {
        report_destroy(rep);
        rep = NULL;
    }
    if (!rep) {
        cap_close(cap);
        return 3;
    }
    rc = main_analyse(o, cap, rep, index, count, wc->shared_frames);
    if (index == 0 && wc->dump && !wc->live_caps && dump_close(wc->dump, err, sizeof err) != 0) {
        if (rc != 3)
            log_plain("-w: %s", err);
        rc = 3;
    }
    report_destroy(rep);
    cap_close(cap);
    return rc;
}

/* Whatever main_run opened to read from: the capture, or the live workers' handles (each
 * worker holds its own reference to its handle, so the parent's go at any time). */
static void
main_close_sources(struct cap *cap, struct cap **live_caps, unsigned nlive)
{
    cap_close(cap);
    for (unsigned i = 0; i < nlive; i++)
        cap_close(live_caps[i]);
}

/* Live workers: one handle per worker on the same interface, all in one packet fanout
 * group, opened here while the process may still hold the privileges to capture. */
static int
main_open_live_workers(const struct main_opts *o, struct cap **caps, unsigned n)
{
    char err[512];
    int group = (int)(getpid() % 65535) + 1;
    for (unsigned i = 0; i < n; i++) {
        int rc = main_open_capture(o, group, &caps[i], err, sizeof err);
        if (rc != 0) {
            main_close_sources(NULL, caps, i);
            return rc;
        }
    }
    return 0;
}

/* The TLS secrets of the analysis: the --tls-keylog file, plus those embedded in pcapng
 * inputs. Standard input and other non-regular files are not read ahead of the capture (the
 * bytes would be lost to it). o->keylog stays NULL when there is no secret at all, so that
 * reports without one carry no "decryption" section. Returns 0 or an exit status. */
static int
main_load_keylog(struct main_opts *o)
{
    char err[512];
    struct keylog *kl = NULL;

    if (o->tls_keylog) {
        kl = keylog_create(0);
        if (!kl) {
            fputs("smtpsniff: out of memory\n", stderr);
            return 3;
        }
        int rc;
        struct stat ks;
        int regular = stat(o->tls_keylog, &ks) == 0 ? S_ISREG(ks.st_mode) : errno == ENOENT;
        if (o->iface && regular) {
            /* Live: the file is read now and again as it grows (keyfollow.h); one that does
             * not exist yet is read once it does. A pipe is read once, as offline. */
            o->keyfollow = keyfollow_create(kl, o->tls_keylog, &rc, err, sizeof err);
        } else {
            rc = keylog_load_file(kl, o->tls_keylog, err, sizeof err);
        }
        if (rc != KEYLOG_OK) {
            if (rc == KEYLOG_E_IO || rc == KEYLOG_E_TOOBIG)
                log_plain("cannot read the TLS key log %s", err);
            else
                log_plain("out of memory reading the TLS key log %s", o->tls_keylog);
            keylog_destroy(kl);
            return 3;
        }
        struct keylog_stats st;
        keylog_get_stats(kl, &st);
        if (st.secrets == 0 && !o->keyfollow)
            log_plain("the TLS key log %s holds no secret (%llu malformed lines)", o->tls_keylog,
                      (unsigned long long)st.bad);
    }
    for (size_t i = 0; i < o->nfiles; i++) {
        struct stat sb;
        struct buf secrets;
        int rc = KEYLOG_OK;
        if (strcmp(o->files[i], "-") == 0 || stat(o->files[i], &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        buf_init(&secrets, MAIN_SECRETS_SCAN);
        /* An unreadable file is reported when the capture is opened. */
        if (pcapng_tls_secrets(o->files[i], &secrets, MAIN_SECRETS_SCAN) > 0 && secrets.len) {
            if (!kl)
                kl = keylog_create(0);
            rc = kl ? keylog_load_buffer(kl, secrets.data, secrets.len) : KEYLOG_E_NOMEM;
        }
        if (secrets.data)
            memset(secrets.data, 0, secrets.len);
        buf_free(&secrets);
        if (rc != KEYLOG_OK) {
            fputs("smtpsniff: out of memory\n", stderr);
            keylog_destroy(kl);
            return 3;
        }
    }
    struct keylog_stats st;
    keylog_get_stats(kl, &st);
    if (st.dropped)
        log_msg(LOG_LVL_WARN,
                "%llu TLS secret(s) not loaded: the key log holds more than %zu connections "
                "(their sessions are not decrypted; see tls_keylog_dropped)",
                (unsigned long long)st.dropped, st.connections);
    o->keylog = kl;
    return 0;
}

static int main_run(struct main_opts *o);

/* tcpdump's first line, with the filter that was compiled (the default one included). */
static void
main_listening(const struct cap *cap)
{
    struct cap_source_info si;
    if (cap_source_info(cap, 0, &si) != 0)
        return;
    fputs("smtpsniff: listening on ", stderr);
    esc_puts(stderr, si.name);
    fprintf(stderr, ", link-type %s (%s), snapshot length %d bytes",
            si.dlt_name ? si.dlt_name : "unknown",
            si.dlt_description ? si.dlt_description : "unknown", si.snaplen);
    if (si.filter) {
        fputs(", filter \"", stderr);
        esc_puts(stderr, si.filter);
        fputc('"', stderr);
    }
    fputc('\n', stderr);
}

/* -w: one link type for the whole file, the one every source has. Files of different
 * types are refused (a pcap file has one link type; write them separately). */
static int
main_open_dump(const struct main_opts *o, const struct cap *cap, struct dump **out)
{
    char err[600];
    int snaplen = 0;
    int dlt = cap_datalink(cap, &snaplen);
    if (dlt == -2) {
        log_plain("-w: the capture files have different link types, which one pcap file "
                  "cannot hold (write each with its own -w)");
        return 2;
    }
    struct dump_opts dopt = {
        .path = o->dump_path,
        .dlt = dlt,
        .snaplen = snaplen,
        .max_bytes = o->dump_max_bytes,
        .max_files = o->dump_max_files,
        .flush_each = o->iface != NULL,
    };
    *out = dump_open(&dopt, err, sizeof err);
    if (!*out) {
        log_plain("-w: %s", err);
        return 3;
    }
    /* Workers are forked processes: nothing may stay buffered for two of them to write. */
    if (dump_flush(*out) != 0) {
        log_plain("-w: cannot write %s: %s", o->dump_path, strerror(errno));
        dump_close(*out, NULL, 0);
        *out = NULL;
        return 3;
    }
    return 0;
}

/* The --eml directory is opened here, once: the files are created relative to it, so what
 * its path names later does not matter. One that cannot be used is an output error (3). */
static int
main_open_eml(struct main_opts *o)
{
    char err[512];

    if (!o->eml_dir)
        return 0;
    o->eml_fd = eml_dir_open(o->eml_dir, err, sizeof err);
    if (o->eml_fd < 0) {
        fprintf(stderr, "smtpsniff: %s\n", err);
        return 3;
    }
    return 0;
}

/* --svg DIR, opened once like --eml's. */
static int
main_open_svg(struct main_opts *o)
{
    char err[512];

    if (!o->svg_dir)
        return 0;
    o->svg_fd = svg_dir_open(o->svg_dir, err, sizeof err);
    if (o->svg_fd < 0) {
        fprintf(stderr, "smtpsniff: %s\n", err);
        return 3;
    }
    return 0;
}

/* The page's title: what was analysed. */
static void
main_capture_name(const struct main_opts *o, char *out, size_t outlen)
{
    size_t len = 0;
    out[0] = '\0';
    if (o->iface) {
        snprintf(out, outlen, "live capture on %s", o->iface);
        return;
    }
    for (size_t i = 0; i < o->nfiles && len + 1 < outlen; i++) {
        int n = snprintf(out + len, outlen - len, "%s%s", i ? ", " : "",
                         strcmp(o->files[i], "-") == 0 ? "standard input" : o->files[i]);
        if (n < 0)
            break;
        len += (size_t)n;
    }
}

/* --html FILE and --svg DIR: NULL in *h when neither was asked for; 0 or an exit status. */
static int
main_open_html(const struct main_opts *o, FILE **page, struct html **h)
{
    char title[1024];
    *page = NULL;
    *h = NULL;
    if (!o->html_path && !o->svg_dir)
        return 0;
    if (o->html_path) {
        /* Never written through a symlink planted at the name. */
        int fd = open(o->html_path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
        *page = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (!*page) {
            log_plain("cannot write %s: %s", o->html_path, strerror(errno));
            if (fd >= 0)
                close(fd);
            return 3;
        }
    }
    main_capture_name(o, title, sizeof title);
    *h = html_begin(*page, o->svg_fd, o->svg_dir, title);
    if (!*h) {
        log_plain("cannot write %s: %s", o->html_path ? o->html_path : o->svg_dir,
                  strerror(errno ? errno : ENOMEM));
        if (*page)
            fclose(*page);
        *page = NULL;
        return 3;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    struct main_opts o = {
        .promisc = 1,
        .idle_s = 600,
        .syn_timeout_s = 3,
        .max_sessions = 50000,
        .fail_on = -1,
        .banner_delay_ms = 3000,
        .slow_reply_ms = 10000,
        .hash = 1,
        .max_transcript = 1000,
        .ports = {25, 465, 587, 2525},
        .nports = 4,
        .workers = 1,
        .eml_fd = -1,
        .svg_fd = -1,
        .lines_style = -1,
    };
    filter_init(&o.print_filter);
    nodecache_install();
    /* A closed output pipe is a failed write (EPIPE) the run handles, not a silent death
     * that would leave workers behind. */
    signal(SIGPIPE, SIG_IGN);
    /* A subcommand: reports read back rather than a capture. */
    if (argc > 1 && strcmp(argv[1], "summarize") == 0)
        return summarize_main(argc - 1, argv + 1);
    main_parse(&o, argc, argv);
    int status = main_load_keylog(&o);
    if (status == 0)
        status = main_open_eml(&o);
    if (status == 0)
        status = main_open_svg(&o);
    if (status == 0)
        status = main_run(&o);
    if (o.eml_fd >= 0)
        close(o.eml_fd);
    if (o.svg_fd >= 0)
        close(o.svg_fd);
    keyfollow_destroy(o.keyfollow);
    keylog_destroy(o.keylog);
    mem_free(o.filter);
    return status;
}

static int
main_run(struct main_opts *op)
{
    const struct main_opts o = *op;
    char err[512];
    struct cap *cap = NULL;
    struct cap *live_caps[64] = {NULL};
    unsigned nlive = o.workers > 1 && o.iface ? (unsigned)o.workers : 0;
    /* Opened before any output exists, so a bad capture leaves no empty report behind;
     * with workers on files it only proves the input readable (each worker reads it
     * itself). */
    int status = nlive ? main_open_live_workers(&o, live_caps, nlive)
                       : main_open_capture(&o, 0, &cap, err, sizeof err);
    if (status != 0)
        return status;
    struct cap *first = nlive ? live_caps[0] : cap;
    if (o.iface && !o.quiet)
        main_listening(first);
    /* Every output file named on the command line is opened before the privileges go:
     * the .eml directory already, the reports and the first -w file here. */
    FILE *json = NULL;
    if (o.json_path) {
        if (strcmp(o.json_path, "-") == 0) {
            json = stdout;
        } else {
            json = fopen(o.json_path, "w");
            if (!json) {
                log_plain("cannot write %s: %s", o.json_path, strerror(errno));
                main_close_sources(cap, live_caps, nlive);
                return 3;
            }
        }
    }
    struct dump *dump = NULL;
    if (o.dump_path) {
        status = main_open_dump(&o, first, &dump);
        if (status != 0) {
            if (json && json != stdout)
                fclose(json);
            main_close_sources(cap, live_caps, nlive);
            return status;
        }
        if (!nlive && o.workers <= 1)
            cap_set_dump(cap, dump);
    }
    if (o.user && cap_drop_privileges(o.user, err, sizeof err) < 0) {
        log_plain("%s", err);
        if (json && json != stdout)
            fclose(json);
        dump_close(dump, NULL, 0);
        main_close_sources(cap, live_caps, nlive);
        return 3;
    }
    uint64_t *shared_frames = NULL;
    if (nlive) {
        shared_frames = mmap(NULL, sizeof *shared_frames, PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (shared_frames == MAP_FAILED) {
            log_plain("cannot share memory between workers: %s", strerror(errno));
            main_close_sources(cap, live_caps, nlive);
            return 3;
        }
        *shared_frames = 0;
    }

    FILE *text = (o.quiet || json == stdout) ? NULL : stdout;
    /* Offline, the reports go to temporary files and come out in start order at the end. */
    FILE *jtmp = NULL, *ttmp = NULL;
    if (!o.iface && !o.order_end) {
        if ((json && !(jtmp = tmpfile())) || (text && !(ttmp = tmpfile()))) {
            log_plain("cannot create a temporary file to put the reports in start order: %s "
                      "(--order end writes them as the sessions end)",
                      strerror(errno));
            if (jtmp)
                fclose(jtmp);
            main_close_sources(cap, live_caps, nlive);
            return 3;
        }
    }
    struct report *rep = report_create(NULL, NULL, o.iface != NULL);
    if (!rep) {
        fputs("smtpsniff: out of memory\n", stderr);
        main_close_sources(cap, live_caps, nlive);
        return 3;
    }
    FILE *page = NULL;
    struct html *html = NULL;
    status = main_open_html(&o, &page, &html);
    if (status != 0) {
        report_destroy(rep);
        main_close_sources(cap, live_caps, nlive);
        return status;
    }
    if (main_writers(&o, rep, jtmp ? jtmp : json, ttmp ? ttmp : text, html, 0) < 0) {
        fputs("smtpsniff: out of memory\n", stderr);
        report_destroy(rep);
        html_destroy(html);
        if (page)
            fclose(page);
        main_close_sources(cap, live_caps, nlive);
        return 3;
    }
    if (o.workers > 1) {
        cap_close(cap);
        cap = NULL;
        struct main_worker_ctx wc = {.o = &o,
                                     .dump = dump,
                                     .live_caps = nlive ? live_caps : NULL,
                                     .shared_frames = shared_frames};
        int werr = 0;
        json_t *summary =
            wrk_run((unsigned)o.workers, main_worker, &wc, rep, nlive > 0, &status, &werr);
        if (summary) {
            if (report_write_summary(rep, summary) < 0) {
                main_write_error(errno);
                status = 3;
            }
            json_decref(summary);
        } else if (werr) {
            main_write_error(werr);
            status = 3;
        } else if (status == 0) {
            status = 3;
        }
        /* The first worker wrote and closed the -w files; this copy has nothing buffered. */
        dump_close(dump, NULL, 0);
    } else {
        status = main_analyse(&o, cap, rep, 0, 1, NULL);
        if (dump_close(dump, err, sizeof err) != 0) {
            if (status != 3)
                log_plain("-w: %s", err);
            status = 3;
        }
    }
    if (jtmp || ttmp) {
        enum reorder_kind tk = !o.lines                        ? REORDER_TEXT
                               : o.lines - 1 == (int)LINES_TSV ? REORDER_TSV
                                                               : REORDER_ALIGNED;
        if ((jtmp && reorder_copy(jtmp, json, REORDER_NDJSON) != 0) ||
            (ttmp && reorder_copy(ttmp, text, tk) != 0)) {
            if (errno != EPIPE)
                main_write_error(errno);
            status = 3;
        }
        if (jtmp)
            fclose(jtmp);
        if (ttmp)
            fclose(ttmp);
    }
    if (json && json != stdout && fclose(json) != 0) {
        if (errno != EPIPE)
            log_plain("cannot write %s: %s", o.json_path, strerror(errno));
        status = 3;
    }
    /* Written here rather than at exit, so that a closed pipe is told like any other. */
    if (fflush(stdout) != 0 && status != 3) {
        main_write_error(errno);
        status = 3;
    }
    if (page && fclose(page) != 0) {
        log_plain("cannot write %s: %s", o.html_path, strerror(errno));
        status = 3;
    }
    /* An SVG file not written is an output error, told once the analysis is done. */
    if (html_failures(html) && status != 3)
        status = 3;
    html_destroy(html);
    if (status == 0 && o.fail_on >= 0 && report_max_severity(rep) >= o.fail_on)
        status = 1;
    report_destroy(rep);
    main_close_sources(cap, live_caps, nlive);
    return status;
}
