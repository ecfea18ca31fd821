# deps.sh - sourced by the entry scripts: installs the Debian packages a task needs.
# Usage: deps_need PKG...   (installs the missing ones with apt-get when root; otherwise
# prints the exact command to run and exits 1).

deps_missing() {
    local p missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    echo "${missing[@]}"
}

deps_need() {
    local missing
    missing=$(deps_missing "$@")
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "smtpsniff: these Debian packages are missing: $missing" >&2
        echo "install them with: sudo apt-get install -y $missing" >&2
        exit 1
    fi
    echo "installing: $missing" >&2
    # Postfix asks how to configure itself; the lab configures private instances itself.
    echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    if ! apt-get install -y -q --no-install-recommends $missing >/dev/null; then
        apt-get update -q >/dev/null
        # shellcheck disable=SC2086
        apt-get install -y -q --no-install-recommends $missing >/dev/null
    fi
}

# What building smtpsniff needs.
# libpsl-dev and publicsuffix: the Public Suffix List the relay rules compare domains with
# (libpsl reads the system's copy when it is newer than its own). zlib1g-dev: gzip-compressed
# captures (-r x.pcap.gz).
DEPS_BUILD="build-essential cmake pkg-config libpcap-dev libnids-dev libssl-dev libjansson-dev \
libpsl-dev publicsuffix zlib1g-dev"
# What the test suite needs besides: the cross-checks (tshark), captures (tcpdump), JSON
# assertions (jq), peak memory (time), the fuzz and sanitizer builds (clang, libFuzzer), and
# the real-traffic lab (Postfix, Dovecot, swaks, namespaces, firewall); a headless browser
# that loads the --html page (chromium).
DEPS_TEST="tshark tcpdump jq time clang libclang-rt-14-dev clang-format python3 \
postfix dovecot-core swaks libnet-ssleay-perl libauthen-sasl-perl libdigest-hmac-perl \
libio-socket-inet6-perl iptables nftables iproute2 ethtool netcat-openbsd openssl procps \
chromium"
