#!/usr/bin/env python3
"""Stand-in SMTP servers for lab cases a real MTA will not produce.

    stubserver.py MODE ADDR PORT

MODE "silent": accept connections and never send a banner (an overloaded
server whose kernel completes the handshake but whose daemon never answers);
a connection is held until the client closes it.

MODE "masked": an MTA seen through a firewall's SMTP inspection that masks
the EHLO keywords it does not allow, letter for letter (STARTTLS becomes
"XXXXXXXA", AUTH PLAIN LOGIN "XXXXXXXXXXXXXXXB", CHUNKING "XXXXXXXC"), so the
client never learns of them.  Accepts and discards messages.

Stops by itself after --lifetime seconds (default 600).  Standard library only.
"""

import argparse
import socket
import sys
import threading
import time

MASKED_EHLO = [
    "250-mx.example.net",
    "250-PIPELINING",
    "250-SIZE 10240000",
    "250-XXXXXXXA",
    "250-XXXXXXXXXXXXXXXB",
    "250-ENHANCEDSTATUSCODES",
    "250-8BITMIME",
    "250-XXXXXXXC",
    "250 SMTPUTF8",
]


def serve_silent(conn):
    conn.settimeout(None)
    while True:
        try:
            if not conn.recv(4096):
                break
        except OSError:
            break
    conn.close()


def serve_masked(conn):
    f = conn.makefile("rb")

    def say(*lines):
        conn.sendall("".join(l + "\r\n" for l in lines).encode())

    say("220 mx.example.net ESMTP")
    in_data = False
    while True:
        line = f.readline()
        if not line:
            break
        text = line.decode("latin-1").rstrip("\r\n")
        if in_data:
            if text == ".":
                in_data = False
                say("250 2.0.0 Ok: queued as 4XyZ1n2q3r")
            continue
        verb = text.split(" ", 1)[0].upper()
        if verb == "EHLO":
            say(*MASKED_EHLO)
        elif verb == "HELO":
            say("250 mx.example.net")
        elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
            say("250 2.1.0 Ok")
        elif verb == "DATA":
            in_data = True
            say("354 End data with <CR><LF>.<CR><LF>")
        elif verb == "QUIT":
            say("221 2.0.0 Bye")
            break
        else:
            say("502 5.5.2 Error: command not recognized")
    conn.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["silent", "masked"])
    p.add_argument("addr")
    p.add_argument("port", type=int)
    p.add_argument("--lifetime", type=float, default=600)
    a = p.parse_args()
    family = socket.AF_INET6 if ":" in a.addr else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.addr, a.port))
    s.listen(16)
    s.settimeout(1.0)
    handler = serve_silent if a.mode == "silent" else serve_masked
    deadline = time.time() + a.lifetime
    while time.time() < deadline:
        try:
            conn, _ = s.accept()
        except socket.timeout:
            continue
        threading.Thread(target=handler, args=(conn,), daemon=True).start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
