/* test_capture.c - capture files through libpcap: timestamp merge of several files with
 * different link types, files cut mid-record, non-capture files, filters (the default mail
 * filter on every link type, VLAN and fragments included), pcapng, privilege dropping. */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pcap/pcap.h>

#include "capture.h"
#include "check.h"
#include "decode.h"
#include "mem.h"

static char tmpdir[256];

/* ---- packets ---- */

struct pkt {
    uint8_t b[256];
    size_t n;
};

static void
put8(struct pkt *p, unsigned v)
{
    p->b[p->n++] = (uint8_t)v;
}

static void
put16(struct pkt *p, unsigned v)
{
    put8(p, (v >> 8) & 0xff);
    put8(p, v & 0xff);
}

static void
put32(struct pkt *p, uint32_t v)
{
    put16(p, v >> 16);
    put16(p, v & 0xffff);
}

/* IPv4 + TCP to dport carrying one byte, `id`, that names the packet in the tests. */
static void
ip4_tcp(struct pkt *p, unsigned dport, unsigned frag, uint8_t id)
{
    put8(p, 0x45);
    put8(p, 0);
    put16(p, 41);
    put16(p, 1);
    put16(p, frag);
    put8(p, 64);
    put8(p, 6);
    put16(p, 0);
    put32(p, 0xc0000201);
    put32(p, 0xc6336402);
    put16(p, 40000);
    put16(p, dport);
    put32(p, 1);
    put32(p, 0);
    put8(p, 0x50);
    put8(p, 0x18);
    put16(p, 1000);
    put32(p, 0);
    put8(p, id);
}

static void
ip6_tcp(struct pkt *p, unsigned dport, uint8_t id)
{
    put32(p, 0x60000000);
    put16(p, 21);
    put8(p, 6);
    put8(p, 64);
    for (int i = 0; i < 32; i++)
        put8(p, i == 15 ? 1 : i == 31 ? 2 : (i % 16) < 2 ? 0x20 : 0);
    put16(p, 40000);
    put16(p, dport);
    put32(p, 1);
    put32(p, 0);
    put8(p, 0x50);
    put8(p, 0x18);
    put16(p, 1000);
    put32(p, 0);
    put8(p, id);
}

static void
eth(struct pkt *p, size_t ntags, unsigned etype)
{
    p->n = 0;
    for (int i = 0; i < 12; i++)
        put8(p, i < 6 ? 2 : 4);
    static const unsigned tpid[] = {0x88a8, 0x8100};
    for (size_t i = 0; i < ntags; i++) {
        put16(p, ntags == 1 ? 0x8100 : tpid[i]);
        put16(p, 100 + (unsigned)i);
    }
    put16(p, etype);
}

static void
sll(struct pkt *p, unsigned proto)
{
    p->n = 0;
    put16(p, 0);
    put16(p, 1);
    put16(p, 6);
    for (int i = 0; i < 8; i++)
        put8(p, i < 6 ? 2 : 0);
    put16(p, proto);
}

/* ---- files ---- */

struct rec {
    int64_t ts_us;
    struct pkt p;
    uint32_t len; /* 0: caplen */
};

static void
tmp_path(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", tmpdir, name);
}

static int
write_pcap(const char *path, int dlt, const struct rec *r, size_t n)
{
    pcap_t *dead = pcap_open_dead(dlt, 65535);
    if (!dead)
        return -1;
    pcap_dumper_t *d = pcap_dump_open(dead, path);
    if (!d) {
        fprintf(stderr, "pcap_dump_open %s: %s\n", path, pcap_geterr(dead));
        pcap_close(dead);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        struct pcap_pkthdr h;
        memset(&h, 0, sizeof h);
        h.ts.tv_sec = (time_t)(r[i].ts_us / 1000000);
        h.ts.tv_usec = (suseconds_t)(r[i].ts_us % 1000000);
        h.caplen = (uint32_t)r[i].p.n;
        h.len = r[i].len ? r[i].len : (uint32_t)r[i].p.n;
        pcap_dump((u_char *)d, &h, r[i].p.b);
    }
    pcap_dump_close(d);
    pcap_close(dead);
    return 0;
}

static int
write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, n, f);
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

