# shellcheck shell=bash
# shellcheck disable=SC2034  # addresses and settings are used by the scripts that source this file
# Real-traffic lab for smtpsniff: network namespaces, a private Postfix with
# Dovecot SASL, a firewall/router where the captures are taken, and helpers for
# clients and captures.  Sourced by scripts/lab/run and tests/capture/lab_*.sh.
#
# Topology (all addresses exist only inside the lab's namespaces):
#
#   client ns                router ns (firewall, captures)            server ns
#   c0 10.25.1.2/.3  ---  rc 10.25.1.1 | rs 10.25.2.1  ---  s0 10.25.2.2-.17
#      fd25:1::2              fd25:1::1 | fd25:2::1              fd25:2::2
#
# The server namespace uses TTL/hop limit 58 (seen as 57 on the client side),
# the client 64, the router 64: a packet the router makes up (an injected RST)
# has a TTL that differs from the server's.

LAB_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

LAB_PACKAGES="postfix dovecot-core swaks tshark libnet-ssleay-perl libauthen-sasl-perl libdigest-hmac-perl libio-socket-inet6-perl tcpdump iptables nftables iproute2 ethtool netcat-openbsd openssl python3"

LAB_ID=${LAB_ID:-smlab$$}
NS_C=$LAB_ID-client
NS_R=$LAB_ID-router
NS_S=$LAB_ID-server

C4=10.25.1.2        # client
C4B=10.25.1.3       # second client address (a host on a block list)
R4C=10.25.1.1
R4S=10.25.2.1
C6=fd25:1::2
R6C=fd25:1::1
R6S=fd25:2::1
S6=fd25:2::2
# Server addresses, one per behaviour (see lab_postfix_config).
S_MX=10.25.2.2          # mx.example.net: port 25 (MX) and 587 (submission)
S_LEGACY=10.25.2.3      # old open relay with a Sendmail 8.9.3 banner
S_TRUST=10.25.2.4       # submission that trusts the client LAN (mynetworks)
S_CUSTOMER=10.25.2.5    # a customer's MX that rejects a block-listed client
S_SLOW=10.25.2.6        # banner after several seconds
S_BUSY=10.25.2.7        # one connection per client, the next gets 421
S_CLOSED=10.25.2.8      # nothing listens: SYN answered by RST
S_SILENT=10.25.2.9      # handshake completes, no banner ever
S_LIMITS=10.25.2.10     # small size limit, greylisting, full mailboxes
S_NOTLS=10.25.2.11      # STARTTLS broken (454)
S_NOPIPE=10.25.2.12     # PIPELINING not advertised
S_MASKED=10.25.2.13     # EHLO keywords masked by a firewall
S_STRICT=10.25.2.14     # bare LF refused
S_FW=10.25.2.15         # mx2.example.net behind a firewall that inspects SMTP
S_IDLE=10.25.2.16       # short smtpd_timeout: an idle client is dropped
S_LAX=10.25.2.17        # a stand-in that accepts DATA without any envelope

LAB_BANNER_DELAY=${LAB_BANNER_DELAY:-6}

LAB_USERS="alice:S3cret-alice-pw bob:S3cret-bob-pw"
LAB_BAD_USER=mallory
LAB_BAD_PASS=S3cret-mallory-pw

LAB_T0=$(date +%s.%N)
LAB_TMP=
LAB_LOGDIR=
LAB_PIDS=()
LAB_WARNINGS=0

