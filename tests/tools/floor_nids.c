/* floor_nids.c - benchmark floor: bare libnids TCP reassembly (RFC 9293) of the mail ports
 * in a capture file, every delivered byte of both directions touched once; the work libnids
 * does inside smtpsniff, without any SMTP. IPv6 (RFC 8200) segments are re-expressed as
 * IPv4 with synthetic addresses, as libnids reassembles IPv4 only.
 *
 * With --sha256 the client's bytes are hashed (SHA-256 through EVP, one digest per
 * connection) instead of touched: the floor under any analyser that reassembles with libnids
 * and hashes every message, since the client's bytes hold the messages (and the commands,
 * a few hundred bytes a session, so this floor hashes slightly more than smtpsniff does). */

#include <arpa/inet.h>
#include <inttypes.h>
#include <nids.h>
#include <openssl/evp.h>
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

/* Synthetic IPv4 addresses for IPv6 ones come from 240.0.0.0/4 (RFC 1112 class E), which
 * never appears on the wire, so they cannot collide with real IPv4 hosts. */
#define FN_SYNTH_BASE 0xf0000000u
#define FN_SYNTH_MAX 0x0fffffffu

struct fn_v6slot {
    uint8_t addr[16];
    uint32_t v4; /* network order; 0 = empty slot */
};

static struct {
    uint64_t packets;
    uint64_t sessions;
    uint64_t closed, reset, timed_out, exiting;
    uint64_t bytes[2]; /* [0] client to server, [1] server to client */
    uint64_t sum;
    uint64_t v6_rewritten, v6_skipped;
    uint64_t warnings;
    uint64_t digests;
    EVP_MD *sha256; /* non-NULL with --sha256 */
    struct fn_v6slot *v6;
    size_t v6_cap, v6_used;
    uint8_t frame[14 + 20 + 65536];
} F;

static void
fn_syslog(int type, int errnum, struct ip *iph, void *data)
{
    (void)type;
    (void)errnum;
    (void)iph;
    (void)data;
    F.warnings++;
}

static uint64_t
fn_touch(const uint8_t *p, size_t n)
{
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += p[i];
    return s;
}

/* Ends a connection's digest and folds it into the checksum, so it cannot be optimised out. */
static void
fn_digest_end(void **param)
{
    EVP_MD_CTX *c = *param;
    if (!c)
        return;
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (EVP_DigestFinal_ex(c, md, &len) == 1 && len >= 8) {
        uint64_t v;
        memcpy(&v, md, sizeof v);
        F.sum += v;
        F.digests++;
    }
    EVP_MD_CTX_free(c);
    *param = NULL;
}

static void
fn_tcp(struct tcp_stream *a, void **param)
{
    switch (a->nids_state) {
    case NIDS_JUST_EST:
        if (a->addr.dest == 25 || a->addr.dest == 587) {
            a->client.collect++;
            a->server.collect++;
            F.sessions++;
            *param = NULL;
            if (F.sha256) {
                EVP_MD_CTX *c = EVP_MD_CTX_new();
                if (c && EVP_DigestInit_ex2(c, F.sha256, NULL) != 1) {
                    EVP_MD_CTX_free(c);
                    c = NULL;
                }
                *param = c;
            }
        }
        return;
    case NIDS_DATA:
        /* libnids names halves by receiver: server.data is what the client sent. */
        if (a->server.count_new) {
            const uint8_t *p = (const uint8_t *)a->server.data;
            size_t n = (size_t)a->server.count_new;
            if (*param)
                EVP_DigestUpdate(*param, p, n);
            else
                F.sum += fn_touch(p, n);
            F.bytes[0] += (uint64_t)n;
        }
        if (a->client.count_new) {
            F.sum += fn_touch((const uint8_t *)a->client.data, (size_t)a->client.count_new);
            F.bytes[1] += (uint64_t)a->client.count_new;
        }
        return;
    case NIDS_CLOSE:
        F.closed++;
        break;
    case NIDS_RESET:
        F.reset++;
        break;
    case NIDS_TIMED_OUT:
        F.timed_out++;
        break;
    case NIDS_EXITING:
        F.exiting++;
        break;
    default:
        return;
    }
    fn_digest_end(param);
}