static long
file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Opens the given files with an optional filter or default ports. */
static struct cap *
open_files(const char *const *files, size_t n, const char *filter, const uint16_t *ports,
           size_t nports, char *err, size_t errlen)
{
    struct cap_opts o;
    memset(&o, 0, sizeof o);
    o.files = files;
    o.nfiles = n;
    o.filter = filter;
    o.ports = ports;
    o.nports = nports;
    struct cap *c = NULL;
    if (cap_open(&c, &o, err, errlen) != 0)
        return NULL;
    return c;
}

/* Reads every packet: the id byte (last byte) of each and its link type. */
static size_t
read_all(struct cap *c, uint8_t *ids, int *dlts, int64_t *ts, size_t max, int *last)
{
    size_t n = 0;
    char err[256];
    struct cap_pkt pkt;
    int r;
    while ((r = cap_next(c, &pkt, err, sizeof err)) == CAP_PACKET) {
        if (n < max) {
            ids[n] = pkt.caplen ? pkt.data[pkt.caplen - 1] : 0;
            if (dlts)
                dlts[n] = pkt.dlt;
            if (ts)
                ts[n] = pkt.ts_us;
        }
        n++;
    }
    if (r == CAP_ERROR)
        fprintf(stderr, "cap_next: %s\n", err);
    *last = r;
    return n;
}

/* ---- tests ---- */

static void
test_merge(void)
{
    char a[300], b[300];
    tmp_path(a, sizeof a, "a.pcap");
    tmp_path(b, sizeof b, "b.pcap");
    /* a: Ethernet at 1, 3, 5 s; b: raw IP at 2, 3 (tie: a first), 4, 6 s */
    struct rec ra[3], rb[4];
    memset(ra, 0, sizeof ra);
    memset(rb, 0, sizeof rb);
    const int64_t ta[3] = {1000001, 3000000, 5000000}, tb[4] = {2000000, 3000000, 4000000, 6999999};
    const uint8_t ia[3] = {1, 3, 5}, ib[4] = {2, 4, 6, 7};
    for (int i = 0; i < 3; i++) {
        ra[i].ts_us = ta[i];
        eth(&ra[i].p, 0, 0x0800);
        ip4_tcp(&ra[i].p, 25, 0, ia[i]);
    }
    for (int i = 0; i < 4; i++) {
        rb[i].ts_us = tb[i];
        rb[i].p.n = 0;
        ip4_tcp(&rb[i].p, 25, 0, ib[i]);
        rb[i].len = 1500; /* cut by a snap length */
    }
    CHECK_EQ_INT(write_pcap(a, DLT_EN10MB, ra, 3), 0);
    CHECK_EQ_INT(write_pcap(b, DLT_RAW, rb, 4), 0);

    const char *files[] = {a, b};
    char err[512];
    struct cap *c = open_files(files, 2, NULL, NULL, 0, err, sizeof err);
    CHECK(c != NULL);
    if (!c) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    CHECK_EQ_INT(cap_fd(c), -1);
    uint8_t ids[16];
    int dl[16], last;
    int64_t ts[16];
    size_t n = read_all(c, ids, dl, ts, 16, &last);
    CHECK_EQ_INT(n, 7);
    CHECK_EQ_INT(last, CAP_END);
    static const uint8_t want[7] = {1, 2, 3, 4, 6, 5, 7};
    static const int want_dlt[7] = {1, 12, 1, 12, 12, 1, 12};
    static const int64_t want_ts[7] = {1000001, 2000000, 3000000, 3000000,
                                       4000000, 5000000, 6999999};
    for (size_t i = 0; i < 7 && i < n; i++) {
        CHECK_EQ_INT(ids[i], want[i]);
        CHECK_EQ_INT(dl[i], want_dlt[i]);
        CHECK_EQ_INT(ts[i], want_ts[i]);
    }
    struct cap_stats st;
    cap_get_stats(c, &st);
    CHECK_EQ_INT(st.packets, 7);
    CHECK_EQ_INT(st.bytes, 3 * (14 + 41) + 4 * 1500);
    CHECK_EQ_INT(st.live, 0);
    CHECK_EQ_INT(st.kernel_drops, 0);
    char tb_name[64];
    CHECK_EQ_INT(cap_truncated(c, tb_name, sizeof tb_name), 0);
    CHECK_EQ_STR(tb_name, "");
    /* after the end, the end again */
    struct cap_pkt pkt;
    CHECK_EQ_INT(cap_next(c, &pkt, err, sizeof err), CAP_END);
    cap_close(c);

    /* The borrowed data of one packet survives reading from the other file: hold each
     * packet's bytes and compare with what the file holds. */
    c = open_files(files, 2, NULL, NULL, 0, err, sizeof err);
    if (c) {
        struct cap_pkt p1;
        CHECK_EQ_INT(cap_next(c, &p1, err, sizeof err), CAP_PACKET);
        CHECK_EQ_INT(p1.caplen, ra[0].p.n);
        CHECK(memcmp(p1.data, ra[0].p.b, p1.caplen) == 0);
        CHECK_EQ_INT(p1.len, ra[0].p.n);
        CHECK_EQ_INT(cap_next(c, &p1, err, sizeof err), CAP_PACKET);
        CHECK_EQ_INT(p1.caplen, rb[0].p.n);
        CHECK_EQ_INT(p1.len, 1500);
        CHECK(memcmp(p1.data, rb[0].p.b, p1.caplen) == 0);
        /* the packet decodes with the link type it came with */
        struct dec_packet dp;
        CHECK_EQ_INT(dec_frame(p1.dlt, p1.data, p1.caplen, &dp), DEC_OK);
        /* cap_break ends an offline read too */
        cap_break(c);
        CHECK_EQ_INT(cap_next(c, &p1, err, sizeof err), CAP_END);
        cap_close(c);
    }
    cap_close(NULL);
}