lab_elapsed() { awk -v a="$LAB_T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
lab_log() { printf '[lab %6ss] %s\n' "$(lab_elapsed)" "$*" >&2; }
lab_warn() { printf '[lab %6ss] WARNING: %s\n' "$(lab_elapsed)" "$*" >&2; LAB_WARNINGS=$((LAB_WARNINGS + 1)); }
lab_die() { printf '[lab] ERROR: %s\n' "$*" >&2; exit 1; }

lab_c() { ip netns exec "$NS_C" "$@"; }
lab_r() { ip netns exec "$NS_R" "$@"; }
lab_s() { ip netns exec "$NS_S" "$@"; }

# --- prerequisites -----------------------------------------------------------

# shellcheck disable=SC2120
lab_missing_tools() {  # [tool...]: the ones not installed (default: all the full lab uses)
    local t missing=() tools=("$@")
    [ $# -gt 0 ] || tools=(postfix dovecot swaks tcpdump iptables ip6tables ip ethtool openssl python3 editcap dumpcap tshark)
    for t in "${tools[@]}"; do
        command -v "$t" >/dev/null 2>&1 || [ -x "/usr/sbin/$t" ] || missing+=("$t")
    done
    printf '%s\n' "${missing[@]}"
}

# Install the lab's packages (root only).  Returns 77 when not root.
lab_install() {
    if [ "$(id -u)" != 0 ]; then
        echo "The lab needs root (network namespaces, a private Postfix, iptables)." >&2
        echo "Install its packages as root (Debian):" >&2
        echo "  echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections" >&2
        echo "  apt-get install -y --no-install-recommends $LAB_PACKAGES" >&2
        return 77
    fi
    # shellcheck disable=SC2119
    if [ -z "$(lab_missing_tools)" ]; then
        return 0
    fi
    lab_log "installing packages: $LAB_PACKAGES"
    echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $LAB_PACKAGES >/dev/null ||
        { apt-get update >/dev/null &&
          DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $LAB_PACKAGES >/dev/null; } ||
        lab_die "apt-get install failed"
    # The packages' own instances stay off; the lab runs private ones.
    systemctl disable --now postfix dovecot >/dev/null 2>&1 || true
    local m
    # shellcheck disable=SC2119
    m=$(lab_missing_tools)
    [ -z "$m" ] || lab_die "still missing after install: $m"
}

lab_netns_available() {
    local probe=smlabprobe$$
    ip netns add "$probe" 2>/dev/null || return 1
    ip netns del "$probe"
}

# --- lifecycle -----------------------------------------------------------------

lab_init() {
    LAB_TMP=$(mktemp -d /tmp/smtpsniff-lab.XXXXXX)
    chmod 755 "$LAB_TMP"
    # Postfix writes its log only below maillog_file_prefixes (/var by default).
    LAB_LOGDIR=$(mktemp -d /var/log/smtpsniff-lab.XXXXXX)
    chmod 755 "$LAB_LOGDIR"
    mkdir -p "$LAB_TMP/log" "$LAB_TMP/cap"
    trap lab_teardown EXIT
    trap 'exit 130' INT TERM
}

lab_teardown() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    [ -n "${CAP_PID:-}" ] && kill -INT "$CAP_PID" 2>/dev/null && wait "$CAP_PID" 2>/dev/null
    local p
    for p in "${LAB_PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    if [ -n "$LAB_TMP" ] && [ -f "$LAB_TMP/postfix/etc/main.cf" ]; then
        lab_s postfix -c "$LAB_TMP/postfix/etc" stop >/dev/null 2>&1
    fi
    if [ -n "$LAB_TMP" ] && [ -f "$LAB_TMP/dovecot/dovecot.conf" ]; then
        lab_s dovecot -c "$LAB_TMP/dovecot/dovecot.conf" stop >/dev/null 2>&1
    fi
    for p in "${LAB_PIDS[@]}"; do
        wait "$p" 2>/dev/null
    done
    local ns pids
    for ns in "$NS_C" "$NS_R" "$NS_S"; do
        ip netns list 2>/dev/null | grep -qw "^$ns" || continue
        # Whatever is still running inside the lab's own namespaces was started by the lab.
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            pids=$(ip netns pids "$ns" 2>/dev/null)
            [ -z "$pids" ] && break
            # shellcheck disable=SC2086
            kill $pids 2>/dev/null
            sleep 0.3
        done
        pids=$(ip netns pids "$ns" 2>/dev/null)
        # shellcheck disable=SC2086
        [ -n "$pids" ] && kill -9 $pids 2>/dev/null
        ip netns del "$ns" 2>/dev/null
    done
    if [ "$rc" != 0 ] && [ -n "$LAB_LOGDIR" ] && [ -f "$LAB_LOGDIR/maillog" ]; then
        echo "--- last lines of the lab's mail log ---" >&2
        tail -n 20 "$LAB_LOGDIR/maillog" >&2
    fi
    if [ "${LAB_KEEP:-0}" = 1 ]; then
        echo "lab files kept: $LAB_TMP $LAB_LOGDIR" >&2
    else
        [ -n "$LAB_TMP" ] && rm -rf "$LAB_TMP"
        [ -n "$LAB_LOGDIR" ] && rm -rf "$LAB_LOGDIR"
    fi
    [ -n "${LAB_ON_EXIT:-}" ] && $LAB_ON_EXIT "$rc"
    exit "$rc"
}

# --- network -------------------------------------------------------------------

lab_offloads_off() {  # ns dev
    ip netns exec "$1" ethtool -K "$2" tx off gso off tso off gro off >/dev/null 2>&1 ||
        ip netns exec "$1" ethtool -K "$2" tx off gso off gro off >/dev/null 2>&1 ||
        lab_warn "ethtool could not turn offloads off on $2"
}

lab_net_up() {
    local ns a
    for ns in "$NS_C" "$NS_R" "$NS_S"; do
        ip netns add "$ns"
        ip netns exec "$ns" ip link set lo up
    done
    ip link add c0 netns "$NS_C" type veth peer name rc netns "$NS_R"
    ip link add s0 netns "$NS_S" type veth peer name rs netns "$NS_R"

    lab_r sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
    lab_s sysctl -qw net.ipv4.ip_default_ttl=58 net.ipv6.conf.all.hop_limit=58 \
        net.ipv6.conf.default.hop_limit=58 net.ipv6.conf.s0.hop_limit=58
    for ns in "$NS_C" "$NS_R" "$NS_S"; do
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 \
            net.ipv6.conf.all.router_solicitations=0 net.ipv6.conf.default.router_solicitations=0 2>/dev/null
    done

    lab_c ip addr add "$C4/24" dev c0
    lab_c ip addr add "$C4B/24" dev c0
    lab_c ip -6 addr add "$C6/64" dev c0 nodad
    lab_r ip addr add "$R4C/24" dev rc
    lab_r ip -6 addr add "$R6C/64" dev rc nodad
    lab_r ip addr add "$R4S/24" dev rs
    lab_r ip -6 addr add "$R6S/64" dev rs nodad
    for a in $(seq 2 17); do
        lab_s ip addr add "10.25.2.$a/24" dev s0
    done
    lab_s ip -6 addr add "$S6/64" dev s0 nodad

    lab_offloads_off "$NS_C" c0
    lab_offloads_off "$NS_R" rc
    lab_offloads_off "$NS_R" rs
    lab_offloads_off "$NS_S" s0
    lab_c ip link set c0 up
    lab_r ip link set rc up
    lab_r ip link set rs up
    lab_s ip link set s0 up
    lab_c ip route add default via "$R4C"
    lab_c ip -6 route add default via "$R6C"
    lab_s ip route add default via "$R4S"
    lab_s ip -6 route add default via "$R6S"
    # Resolve neighbours now, so the first scenario's capture has no extra delay.
    lab_c python3 -c 'import socket,sys
for a in sys.argv[1:]:
    s = socket.socket(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"x", (a, 9))' "$S_MX" "$S6" 2>/dev/null || true
    sleep 0.5
}

lab_fw() { lab_r iptables "$@"; }
lab_fw6() { lab_r ip6tables "$@"; }
lab_fw_reset() {
    lab_r iptables -F FORWARD
    lab_r ip6tables -F FORWARD
}

# --- TLS and SASL --------------------------------------------------------------

lab_certs() {
    local d=$LAB_TMP/tls
    mkdir -p "$d"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
        -keyout "$d/mx.key" -out "$d/mx.crt" -subj "/O=smtpsniff lab/CN=mx.example.net" \
        -addext "subjectAltName=DNS:mx.example.net,DNS:smtp.example.net" 2>/dev/null ||
        lab_die "openssl req failed"
    chmod 644 "$d/mx.crt"
    chmod 640 "$d/mx.key"
}

lab_dovecot_start() {
    local d=$LAB_TMP/dovecot u
    mkdir -p "$d/run" "$d/state"
    : >"$d/users"
    for u in $LAB_USERS; do
        echo "${u%%:*}:{PLAIN}${u#*:}" >>"$d/users"
    done
    chmod 640 "$d/users"
    chgrp dovecot "$d/users" 2>/dev/null
    cat >"$d/dovecot.conf" <<EOF
# Authentication only: Postfix asks it over a socket in its queue directory.
protocols =
instance_name = $LAB_ID-dovecot
base_dir = $d/run
state_dir = $d/state
log_path = $LAB_LOGDIR/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login cram-md5
auth_failure_delay = 0
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $d/users
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}
# No growing per-IP penalty: the captures should show the same delay every run.
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service auth {
  unix_listener $LAB_TMP/postfix/queue/private/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
}
EOF
    lab_s dovecot -c "$d/dovecot.conf" || lab_die "dovecot did not start (see $LAB_LOGDIR/dovecot.log)"
    local i
    for i in $(seq 50); do
        [ -S "$LAB_TMP/postfix/queue/private/auth" ] && return 0
        sleep 0.1
    done
    lab_die "dovecot auth socket did not appear"
}