static uint32_t
fn_hash(const uint8_t *a)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 16; i++)
        h = (h ^ a[i]) * 16777619u;
    return h;
}

static int
fn_v6_grow(void)
{
    size_t cap = F.v6_cap ? F.v6_cap * 2 : 4096;
    struct fn_v6slot *t = mem_calloc(cap, sizeof *t);
    if (!t)
        return -1;
    for (size_t i = 0; i < F.v6_cap; i++) {
        if (!F.v6[i].v4)
            continue;
        size_t j = fn_hash(F.v6[i].addr) & (cap - 1);
        while (t[j].v4)
            j = (j + 1) & (cap - 1);
        t[j] = F.v6[i];
    }
    mem_free(F.v6);
    F.v6 = t;
    F.v6_cap = cap;
    return 0;
}

/* The synthetic IPv4 address of an IPv6 one; addresses are never released (a floor only
 * has to be cheap, and a capture holds far fewer than 2^28 hosts). */
static int
fn_v6_map(const uint8_t *addr, uint32_t *v4)
{
    if ((F.v6_used + 1) * 2 > F.v6_cap && fn_v6_grow() < 0)
        return -1;
    size_t j = fn_hash(addr) & (F.v6_cap - 1);
    while (F.v6[j].v4) {
        if (memcmp(F.v6[j].addr, addr, 16) == 0) {
            *v4 = F.v6[j].v4;
            return 0;
        }
        j = (j + 1) & (F.v6_cap - 1);
    }
    memcpy(F.v6[j].addr, addr, 16);
    F.v6[j].v4 = htonl(FN_SYNTH_BASE | (uint32_t)((F.v6_used + 1) & FN_SYNTH_MAX));
    F.v6_used++;
    *v4 = F.v6[j].v4;
    return 0;
}

static uint16_t
fn_ip_csum(const uint8_t *h)
{
    uint32_t s = 0;
    for (int i = 0; i < 20; i += 2)
        s += (uint32_t)h[i] << 8 | h[i + 1];
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

/* IPv6 TCP segment (no extension headers) to an IPv4 frame libnids accepts. */
static void
fn_rewrite_v6(const struct pcap_pkthdr *h, const uint8_t *d)
{
    const uint8_t *ip6 = d + 14;
    if (h->caplen < 14 + 40 || ip6[6] != IPPROTO_TCP) {
        F.v6_skipped++;
        return;
    }
    size_t plen = (size_t)ip6[4] << 8 | ip6[5];
    if (plen > h->caplen - 14 - 40)
        plen = h->caplen - 14 - 40;
    uint32_t src, dst;
    if (plen > 65535 - 20 || fn_v6_map(ip6 + 8, &src) < 0 || fn_v6_map(ip6 + 24, &dst) < 0) {
        F.v6_skipped++;
        return;
    }
    uint8_t *e = F.frame;
    memcpy(e, d, 12);
    e[12] = 0x08;
    e[13] = 0x00;
    uint8_t *ip = e + 14;
    size_t tot = 20 + plen;
    ip[0] = 0x45;
    ip[1] = 0;
    ip[2] = (uint8_t)(tot >> 8);
    ip[3] = (uint8_t)tot;
    ip[4] = ip[5] = 0;
    ip[6] = 0x40; /* DF */
    ip[7] = 0;
    ip[8] = ip6[7];
    ip[9] = IPPROTO_TCP;
    ip[10] = ip[11] = 0;
    memcpy(ip + 12, &src, 4);
    memcpy(ip + 16, &dst, 4);
    uint16_t c = fn_ip_csum(ip);
    ip[10] = (uint8_t)(c >> 8);
    ip[11] = (uint8_t)c;
    memcpy(ip + 20, ip6 + 40, plen);
    struct pcap_pkthdr nh = *h;
    nh.caplen = nh.len = (bpf_u_int32)(14 + tot);
    nids_pcap_handler(NULL, &nh, F.frame);
    F.v6_rewritten++;
}

static void
fn_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *d)
{
    (void)user;
    F.packets++;
    if (h->caplen >= 14 && d[12] == 0x86 && d[13] == 0xdd) {
        fn_rewrite_v6(h, d);
        return;
    }
    /* libnids does not write to the packet; its prototype just predates const. */
    nids_pcap_handler(NULL, (struct pcap_pkthdr *)(uintptr_t)h, (u_char *)(uintptr_t)d);
}