static void
test_truncated(void)
{
    char t[300], a[300];
    tmp_path(t, sizeof t, "cut.pcap");
    tmp_path(a, sizeof a, "a.pcap"); /* written by test_merge */
    struct rec r[3];
    memset(r, 0, sizeof r);
    for (int i = 0; i < 3; i++) {
        r[i].ts_us = 1500000 + 2000000 * i; /* 1.5, 3.5, 5.5 s */
        eth(&r[i].p, 0, 0x0800);
        ip4_tcp(&r[i].p, 25, 0, (uint8_t)(10 + i));
    }
    CHECK_EQ_INT(write_pcap(t, DLT_EN10MB, r, 3), 0);
    long full = file_size(t);
    long rec = 16 + 55;
    char err[512], name[512];
    uint8_t ids[16];
    int last;

    /* cut inside the last record's data, then inside its header */
    const long cuts[] = {5, rec - 8};
    for (int k = 0; k < 2; k++) {
        CHECK_EQ_INT(truncate(t, full - cuts[k]), 0);
        const char *one[] = {t};
        struct cap *c = open_files(one, 1, NULL, NULL, 0, err, sizeof err);
        CHECK(c != NULL);
        if (!c)
            continue;
        size_t n = read_all(c, ids, NULL, NULL, 16, &last);
        CHECK_EQ_INT(n, 2);
        CHECK_EQ_INT(last, CAP_END);
        CHECK_EQ_INT(ids[0], 10);
        CHECK_EQ_INT(ids[1], 11);
        CHECK_EQ_INT(cap_truncated(c, name, sizeof name), 1);
        CHECK_EQ_STR(name, t);
        cap_close(c);
        CHECK_EQ_INT(write_pcap(t, DLT_EN10MB, r, 3), 0);
    }

    /* merged with a whole file: the cut one ends early, the other is read to its end */
    CHECK_EQ_INT(truncate(t, full - 5), 0);
    const char *two[] = {a, t};
    struct cap *c = open_files(two, 2, NULL, NULL, 0, err, sizeof err);
    CHECK(c != NULL);
    if (c) {
        size_t n = read_all(c, ids, NULL, NULL, 16, &last);
        CHECK_EQ_INT(n, 5);
        CHECK_EQ_INT(last, CAP_END);
        static const uint8_t want[5] = {1, 10, 3, 11, 5};
        for (size_t i = 0; i < 5 && i < n; i++)
            CHECK_EQ_INT(ids[i], want[i]);
        CHECK_EQ_INT(cap_truncated(c, name, sizeof name), 1);
        CHECK_EQ_STR(name, t);
        cap_close(c);
    }
}