# --- Postfix -------------------------------------------------------------------

LAB_PF=
lab_postconf() { postconf -c "$LAB_PF" -e "$@"; }

# smtpd service line for master.cf: addr:port, then -o overrides (one per arg).
lab_pf_service() {
    local listen=$1 o
    shift
    printf '%s inet n - n - - smtpd\n' "$listen"
    for o in "$@"; do
        printf '  -o %s\n' "$o"
    done
}

lab_postfix_config() {
    local base=$LAB_TMP/postfix
    LAB_PF=$base/etc
    mkdir -p "$LAB_PF" "$base/queue" "$base/data" "$base/maps"
    chown postfix:postfix "$base/data"
    local M=$base/maps

    # Access maps (texthash: read as plain text, no postmap needed).
    cat >"$M/recipient_access" <<'EOF'
unknown@example.net   550 5.1.1 User unknown in local recipient table
grey@example.net      450 4.2.0 Greylisted, please try again in 300 seconds
full@example.net      452 4.2.2 Mailbox full, try again later
over@example.net      552 5.2.2 Mailbox full, quota exceeded
EOF
    cat >"$M/sender_access" <<'EOF'
busy@example.org      451 4.3.0 Temporary lookup failure, try again later
EOF
    cat >"$M/blocklist.cidr" <<EOF
$C4B/32     554 5.7.1 Service unavailable; Client host [$C4B] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/$C4B
EOF

    cat >"$LAB_PF/main.cf" <<EOF
# Private lab instance: nothing is delivered anywhere (discard transport).
compatibility_level = 3.6
queue_directory = $base/queue
data_directory = $base/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.example.net
mydomain = example.net
myorigin = \$mydomain
mydestination = \$myhostname, example.net
mynetworks = 127.0.0.0/8 [::1]/128
inet_interfaces = all
inet_protocols = all
local_recipient_maps =
alias_maps =
alias_database =
local_transport = discard:local
virtual_transport = discard:virtual
relay_transport = discard:relay
default_transport = discard:remote
biff = no
smtpd_peername_lookup = no
# "disconnect from unknown[ip]:port": the log line names the capture's connection.
smtpd_client_port_logging = yes
maillog_file = $LAB_LOGDIR/maillog
smtpd_banner = \$myhostname ESMTP Postfix
message_size_limit = 10240000
smtpd_tls_cert_file = $LAB_TMP/tls/mx.crt
smtpd_tls_key_file = $LAB_TMP/tls/mx.key
smtpd_tls_security_level = may
smtpd_tls_auth_only = no
smtpd_tls_loglevel = 1
smtpd_tls_session_cache_database =
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = private/auth
broken_sasl_auth_clients = no
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions = check_recipient_access texthash:$M/recipient_access
smtpd_sender_restrictions = check_sender_access texthash:$M/sender_access
smtpd_client_connection_count_limit = 50
anvil_rate_time_unit = 60s
smtpd_error_sleep_time = 0
postscreen_cache_map = btree:\$data_directory/postscreen_cache
EOF

    local tls_off='smtpd_tls_security_level=none' sasl_off='smtpd_sasl_auth_enable=no'
    {
        cat <<'EOF'
# service type  private unpriv  chroot  wakeup  maxproc command + args
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
        # The MX (AUTH only on submission) and the submission port, IPv4 and IPv6.
        lab_pf_service "$S_MX:25" "$sasl_off"
        lab_pf_service "[$S6]:25" "$sasl_off"
        lab_pf_service "$S_MX:587" 'syslog_name=postfix/submission'
        # Port 465 speaking plain SMTP (no smtpd_tls_wrappermode): a misconfigured
        # "SMTPS" port whose banner comes in clear.
        lab_pf_service "$S_MX:465" 'syslog_name=postfix/plain465' "$sasl_off" "$tls_off"
        lab_pf_service "[$S6]:587" 'syslog_name=postfix/submission'
        # An old, misconfigured relay: Sendmail 8.9.3 banner, "mynetworks" is everyone.
        lab_pf_service "$S_LEGACY:25" 'syslog_name=postfix/legacy' 'myhostname=mail.oldcorp.example' \
            '{ smtpd_banner = mail.oldcorp.example ESMTP Sendmail 8.9.3/8.9.3; Mon, 15 Mar 1999 10:12:31 +0100 }' \
            'mynetworks=0.0.0.0/0' 'smtpd_recipient_restrictions=' 'smtpd_sender_restrictions=' \
            "$tls_off" "$sasl_off"
        # A submission server that relays for its LAN without AUTH (mynetworks).
        lab_pf_service "$S_TRUST:587" 'syslog_name=postfix/trusting' 'myhostname=smtp.example.net' \
            'mynetworks=127.0.0.0/8,10.25.1.0/24' 'smtpd_recipient_restrictions=' "$tls_off"
        # A customer's MX whose client check names a DNS block list.
        lab_pf_service "$S_CUSTOMER:25" 'syslog_name=postfix/customer' 'myhostname=mx.customer.example' \
            'mydestination=customer.example' \
            "smtpd_client_restrictions=check_client_access,cidr:$M/blocklist.cidr" "$sasl_off" "$tls_off"
        # Banner only after a pause (client restrictions evaluated at connect).
        lab_pf_service "$S_SLOW:25" 'syslog_name=postfix/slow' 'smtpd_delay_reject=no' \
            "{ smtpd_client_restrictions = sleep $LAB_BANNER_DELAY }" "$sasl_off" "$tls_off"
        # Overloaded: one connection per client, the next one is refused with 421.
        lab_pf_service "$S_BUSY:25" 'syslog_name=postfix/busy' 'smtpd_client_connection_count_limit=1' \
            'smtpd_client_event_limit_exceptions=' "$sasl_off" "$tls_off"
        # Size limit, greylisting-like deferrals, full mailboxes.
        lab_pf_service "$S_LIMITS:25" 'syslog_name=postfix/limits' 'message_size_limit=20000' \
            'smtpd_delay_reject=no' "$sasl_off" "$tls_off"
        # STARTTLS advertised... by a server whose certificate cannot be loaded.
        lab_pf_service "$S_NOTLS:25" 'syslog_name=postfix/notls' \
            "smtpd_tls_cert_file=$LAB_TMP/tls/missing.crt" "smtpd_tls_key_file=$LAB_TMP/tls/missing.key" "$sasl_off"
        # PIPELINING not advertised.
        lab_pf_service "$S_NOPIPE:25" 'syslog_name=postfix/nopipe' 'smtpd_discard_ehlo_keywords=pipelining' "$sasl_off" "$tls_off"
        # Bare LF refused (the SMTP smuggling defence of Postfix 3.7.10+).
        lab_pf_service "$S_STRICT:25" 'syslog_name=postfix/strict' 'smtpd_forbid_bare_newline=reject' \
            'smtpd_forbid_bare_newline_exclusions=' "$sasl_off" "$tls_off"
        # A second MX behind a firewall that inspects SMTP (the died-after-DATA cases).
        lab_pf_service "$S_FW:25" 'syslog_name=postfix/fw' 'myhostname=mx2.example.net' "$sasl_off" "$tls_off"
        # An impatient server: drops a client idle for a few seconds.
        lab_pf_service "$S_IDLE:25" 'syslog_name=postfix/idle' 'smtpd_timeout=4s' "$sasl_off" "$tls_off"
    } >"$LAB_PF/master.cf"
}

