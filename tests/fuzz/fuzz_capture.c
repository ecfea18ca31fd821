/* fuzz_capture.c - whole captures through the full pipeline: capture file parsing
 * (libpcap), link and IP decoding, libnids reassembly, sessions, dissectors, rules and
 * both report writers. The input is the capture file itself. */
#include <jansson.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "capture.h"
#include "reasm.h"
#include "report.h"
#include "run.h"
#include "session.h"

static void
fuzz_emit(void *ctx, const struct jt_node *report, const struct smtp_session *smtp,
          const uint64_t order[2], int sev)
{
    report_session(ctx, report, smtp, order, sev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("capture", 0);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    const char *files[1] = {path};
    uint16_t ports[] = {25, 465, 587, 2525};
    struct cap_opts co = {.files = files, .nfiles = 1};
    struct cap *cap = NULL;
    char err[256];
    FILE *sink = fopen("/dev/null", "w");
    if (sink && cap_open(&cap, &co, err, sizeof err) == 0) {
        struct report *rep = report_create(sink, sink, 0);
        struct sess_config sc = {.smtp = {.hash_bodies = 1},
                                 .rules = {.banner_delay_ms = 3000, .slow_reply_ms = 10000},
                                 .implicit_tls_port = 465};
        struct sess_mgr *sm = rep ? sess_mgr_create(&sc, fuzz_emit, rep) : NULL;
        struct reasm_ops ops;
        struct reasm_config rc = {
            .max_sessions = 64, .idle_timeout_us = 600000000, .ports = ports, .nports = 4};
        if (sm) {
            sess_mgr_ops(sm, &ops);
            if (reasm_init(&rc, &ops, err, sizeof err) == 0) {
                volatile sig_atomic_t stop = 0;
                struct run_stats st;
                memset(&st, 0, sizeof st);
                run_packets(cap, 0, &stop, &st, NULL, NULL, err, sizeof err);
                reasm_finish(st.last_us);
                json_t *summary = json_object();
                report_summary(rep, summary);
                json_decref(summary);
                reasm_shutdown();
            }
        }
        sess_mgr_destroy(sm);
        report_destroy(rep);
        cap_close(cap);
    }
    if (sink)
        fclose(sink);
    close(fd);
    return 0;
}