static void
test_bad_files(void)
{
    char txt[300], empty[300], missing[300], user[300], err[512];
    tmp_path(txt, sizeof txt, "notes.txt");
    tmp_path(empty, sizeof empty, "empty.pcap");
    tmp_path(missing, sizeof missing, "missing.pcap");
    tmp_path(user, sizeof user, "user0.pcap");
    static const char text[] = "This is a mail log, not a packet capture.\n";
    CHECK_EQ_INT(write_bytes(txt, text, sizeof text - 1), 0);
    CHECK_EQ_INT(write_bytes(empty, "", 0), 0);

    const char *names[] = {txt, empty, missing};
    for (int i = 0; i < 3; i++) {
        const char *one[] = {names[i]};
        err[0] = '\0';
        struct cap *c = open_files(one, 1, NULL, NULL, 0, err, sizeof err);
        CHECK(c == NULL);
        cap_close(c);
        /* "FILE: reason", the name once */
        size_t nl = strlen(names[i]);
        CHECK(strncmp(err, names[i], nl) == 0 && err[nl] == ':');
        CHECK(strstr(err + nl, names[i]) == NULL);
        CHECK(strlen(err) > nl + 3);
    }
    /* a good file first does not hide a bad one after it */
    char a[300];
    tmp_path(a, sizeof a, "a.pcap");
    const char *two[] = {a, txt};
    CHECK(open_files(two, 2, NULL, NULL, 0, err, sizeof err) == NULL);
    CHECK(strncmp(err, txt, strlen(txt)) == 0);

    /* a link type we cannot decode is refused at open, by name */
    struct rec r;
    memset(&r, 0, sizeof r);
    eth(&r.p, 0, 0x0800);
    CHECK_EQ_INT(write_pcap(user, 147, &r, 1), 0);
    const char *u[] = {user};
    CHECK(open_files(u, 1, NULL, NULL, 0, err, sizeof err) == NULL);
    CHECK(strstr(err, user) == err);
    CHECK(strstr(err, "DLT 147") != NULL);

    /* stdin at most once; an interface or files, not both, not neither */
    const char *dash[] = {"-", "-"};
    CHECK(open_files(dash, 2, NULL, NULL, 0, err, sizeof err) == NULL);
    CHECK(strstr(err, "stdin") != NULL);
    struct cap_opts o;
    memset(&o, 0, sizeof o);
    struct cap *c = (struct cap *)&o;
    CHECK_EQ_INT(cap_open(&c, &o, err, sizeof err), -1);
    CHECK(c == NULL);
    o.iface = "lo";
    o.files = two;
    o.nfiles = 2;
    CHECK_EQ_INT(cap_open(&c, &o, err, sizeof err), -1);

    /* a live interface that does not exist is named in the message */
    memset(&o, 0, sizeof o);
    o.iface = "nosuchif9";
    o.promisc = 1;
    CHECK_EQ_INT(cap_open(&c, &o, err, sizeof err), -1);
    CHECK(strncmp(err, "nosuchif9: ", 11) == 0);
}