lab_postfix_start() {
    rm -f "$LAB_TMP/postfix/data/postscreen_cache"*    # fresh postscreen cache every run
    postfix -c "$LAB_PF" check >"$LAB_TMP/log/postfix-check.log" 2>&1 ||
        { cat "$LAB_TMP/log/postfix-check.log" >&2; lab_die "postfix check failed"; }
    chown -R postfix "$LAB_TMP/postfix/queue/private" 2>/dev/null
    lab_s postfix -c "$LAB_PF" start >"$LAB_TMP/log/postfix-start.log" 2>&1 ||
        { cat "$LAB_TMP/log/postfix-start.log" >&2; lab_die "postfix did not start"; }
    lab_wait_port "$S_MX" 25 || lab_die "postfix does not listen on $S_MX:25"
    lab_wait_port "$S6" 587 || lab_die "postfix does not listen on [$S6]:587"
}

lab_postfix_reload() {
    lab_s postfix -c "$LAB_PF" reload >/dev/null 2>&1
    sleep 1
}

lab_wait_port() {  # addr port: wait until something listens in the server namespace
    for _ in $(seq 50); do
        lab_s ss -Hltn "sport = :$2" 2>/dev/null | grep -qF "$1" && return 0
        sleep 0.1
    done
    return 1
}

