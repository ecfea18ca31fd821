#!/usr/bin/env python3
"""Regenerates the TLS fixtures of tests/unit/test_tls.c: real handshakes between
`openssl s_server` and `openssl s_client` on 127.0.0.1, recorded by a relay in the middle,
one file per direction (tests/unit/data/tls12-client.bin, tls12-server.bin, tls13-*.bin).

Keys and certificates are made fresh each run, so the certificate validity dates and the
SHA-256 fingerprint checked by test_tls.c change: update them from the printed values.

usage: scripts/gen-tls-fixtures.py [SOURCE_DIR]
"""
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time

SNI = "mx.example.test"


def run(*args, cwd):
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def make_certs(d):
    """A small CA and a leaf signed by it, EC P-256 keys to keep the fixtures small."""
    run("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key",
        cwd=d)
    run("openssl", "req", "-x509", "-new", "-key", "ca.key", "-days", "3650", "-subj",
        "/O=smtpsniff tests/CN=smtpsniff Test CA", "-out", "ca.pem", cwd=d)
    run("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "leaf.key",
        cwd=d)
    run("openssl", "req", "-new", "-key", "leaf.key", "-subj",
        "/O=smtpsniff tests/CN=" + SNI, "-out", "leaf.csr", cwd=d)
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:%s\n" % SNI)
    run("openssl", "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "825", "-extfile", "ext.cnf", "-out", "leaf.pem", cwd=d)
    out = subprocess.run(["openssl", "x509", "-in", "leaf.pem", "-noout", "-subject",
                          "-issuer", "-dates", "-fingerprint", "-sha256",
                          "-nameopt", "RFC2253"],
                         cwd=d, check=True, capture_output=True, text=True).stdout
    print(out, end="")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def relay(listener, server_port, record):
    """Accepts one connection, forwards it to the server, records each direction."""
    c, _ = listener.accept()
    s = socket.create_connection(("127.0.0.1", server_port))
    peers = {c: (s, "client"), s: (c, "server")}
    open_socks = [c, s]
    while open_socks:
        ready, _, _ = select.select(open_socks, [], [], 5)
        if not ready:
            break
        for sock in ready:
            data = sock.recv(65536)
            other, name = peers[sock]
            if not data:
                open_socks.remove(sock)
                try:
                    other.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                continue
            record[name] += data
            other.sendall(data)
    c.close()
    s.close()


def capture(d, name, server_args, client_args):
    server_port = free_port()
    srv = subprocess.Popen(["openssl", "s_server", "-accept", "127.0.0.1:%d" % server_port,
                            "-cert", "leaf.pem", "-key", "leaf.key", "-cert_chain", "ca.pem",
                            "-rev", "-naccept", "1"] + server_args,
                           cwd=d, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    while True:
        line = srv.stdout.readline()
        if not line or line.startswith("ACCEPT"):
            break
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    record = {"client": b"", "server": b""}
    t = threading.Thread(target=relay, args=(listener, server_port, record))
    t.start()
    cli = subprocess.Popen(["openssl", "s_client", "-connect",
                            "127.0.0.1:%d" % listener.getsockname()[1], "-servername", SNI,
                            "-quiet"] + client_args,
                           cwd=d, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    cli.stdin.write(b"EHLO client.example.test\n")
    cli.stdin.flush()
    time.sleep(1.0)
    cli.stdin.close()
    cli.wait(timeout=10)
    t.join(timeout=10)
    srv.kill()
    srv.wait()
    listener.close()
    return record


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    out = os.path.join(src, "tests", "unit", "data")
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        make_certs(d)
        cases = {
            "tls12": (["-alpn", "smtp"],
                      ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256", "-alpn",
                       "smtp,x-other"]),
            "tls13": ([], ["-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384"]),
        }
        for name, (sargs, cargs) in cases.items():
            rec = capture(d, name, sargs, cargs)
            for direction in ("client", "server"):
                path = os.path.join(out, "%s-%s.bin" % (name, direction))
                with open(path, "wb") as f:
                    f.write(rec[direction])
                print("%s: %d bytes" % (path, len(rec[direction])))


if __name__ == "__main__":
    main()