static void
test_filters(void)
{
    char a[300], s[300], err[512];
    tmp_path(a, sizeof a, "mixed.pcap");
    tmp_path(s, sizeof s, "cooked.pcap");
    /* Ethernet: 25 plain, 80 plain, 587 in VLAN, 80 in VLAN, 465 in QinQ, 80 in QinQ, a later
     * fragment plain and in VLAN, IPv6 to 25, IPv6 to 80, IPv6 to 2525 in VLAN, ARP */
    struct rec r[12];
    memset(r, 0, sizeof r);
    struct {
        size_t tags;
        unsigned etype, dport, frag;
    } spec[12] = {
        {0, 0x0800, 25, 0},  {0, 0x0800, 80, 0}, {1, 0x0800, 587, 0},  {1, 0x0800, 80, 0},
        {2, 0x0800, 465, 0}, {2, 0x0800, 80, 0}, {0, 0x0800, 0, 185},  {1, 0x0800, 0, 185},
        {0, 0x86dd, 25, 0},  {0, 0x86dd, 80, 0}, {1, 0x86dd, 2525, 0}, {0, 0x0806, 0, 0},
    };
    for (int i = 0; i < 12; i++) {
        r[i].ts_us = 1000000 + i;
        eth(&r[i].p, spec[i].tags, spec[i].etype);
        if (spec[i].etype == 0x0800)
            ip4_tcp(&r[i].p, spec[i].dport, spec[i].frag, (uint8_t)i);
        else if (spec[i].etype == 0x86dd)
            ip6_tcp(&r[i].p, spec[i].dport, (uint8_t)i);
        else
            for (int k = 0; k < 28; k++)
                put8(&r[i].p, k == 27 ? (unsigned)i : 1);
    }
    CHECK_EQ_INT(write_pcap(a, DLT_EN10MB, r, 12), 0);
    /* Linux cooked: 25, 80, 587 */
    struct rec q[3];
    memset(q, 0, sizeof q);
    static const unsigned qport[3] = {25, 80, 587};
    for (int i = 0; i < 3; i++) {
        q[i].ts_us = 2000000 + i;
        sll(&q[i].p, 0x0800);
        ip4_tcp(&q[i].p, qport[i], 0, (uint8_t)(20 + i));
    }
    CHECK_EQ_INT(write_pcap(s, DLT_LINUX_SLL, q, 3), 0);

    uint8_t ids[32];
    int last;
    const char *both[] = {a, s};

    /* the default mail filter, built per link type */
    static const uint16_t ports[] = {25, 465, 587, 2525};
    struct cap *c = open_files(both, 2, NULL, ports, 4, err, sizeof err);
    CHECK(c != NULL);
    if (!c)
        fprintf(stderr, "%s\n", err);
    if (c) {
        size_t n = read_all(c, ids, NULL, NULL, 32, &last);
        static const uint8_t want[] = {0, 2, 4, 6, 7, 8, 10, 20, 22};
        CHECK_EQ_INT(n, sizeof want);
        for (size_t i = 0; i < n && i < sizeof want; i++)
            CHECK_EQ_INT(ids[i], want[i]);
        cap_close(c);
    }

    /* a user filter applies to every file, whatever its link type */
    c = open_files(both, 2, "tcp dst port 80", NULL, 0, err, sizeof err);
    CHECK(c != NULL);
    if (c) {
        size_t n = read_all(c, ids, NULL, NULL, 32, &last);
        /* libpcap's `tcp` does not look inside VLAN tags without `vlan` */
        static const uint8_t want[] = {1, 9, 21};
        CHECK_EQ_INT(n, sizeof want);
        for (size_t i = 0; i < n && i < sizeof want; i++)
            CHECK_EQ_INT(ids[i], want[i]);
        cap_close(c);
    }
    /* the user's filter wins over the default ports */
    c = open_files(both, 2, "arp", ports, 4, err, sizeof err);
    CHECK(c != NULL);
    if (c) {
        size_t n = read_all(c, ids, NULL, NULL, 32, &last);
        CHECK_EQ_INT(n, 1);
        CHECK_EQ_INT(ids[0], 11);
        cap_close(c);
    }

    /* a bad expression is named in the error */
    c = open_files(both, 2, "tcp port banana", NULL, 0, err, sizeof err);
    CHECK(c == NULL);
    CHECK(strstr(err, "tcp port banana") != NULL);
    CHECK(strncmp(err, a, strlen(a)) == 0);
    /* an Ethernet-only expression fails on the cooked file, naming it */
    c = open_files(both, 2, "vlan and tcp", NULL, 0, err, sizeof err);
    CHECK(c == NULL);
    CHECK(strncmp(err, s, strlen(s)) == 0);
}

