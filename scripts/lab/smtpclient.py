#!/usr/bin/env python3
"""Scripted SMTP client for the smtpsniff lab.

Sends what ordinary clients will not: BDAT chunks (also pipelined, with LAST),
pipelined command groups, LF-only end-of-data, bare-LF smuggling attempts,
lines longer than 1000 bytes, commands the server never advertised.  Standard
library only.  The transcript goes to stdout ("C: " client, "S: " server) so
the lab can check that each scenario went the way it should.

    smtpclient.py [--bind ADDR] [--timeout S] [--helo NAME] [--from A]
                  [--to A ...] HOST PORT RECIPE [ARG...]

Recipes: see RECIPES at the bottom.  "chat" takes steps: "wait", "wait:N",
"send:TEXT" (escapes \\r \\n \\t \\\\), "sleep:S", "close".
"""

import argparse
import socket
import sys
import time


class Timeout(Exception):
    pass


class Closed(Exception):
    pass


def log(prefix, data):
    text = data.decode("latin-1") if isinstance(data, bytes) else data
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for line in lines:
        if len(line) > 200:
            line = line[:120] + "...[%d bytes]" % len(line)
        print(prefix + line.rstrip("\r"), flush=True)


class Session:
    def __init__(self, args):
        self.args = args
        self.sock = None
        self.buf = b""

    # -- connection ------------------------------------------------------
    def connect(self, timeout=None):
        a = self.args
        infos = socket.getaddrinfo(a.host, a.port, 0, socket.SOCK_STREAM)
        family, _, _, _, addr = infos[0]
        s = socket.socket(family, socket.SOCK_STREAM)
        if a.bind:
            s.bind((a.bind, 0))
        s.settimeout(timeout if timeout is not None else a.timeout)
        s.connect(addr)
        s.settimeout(a.timeout)
        self.sock = s
        print("*: connected %s port %s" % (a.host, a.port), flush=True)

    def send(self, data, show=True):
        if isinstance(data, str):
            data = data.encode("latin-1")
        if show:
            log("C: ", data)
        self.sock.sendall(data)

    def _line(self):
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise Timeout()
            if not chunk:
                raise Closed()
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def reply(self):
        """Read one complete (possibly multi-line) reply; return (code, lines)."""
        lines = []
        while True:
            try:
                line = self._line()
            except Timeout:
                print("S: <no reply within %gs>" % self.args.timeout, flush=True)
                raise
            except Closed:
                print("S: <connection closed>", flush=True)
                raise
            log("S: ", line)
            lines.append(line.decode("latin-1").rstrip("\r\n"))
            if len(line) < 4 or line[3:4] != b"-":
                break
        try:
            code = int(lines[-1][:3])
        except ValueError:
            code = 0
        return code, lines

    def replies(self, n):
        return [self.reply() for _ in range(n)]

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.reply()

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None
            print("*: closed", flush=True)

    # -- building blocks -------------------------------------------------
    def greet(self):
        self.reply()
        return self.cmd("EHLO " + self.args.helo)

    def message(self, subject, body_lines, eol="\r\n"):
        a = self.args
        hdr = [
            "From: <%s>" % a.mail_from,
            "To: <%s>" % a.to[0],
            "Subject: %s" % subject,
            "Date: %s" % time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
            "Message-ID: <%d.%s@%s>" % (int(time.time() * 1000), subject.split()[0].lower(), a.helo),
        ] + list(a.header or []) + [""]
        return eol.join(hdr + body_lines) + eol

    def envelope(self):
        a = self.args
        return ["MAIL FROM:<%s>" % a.mail_from] + ["RCPT TO:<%s>" % t for t in a.to]


def pause(s=0.2):
    time.sleep(s)


# -- recipes ---------------------------------------------------------------

def r_send(s, argv):
    """One ordinary message, lock-step."""
    s.connect()
    s.greet()
    for c in s.envelope():
        s.cmd(c)
    s.cmd("DATA")
    s.send(s.message("Lab message", ["Hello from the lab."]) + ".\r\n")
    s.reply()
    s.cmd("QUIT")