lab_stub_start() {  # mode addr port
    lab_s python3 "$LAB_LIB_DIR/stubserver.py" "$1" "$2" "$3" --lifetime 900 &
    LAB_PIDS+=($!)
    lab_wait_port "$2" "$3" || lab_die "stub server $1 did not start"
}

# Everything except the captures.  LAB_MINIMAL=1: no TLS, no SASL (Postfix,
# tcpdump and python3 are then all the lab needs).
lab_bring_up() {
    lab_init
    lab_net_up
    [ "${LAB_MINIMAL:-0}" = 1 ] || lab_certs
    lab_postfix_config
    if [ "${LAB_MINIMAL:-0}" = 1 ]; then
        lab_postconf smtpd_sasl_auth_enable=no smtpd_tls_security_level=none \
            smtpd_tls_cert_file= smtpd_tls_key_file=
    fi
    postfix -c "$LAB_PF" check >/dev/null 2>&1 || true   # creates the queue directories
    mkdir -p "$LAB_TMP/postfix/queue/private"
    chown postfix "$LAB_TMP/postfix/queue/private"
    [ "${LAB_MINIMAL:-0}" = 1 ] || lab_dovecot_start
    lab_postfix_start
}

# --- captures ------------------------------------------------------------------

CAP_PID=
CAP_RAW=
CAP_OUT=
CAP_KIND=