static void
test_default_filter_text(void)
{
    static const uint16_t ports[] = {25, 465, 587, 2525};
    char buf[2048];
    CHECK_EQ_INT(cap_default_filter(ports, 4, buf, sizeof buf), 0);
    CHECK(strstr(buf, "port 25") != NULL);
    CHECK(strstr(buf, "port 2525") != NULL);
    CHECK(strstr(buf, "vlan") != NULL);
    CHECK(strstr(buf, "ip[6:2] & 0x1fff != 0") != NULL);
    /* the vlan alternative comes after every untagged one */
    CHECK(strstr(buf, "vlan") > strstr(buf, "0x1fff"));

    /* it compiles on Ethernet; the per-link variant compiles on every link type libpcap
     * reports for a capture we can decode */
    pcap_t *p = pcap_open_dead(DLT_EN10MB, 262144);
    struct bpf_program prog;
    CHECK_EQ_INT(pcap_compile(p, &prog, buf, 1, PCAP_NETMASK_UNKNOWN), 0);
    pcap_freecode(&prog);
    pcap_close(p);
    static const int dlts[] = {DEC_DLT_NULL,      DEC_DLT_EN10MB, DEC_DLT_RAW,  DEC_DLT_LOOP,
                               DEC_DLT_LINUX_SLL, DEC_DLT_IPV4,   DEC_DLT_IPV6, DEC_DLT_LINUX_SLL2};
    for (size_t i = 0; i < sizeof dlts / sizeof dlts[0]; i++) {
        char t[2048];
        CHECK_EQ_INT(cap_default_filter_dlt(dlts[i], ports, 4, t, sizeof t), 0);
        CHECK_EQ_INT(strstr(t, "vlan") != NULL, dlts[i] == DEC_DLT_EN10MB);
        p = pcap_open_dead(dlts[i], 262144);
        int rc = pcap_compile(p, &prog, t, 1, PCAP_NETMASK_UNKNOWN);
        if (rc != 0)
            fprintf(stderr, "DLT %d: %s\n", dlts[i], pcap_geterr(p));
        CHECK_EQ_INT(rc, 0);
        if (rc == 0)
            pcap_freecode(&prog);
        pcap_close(p);
    }

    /* too small a buffer, no ports */
    char small[40] = "x";
    CHECK_EQ_INT(cap_default_filter(ports, 4, small, sizeof small), -1);
    CHECK_EQ_STR(small, "");
    CHECK_EQ_INT(cap_default_filter(ports, 0, buf, sizeof buf), -1);
    CHECK_EQ_INT(cap_default_filter(ports, 1, buf, sizeof buf), 0);
    CHECK(strstr(buf, "(tcp and (port 25)) or") == buf);
}

/* A minimal pcapng file by hand (libpcap writes only pcap): SHB, IDB (Ethernet, default
 * microsecond resolution), two EPBs. */
static void
test_pcapng(void)
{
    char path[300], err[512];
    tmp_path(path, sizeof path, "x.pcapng");
    uint8_t f[512];
    size_t n = 0;
#define NG32(v)                                                                                    \
    do {                                                                                           \
        uint32_t v_ = (uint32_t)(v);                                                               \
        memcpy(f + n, &v_, 4);                                                                     \
        n += 4;                                                                                    \
    } while (0)
    NG32(0x0a0d0d0a);
    NG32(28);
    NG32(0x1a2b3c4d);
    NG32(1); /* major 1, minor 0 (little-endian host halves) */
    NG32(0xffffffff);
    NG32(0xffffffff);
    NG32(28);
    NG32(1);
    NG32(20);
    NG32(DLT_EN10MB); /* link type 1, reserved 0 */
    NG32(65535);
    NG32(20);
    for (int k = 0; k < 2; k++) {
        struct pkt p;
        eth(&p, 0, 0x0800);
        ip4_tcp(&p, 25, 0, (uint8_t)(40 + k));
        size_t padded = (p.n + 3) & ~(size_t)3;
        uint64_t ts = 1600000000000000ull + (uint64_t)k * 1500;
        NG32(6);
        NG32(32 + padded);
        NG32(0);
        NG32(ts >> 32);
        NG32(ts & 0xffffffffu);
        NG32(p.n);
        NG32(p.n);
        memset(f + n, 0, padded);
        memcpy(f + n, p.b, p.n);
        n += padded;
        NG32(32 + padded);
    }
#undef NG32
    /* The major/minor halves above assume a little-endian host; skip elsewhere. */
    uint16_t one = 1;
    if (*(const uint8_t *)&one != 1)
        return;
    CHECK_EQ_INT(write_bytes(path, f, n), 0);
    const char *one_file[] = {path};
    struct cap *c = open_files(one_file, 1, "tcp port 25", NULL, 0, err, sizeof err);
    CHECK(c != NULL);
    if (!c) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    uint8_t ids[4];
    int dl[4], last;
    int64_t ts[4];
    size_t got = read_all(c, ids, dl, ts, 4, &last);
    CHECK_EQ_INT(got, 2);
    CHECK_EQ_INT(last, CAP_END);
    CHECK_EQ_INT(ids[0], 40);
    CHECK_EQ_INT(ids[1], 41);
    CHECK_EQ_INT(dl[0], DLT_EN10MB);
    CHECK_EQ_INT(ts[0], 1600000000000000ll);
    CHECK_EQ_INT(ts[1], 1600000000001500ll);
    cap_close(c);
}