int
main(int argc, char **argv)
{
    int v4_only = 0, sha256 = 0, i = 1;
    for (; i < argc - 1; i++) {
        if (strcmp(argv[i], "--v4-only") == 0)
            v4_only = 1;
        else if (strcmp(argv[i], "--sha256") == 0)
            sha256 = 1;
        else
            break;
    }
    if (i != argc - 1) {
        fputs("usage: floor_nids [--v4-only] [--sha256] FILE\n"
              "  --v4-only  let libnids read the file itself (nids_run); IPv6 is not seen\n"
              "  --sha256   hash the client's bytes (SHA-256 per connection) instead of\n"
              "             touching them\n",
              stderr);
        return 2;
    }
    if (sha256 && !(F.sha256 = EVP_MD_fetch(NULL, "SHA256", NULL))) {
        fputs("floor_nids: SHA-256 is not available\n", stderr);
        return 1;
    }
    const char *file = argv[argc - 1];
    char err[PCAP_ERRBUF_SIZE];
    pcap_t *p = NULL;
    if (v4_only) {
        nids_params.filename = (char *)(uintptr_t)file;
    } else {
        p = pcap_open_offline(file, err);
        if (!p) {
            fprintf(stderr, "floor_nids: %s\n", err);
            return 1;
        }
        nids_params.pcap_desc = p;
    }
    nids_params.device = NULL;
    nids_params.pcap_filter = NULL;
    nids_params.scan_num_hosts = 0;
    nids_params.tcp_workarounds = 0;
    nids_params.multiproc = 0;
    nids_params.syslog = fn_syslog;
    /* smtpsniff's table for its default 100000 connections. */
    nids_params.n_tcp_streams = 100000 * 4 / 3 + 64;
    nids_params.n_hosts = 1024;
    if (!nids_init()) {
        fprintf(stderr, "floor_nids: %s\n", nids_errbuf);
        return 1;
    }
    static struct nids_chksum_ctl all = {0, 0, NIDS_DONT_CHKSUM, 0};
    nids_register_chksum_ctl(&all, 1);
    /* nids.h takes the callback as void *: copy the function pointer's bytes (POSIX). */
    void (*tcpf)(struct tcp_stream *, void **) = fn_tcp;
    void *tcpp;
    memcpy(&tcpp, &tcpf, sizeof tcpp);
    nids_register_tcp(tcpp);

    if (v4_only) {
        nids_run();
    } else if (pcap_loop(p, -1, fn_packet, NULL) == PCAP_ERROR) {
        fprintf(stderr, "floor_nids: %s: %s\n", file, pcap_geterr(p));
        return 1;
    }
    /* Connections still open are delivered as NIDS_EXITING here: count them first. */
    nids_exit();
    printf("floor_nids: %" PRIu64 " packets, %" PRIu64 " sessions (%" PRIu64 " closed, %" PRIu64
           " reset, %" PRIu64 " timed out), %" PRIu64 " bytes client->server, %" PRIu64
           " bytes server->client, %" PRIu64 " IPv6 packets rewritten, %" PRIu64
           " skipped, %" PRIu64 " libnids warnings, %" PRIu64 " digests, checksum %016" PRIx64 "\n",
           F.packets, F.sessions, F.closed, F.reset, F.timed_out, F.bytes[0], F.bytes[1],
           F.v6_rewritten, F.v6_skipped, F.warnings, F.digests, F.sum);
    EVP_MD_free(F.sha256);
    mem_free(F.v6);
    return 0;
}