# lab_cap_start OUTFILE KIND [IFACE [FILTER]]
#   KIND eth    tcpdump -i IFACE, Ethernet, pcap
#        sll2   tcpdump -i any -y LINUX_SLL2, restricted to IFACE by ifindex, pcap
#        ng     tcpdump -i IFACE, then editcap -F pcapng
#        dumpcap dumpcap -i IFACE, pcapng as written by dumpcap
lab_cap_start() {
    local out=$1 kind=$2 ifc=${3:-rc} filter=${4:-tcp}
    CAP_OUT=$out
    CAP_KIND=$kind
    CAP_RAW=$LAB_TMP/cap/$(basename "$out").raw
    local err
    err=$LAB_TMP/log/capture-$(basename "$out").log
    rm -f "$CAP_RAW"
    case $kind in
    eth | ng)
        ip netns exec "$NS_R" tcpdump -i "$ifc" -nn -s 0 --immediate-mode -U -w "$CAP_RAW" "$filter" 2>"$err" &
        CAP_PID=$! ;;
    sll2)
        local idx
        idx=$(lab_r cat "/sys/class/net/$ifc/ifindex")
        ip netns exec "$NS_R" tcpdump -i any -y LINUX_SLL2 -nn -s 0 --immediate-mode -U -w "$CAP_RAW" \
            "ifindex $idx and $filter" 2>"$err" &
        CAP_PID=$! ;;
    dumpcap)
        ip netns exec "$NS_R" dumpcap -q -i "$ifc" -s 0 -f "$filter" -w "$CAP_RAW" 2>"$err" &
        CAP_PID=$! ;;
    *) lab_die "unknown capture kind $kind" ;;
    esac
    for _ in $(seq 100); do
        grep -qiE 'listening on|capturing on' "$err" 2>/dev/null && break
        kill -0 "$CAP_PID" 2>/dev/null || { cat "$err" >&2; lab_die "capture did not start"; }
        sleep 0.05
    done
    sleep 0.2
}