/* Failing each allocation in turn while opening and reading two files neither crashes nor
 * leaks (the sanitizer build checks the leaks). */
static void
test_alloc_failures(void)
{
    char a[300], b[300], err[512];
    tmp_path(a, sizeof a, "a.pcap");
    tmp_path(b, sizeof b, "b.pcap");
    const char *files[] = {a, b};
    int opened = 0;
    for (long k = 0; k < 40; k++) {
        mem_fail_after(k);
        struct cap *c = open_files(files, 2, "tcp", NULL, 0, err, sizeof err);
        if (c) {
            opened++;
            uint8_t ids[16];
            int last;
            read_all(c, ids, NULL, NULL, 16, &last);
            CHECK(last == CAP_END || last == CAP_ERROR);
            cap_close(c);
        } else {
            CHECK(err[0] != '\0');
        }
        mem_fail_after(-1);
    }
    CHECK(opened > 0);
}

static void
test_privileges(void)
{
    char err[256];
    CHECK_EQ_INT(cap_drop_privileges("no-such-user-smtpsniff", err, sizeof err), -1);
    CHECK(strstr(err, "no-such-user-smtpsniff") != NULL);
    CHECK_EQ_INT(cap_drop_privileges("", err, sizeof err), -1);

    /* In a child, so the test keeps its own identity. */
    struct passwd *nobody = getpwnam("nobody");
    if (!nobody) {
        fprintf(stderr, "privilege drop skipped: no user 'nobody'\n");
        return;
    }
    /* Already that user: nothing to drop, and that is success. */
    int already = getuid() == nobody->pw_uid && geteuid() == nobody->pw_uid;
    pid_t pid = fork();
    if (pid == 0) {
        int rc = cap_drop_privileges("nobody", err, sizeof err);
        if (geteuid() == 0 && getuid() == 0 && rc == 0)
            _exit(10); /* claimed success but still root */
        if (rc == 0) {
            if (setuid(0) == 0)
                _exit(11);
            _exit(0);
        }
        /* without root, the refusal must say why */
        _exit(strstr(err, "nobody") ? 1 : 12);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    int code = WEXITSTATUS(status);
    if (geteuid() == 0 || already)
        CHECK_EQ_INT(code, 0);
    else
        CHECK_EQ_INT(code, 1);
}

static struct cap *live_cap;

static void
on_alarm(int sig)
{
    (void)sig;
    cap_break(live_cap);
}

/* A live capture on loopback that sees nothing is ended by cap_break from a signal handler.
 * Skipped where capturing is not permitted. */
static void
test_live_break(void)
{
    struct cap_opts o;
    memset(&o, 0, sizeof o);
    o.iface = "lo";
    o.promisc = 1;
    o.filter = "tcp port 9 and tcp port 10";
    o.buffer_kib = 1024;
    char err[512];
    if (cap_open(&live_cap, &o, err, sizeof err) != 0) {
        fprintf(stderr, "live capture skipped: %s\n", err);
        CHECK(strncmp(err, "lo: ", 4) == 0);
        return;
    }
    CHECK(cap_fd(live_cap) >= 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    alarm(1);
    struct cap_pkt pkt;
    CHECK_EQ_INT(cap_next(live_cap, &pkt, err, sizeof err), CAP_END);
    alarm(0);
    struct cap_stats st;
    cap_get_stats(live_cap, &st);
    CHECK_EQ_INT(st.live, 1);
    CHECK_EQ_INT(st.packets, 0);
    cap_close(live_cap);
    live_cap = NULL;
}

static void
cleanup(void)
{
    static const char *names[] = {"a.pcap",     "b.pcap",      "cut.pcap",
                                  "notes.txt",  "empty.pcap",  "user0.pcap",
                                  "mixed.pcap", "cooked.pcap", "x.pcapng"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char p[300];
        tmp_path(p, sizeof p, names[i]);
        unlink(p);
    }
    rmdir(tmpdir);
}

int
main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/smtpsniff-cap-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "mkdtemp %s: %s\n", tmpdir, strerror(errno));
        return 1;
    }
    test_merge();
    test_truncated();
    test_bad_files();
    test_filters();
    test_default_filter_text();
    test_pcapng();
    test_alloc_failures();
    test_privileges();
    test_live_break();
    cleanup();
    CHECK_DONE();
}