def r_pipeline(s, argv):
    """Three transactions in one connection, command groups pipelined, RSET between."""
    s.connect()
    s.greet()
    pause()
    # group 1: MAIL, RCPT, RCPT, DATA in one write (RFC 2920)
    env = s.envelope()
    s.send("".join(c + "\r\n" for c in env + ["DATA"]))
    s.replies(len(env) + 1)
    s.send(s.message("Pipelined one", ["First message of the batch."]) + ".\r\n")
    s.reply()
    pause()
    # group 2: RSET, MAIL, RCPT (one refused), DATA
    s.send("RSET\r\nMAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nRCPT TO:<unknown@example.net>\r\nDATA\r\n"
           % (s.args.mail_from, s.args.to[0]))
    s.replies(5)
    s.send(s.message("Pipelined two", ["Second message of the batch."]) + ".\r\n")
    s.reply()
    pause()
    # group 3: a transaction abandoned with RSET, then a third message
    s.send("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nRSET\r\n" % (s.args.mail_from, s.args.to[0]))
    s.replies(3)
    s.send("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (s.args.mail_from, s.args.to[0]))
    s.replies(3)
    s.send(s.message("Pipelined three", ["Third message of the batch."]) + ".\r\n" + "QUIT\r\n")
    s.replies(2)


def r_bdat(s, argv):
    """CHUNKING: lock-step chunks, then a fully pipelined BDAT transaction."""
    s.connect()
    s.greet()
    pause()
    msg = s.message("Chunked one", ["Line %03d of a chunked message." % i for i in range(40)])
    msg = msg.encode()
    a, b = msg[:700], msg[700:]
    for c in s.envelope():
        s.cmd(c)
    s.send(b"BDAT %d\r\n" % len(a), show=True)
    s.send(a, show=False)
    s.reply()
    s.send(b"BDAT %d\r\n" % len(b))
    s.send(b, show=False)
    s.reply()
    s.cmd("BDAT 0 LAST")
    pause()
    # pipelined: MAIL, RCPT, BDAT n, data, BDAT m LAST, data in one write
    msg = s.message("Chunked two", ["Pipelined chunk line %03d." % i for i in range(20)]).encode()
    a, b = msg[:300], msg[300:]
    env = s.envelope()
    out = "".join(c + "\r\n" for c in env).encode()
    out += b"BDAT %d\r\n" % len(a) + a + b"BDAT %d LAST\r\n" % len(b) + b
    log("C: ", "".join(c + "\r\n" for c in env))
    log("C: ", "BDAT %d\r\n[%d bytes]\r\nBDAT %d LAST\r\n[%d bytes]\r\n" % (len(a), len(a), len(b), len(b)))
    s.send(out, show=False)
    s.replies(len(env) + 2)
    s.cmd("QUIT")


def r_lf_eod(s, argv):
    """A message whose lines and end-of-data all use bare LF."""
    s.connect()
    s.greet()
    for c in s.envelope():
        s.cmd(c)
    s.cmd("DATA")
    s.send(s.message("LF only", ["Every line of this message ends in a bare LF."], eol="\n") + ".\n")
    s.reply()
    s.cmd("QUIT")


def r_smuggle(s, argv):
    """SMTP smuggling attempt: a second envelope hidden behind a non-standard end-of-data.

    argv[0]: "lf" -> <LF>.<LF>, "crlf-lf" -> <CR><LF>.<LF>, "cr" -> <CR>.<CR><LF>,
    "lf-crlf" -> <LF>.<CR><LF>."""
    kind = argv[0] if argv else "lf"
    seps = {"lf": "\n.\n", "crlf-lf": "\r\n.\n", "cr": "\r.\r\n", "lf-crlf": "\n.\r\n"}
    sep = seps[kind]
    s.connect()
    s.greet()
    for c in s.envelope():
        s.cmd(c)
    s.cmd("DATA")
    body = s.message("Smuggling test " + kind, ["Innocent first message."]).rstrip("\r\n")
    hidden = ("MAIL FROM:<ceo@bank.example>\r\nRCPT TO:<%s>\r\nDATA\r\n"
              "From: <ceo@bank.example>\r\nTo: <%s>\r\nSubject: Smuggled\r\n\r\n"
              "This message was smuggled.\r\n" % (s.args.to[0], s.args.to[0]))
    s.send(body + sep + hidden + ".\r\n")
    # One reply if the server saw one message; five if it split the stream at
    # the hidden end-of-data; an error if it refused the bare line ending.
    s.args.timeout = 2.0
    s.sock.settimeout(2.0)
    try:
        while True:
            code, _ = s.reply()
            if code == 421 or code >= 500:
                break
    except (Timeout, Closed):
        pass
    try:
        s.cmd("QUIT")
    except (Timeout, Closed, OSError):
        pass


def r_longline(s, argv):
    """Body lines over the 1000-byte limit of RFC 5321 (1500 and 2100 bytes)."""
    s.connect()
    s.greet()
    for c in s.envelope():
        s.cmd(c)
    s.cmd("DATA")
    line1 = "A" * 1500
    line2 = "".join(chr(ord("a") + i % 26) for i in range(2100))
    s.send(s.message("Long lines", ["Two long lines follow.", line1, line2, "End."]) + ".\r\n")
    s.reply()
    s.cmd("QUIT")


def r_hold(s, argv):
    """EHLO, then stay idle for argv[0] seconds (or until killed), then QUIT."""
    secs = float(argv[0]) if argv else 30
    s.connect()
    s.greet()
    print("*: holding %gs" % secs, flush=True)
    time.sleep(secs)
    s.cmd("QUIT")


def r_banner_wait(s, argv):
    """Connect and wait argv[0] seconds for a banner; give up and close if none."""
    secs = float(argv[0]) if argv else 8
    s.args.timeout = secs
    s.connect()
    try:
        code, _ = s.reply()
    except (Timeout, Closed):
        s.close()
        return
    s.args.timeout = 10
    if code == 220:
        s.cmd("EHLO " + s.args.helo)
        s.cmd("QUIT")


def r_connect(s, argv):
    """Only connect (timeout argv[0] s) and report how it went; QUIT if it worked."""
    secs = float(argv[0]) if argv else 5
    try:
        s.connect(timeout=secs)
    except socket.timeout:
        print("*: connect timed out after %gs" % secs, flush=True)
        return
    except ConnectionRefusedError:
        print("*: connection refused", flush=True)
        return
    try:
        code, _ = s.reply()
        s.cmd("QUIT")
    except (Timeout, Closed):
        pass


def r_auth_unadvertised(s, argv):
    """AUTH PLAIN to a server whose EHLO reply offers no AUTH."""
    import base64
    user, pw = argv[0], argv[1]
    s.connect()
    s.greet()
    tok = base64.b64encode(("\0%s\0%s" % (user, pw)).encode()).decode()
    s.cmd("AUTH PLAIN " + tok)
    s.cmd("QUIT")


def r_starttls_refused(s, argv):
    """STARTTLS that the server cannot honour; carry on in clear, then QUIT."""
    s.connect()
    s.greet()
    s.cmd("STARTTLS")
    s.cmd("QUIT")


def r_pipeline_unadvertised(s, argv):
    """Pipelined command group to a server that does not advertise PIPELINING."""
    s.connect()
    s.greet()
    env = s.envelope()
    s.send("".join(c + "\r\n" for c in env + ["DATA"]))
    try:
        s.replies(len(env) + 1)
        s.send(s.message("Unadvertised pipelining", ["Sent pipelined without PIPELINING."]) + ".\r\n")
        s.reply()
        s.cmd("QUIT")
    except (Timeout, Closed):
        pass


def r_big(s, argv):
    """A message of about argv[0] bytes sent in lock-step (no SIZE parameter)."""
    size = int(argv[0]) if argv else 30000
    s.connect()
    s.greet()
    for c in s.envelope():
        s.cmd(c)
    s.cmd("DATA")
    lines = ["%05d %s" % (i, "x" * 70) for i in range(size // 78 + 1)]
    s.send(s.message("Large message", lines) + ".\r\n", show=False)
    log("C: ", "[message of about %d bytes]\r\n.\r\n" % size)
    try:
        s.reply()
        s.cmd("QUIT")
    except (Timeout, Closed):
        pass


def r_size_declared(s, argv):
    """MAIL FROM with a SIZE= larger than the server's limit."""
    size = int(argv[0]) if argv else 500000
    s.connect()
    s.greet()
    s.cmd("MAIL FROM:<%s> SIZE=%d" % (s.args.mail_from, size))
    s.cmd("QUIT")


def r_chat(s, argv):
    """Generic steps: wait, wait:N, send:TEXT, sleep:S, close."""
    s.connect()
    for step in argv:
        verb, _, arg = step.partition(":")
        if verb == "wait":
            s.replies(int(arg) if arg else 1)
        elif verb == "send":
            s.send(arg.encode("latin-1").decode("unicode_escape"))
        elif verb == "sleep":
            time.sleep(float(arg))
        elif verb == "close":
            s.close()
            return
        else:
            raise SystemExit("unknown step: " + step)


RECIPES = {
    "send": r_send,
    "pipeline": r_pipeline,
    "bdat": r_bdat,
    "lf-eod": r_lf_eod,
    "smuggle": r_smuggle,
    "longline": r_longline,
    "hold": r_hold,
    "banner-wait": r_banner_wait,
    "connect": r_connect,
    "auth-unadvertised": r_auth_unadvertised,
    "starttls-refused": r_starttls_refused,
    "pipeline-unadvertised": r_pipeline_unadvertised,
    "big": r_big,
    "size-declared": r_size_declared,
    "chat": r_chat,
}


def main():
    p = argparse.ArgumentParser(description="scripted SMTP client (smtpsniff lab)")
    p.add_argument("--bind", help="local source address")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for a reply")
    p.add_argument("--helo", default="client.example.org")
    p.add_argument("--from", dest="mail_from", default="sender@example.org")
    p.add_argument("--to", action="append", help="recipient (repeatable)")
    p.add_argument("--header", action="append", help="extra message header line (repeatable)")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("recipe", choices=sorted(RECIPES))
    p.add_argument("rest", nargs="*")
    args = p.parse_args()
    if not args.to:
        args.to = ["postmaster@example.net"]
    s = Session(args)
    rc = 0
    try:
        RECIPES[args.recipe](s, args.rest)
    except (Timeout, Closed):
        rc = 3
    except OSError as e:
        print("*: error: %s" % e, flush=True)
        rc = 2
    finally:
        s.close()
    return rc


if __name__ == "__main__":
    sys.exit(main())