lab_cap_stop() {
    sleep 0.5   # let the last FIN/ACK through
    kill -INT "$CAP_PID" 2>/dev/null
    wait "$CAP_PID" 2>/dev/null
    CAP_PID=
    mkdir -p "$(dirname "$CAP_OUT")"
    case $CAP_KIND in
    ng) editcap -F pcapng "$CAP_RAW" "$CAP_OUT" || lab_die "editcap failed" ;;
    *) cp "$CAP_RAW" "$CAP_OUT" ;;
    esac
    chmod 644 "$CAP_OUT"
    lab_log "wrote $CAP_OUT ($(stat -c %s "$CAP_OUT") bytes)"
}

# --- clients -------------------------------------------------------------------

# lab_run LOGNAME cmd...: run a client in the client namespace, transcript to a log.
lab_run() {
    local name=$1
    shift
    local log=$LAB_TMP/log/$name.log
    ip netns exec "$NS_C" "$@" >"$log" 2>&1
    local rc=$?
    echo "rc=$rc" >>"$log"
    return 0
}

lab_swaks() {  # LOGNAME swaks-args...
    local name=$1
    shift
    lab_run "$name" swaks --timeout 15 --helo ws1.example.net --hide-informational "$@"
}

lab_smtpc() {  # LOGNAME smtpclient-args...
    local name=$1
    shift
    lab_run "$name" python3 "$LAB_LIB_DIR/smtpclient.py" "$@"
}

# lab_expect LOGNAME REGEX...: every extended regex must match the client's transcript.
lab_expect() {
    local name=$1 re
    shift
    for re in "$@"; do
        grep -qE -- "$re" "$LAB_TMP/log/$name.log" ||
            lab_warn "$name: expected /$re/ in its transcript ($LAB_TMP/log/$name.log)"
    done
}

# Postfix's own count of a session's commands, as its "disconnect from" log line
# has it ("ehlo=1 mail=2/3 rcpt=1 data=1 quit=1 commands=6/7": accepted/sent).
# lab_pf_mark before the sessions; lab_pf_commands N prints "PORT COUNTS" for
# the first N sessions that ended since the mark, waiting for their log lines.
LAB_PF_MARK=0
lab_pf_mark() { LAB_PF_MARK=$({ wc -l <"$LAB_LOGDIR/maillog"; } 2>/dev/null || echo 0); }
lab_pf_commands() {
    local want=$1 lines
    for _ in $(seq 50); do
        lines=$(tail -n +"$((LAB_PF_MARK + 1))" "$LAB_LOGDIR/maillog" 2>/dev/null |
            sed -n 's/.* disconnect from [^[]*\[[^]]*\]:\([0-9]*\) \(.*\)$/\1 \2/p')
        [ "$(printf '%s' "$lines" | grep -c .)" -ge "$want" ] && break
        sleep 0.1
    done
    printf '%s\n' "$lines" | grep . | head -n "$want"
}

lab_password() {  # user -> password
    local u
    for u in $LAB_USERS; do
        [ "${u%%:*}" = "$1" ] && { echo "${u#*:}"; return; }
    done
    [ "$1" = "$LAB_BAD_USER" ] && echo "$LAB_BAD_PASS"
}
