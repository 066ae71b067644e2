#!/usr/bin/env python3
"""Re-read testdata/notices/*.eml independently of the generator and compare with
golden.json: every file must parse as RFC 5322 + MIME without defects, carry the
required headers, decode in its declared charset, and yield exactly the golden
language, delivery, layout, metadata, values, extra rows and class.

This is a second, simple reader (Python's email package plus a small HTML
parser), not the project's parser; it exists to catch generator mistakes.
Standard library only.   python3 testdata/gen/check_fixtures.py
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import sys
import datetime as dt
from email.utils import getaddresses, parseaddr
from zoneinfo import ZoneInfo
from html.parser import HTMLParser
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_fixtures import ATTR, W, classify, clean, unflow  # noqa: E402

DIR = Path(__file__).resolve().parent.parent / "notices"
TRUSTED = {"noreply@eiam.admin.ch"}
PREFIX = re.compile(r"^\s*((wg|aw|fwd|fw|tr|i)\s*:\s*)+", re.I)


def lab(s: str) -> str:
    return clean(s).rstrip(":").strip(" \u00a0\t").casefold()


class H(HTMLParser):
    """HTML to lines, plus the tables as lists of rows of cell texts."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.lines, self.cur = [], ""
        self.tables, self.row, self.cell, self.intable = [], None, None, 0

    def nl(self):
        self.lines.append(self.cur)
        self.cur = ""

    def handle_starttag(self, tag, attrs):
        if tag == "br":
            self.nl()
        elif tag == "table":
            self.intable += 1
            self.tables.append([])
        elif tag == "tr":
            self.row = []
        elif tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if tag in ("p", "div", "tr", "h1", "blockquote"):
            self.nl()
        if tag in ("td", "th") and self.row is not None:
            self.row.append(self.cell)
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.tables[-1].append(self.row)
            self.row = None
        elif tag == "table":
            self.intable -= 1

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data
        elif not self.intable:
            self.cur += data.replace("\n", " ")


def texts(msg):
    """(plain, html, plain_part) of the first text parts outside message/rfc822."""
    plain = html = None
    ppart = None
    for part in msg.walk():
        if part.get_content_type() == "message/rfc822":
            break
        if part.get_content_type() == "text/plain" and plain is None:
            plain = part.get_content()
            ppart = part
            if part.get_param("format") == "flowed":
                plain = unflow(plain.replace("\r\n", "\n"), (part.get_param("delsp") or "").lower() == "yes")
        elif part.get_content_type() == "text/html" and html is None:
            html = part.get_content()
    for t in (plain, html):
        assert t is None or "\ufffd" not in t, "undecodable bytes"
    return (plain.replace("\r\n", "\n") if plain else None), (html.replace("\r\n", "\n") if html else None), ppart


def find_lang_by_body(lines):
    for code, w in W.items():
        if any(w["meta"][0] + ":" in ln for ln in lines):
            return code
    return None


def parse_rows(lines, code):
    w = W[code]
    meta, extra_meta = {}, []
    names = dict(zip(("profile_id", "application", "organisation", "signed_in_raw"), w["meta"]))
    inv = {v.casefold(): k for k, v in names.items()}
    for ln in lines:
        if ":" in ln and "|" not in ln:
            k, v = ln.split(":", 1)
            if k.strip().casefold() in inv:
                meta[inv[k.strip().casefold()]] = clean(v)
    # unknown metadata rows: between the first and the last known metadata row or right after
    idx = [i for i, ln in enumerate(lines) if ":" in ln and ln.split(":", 1)[0].strip().casefold() in inv]
    if idx:
        i = idx[0]
        while i < len(lines) and lines[i].strip() and ":" in lines[i] and "|" not in lines[i]:
            k, v = lines[i].split(":", 1)
            if k.strip().casefold() not in inv:
                extra_meta.append({"label": clean(k), "value": clean(v)})
            i += 1
    return meta, extra_meta


def attr_key(label, code):
    w = W[code]
    label = lab(label)
    for k in ATTR:
        if label in [x.casefold() for x in w[k]]:
            return k
    return None


def read_comparison_text(lines, code):
    w = W[code]
    # text table?
    for i, ln in enumerate(lines):
        cells = [clean(c) for c in ln.split("|")]
        if len(cells) >= 2 and lab(cells[0]) == w["attr"].casefold():
            if len(cells) < 3 or lab(cells[2]) != w["act"].casefold():
                return "text-table", None
            rows = []
            for ln2 in lines[i + 1:]:
                if not ln2.strip():
                    break
                if re.fullmatch(r"[-+ ]+", ln2):
                    continue
                c = ln2.split("|")
                rows.append((c[0], c[1], c[2] if len(c) > 2 else ""))
            return "text-table", rows
    # blocks?
    heads = {}
    for i, ln in enumerate(lines):
        s = clean(ln)
        if s in (w["exp"] + ":", w["act"] + ":"):
            heads[s[:-1]] = i
    if w["exp"] in heads:
        if w["act"] not in heads:
            return "blocks", None
        sides = {}
        for h, i in heads.items():
            vals = []
            for ln in lines[i + 1:]:
                if not ln.strip():
                    break
                k, v = ln.split(":", 1)
                vals.append((k, v))
            sides[h] = vals
        rows = [(k, v, sides[w["act"]][n][1]) for n, (k, v) in enumerate(sides[w["exp"]])]
        return "blocks", rows
    return None, None


def read_comparison_html(tables, code):
    w = W[code]
    for t in tables:
        if t and lab(t[0][0]) == w["attr"].casefold():
            if len(t[0]) < 3:
                return "html-table", None
            return "html-table", [tuple(r) for r in t[1:]]
    return None, None


def values(rows, code):
    exp = {"given_name": "", "family_name": "", "email": ""}
    act = dict(exp)
    keys = {"g": "given_name", "f": "family_name", "e": "email"}
    extra = []
    for label, ev, av in rows:
        k = attr_key(label, code)
        if k is None:
            extra.append({"label": clean(label), "expected": clean(ev), "actual": clean(av)})
        else:
            exp[keys[k]], act[keys[k]] = clean(ev), clean(av)
    return exp, act, extra


def from_addr(msg):
    return parseaddr(str(msg.get("From", "")))[1].lower()


def ascii_fold(a: str) -> str:
    return "".join(c.lower() if "A" <= c <= "Z" else c for c in a)


def addr(v) -> str:
    return ascii_fold(parseaddr(str(v or ""))[1])


def subject_name(subj: str) -> str:
    m = re.search(r"\s[\u2013\u2014-]\s*(.*)$", PREFIX.sub("", subj))
    return " ".join(m.group(1).split()) if m else ""


def swiss(raw: str) -> str:
    d = dt.datetime.strptime(raw, "%d.%m.%Y %H:%M").replace(tzinfo=ZoneInfo("Europe/Zurich"))
    return d.isoformat()


def subject_lang(subj):
    s = PREFIX.sub("", subj)
    for code, w in W.items():
        pat = re.escape(w["subject"]).replace(r"\ :", r"\s*:") + r"\s*[\u2013-]\s*\S"
        if re.match(pat, s):
            return code
    return None


def check_file(path: Path, g: dict) -> list[str]:
    raw = path.read_bytes()
    errs = []
    for ln in raw.split(b"\n"):
        if len(ln) > 998:
            errs.append("line longer than 998")
    head = raw.split(b"\n\n", 1)[0]
    if any(c > 127 for ln in head.split(b"\n") if not ln.startswith((b"From:", b"To:")) for c in ln):
        errs.append("8-bit header")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    for h in ("Message-ID", "Date", "From", "To", "Subject", "MIME-Version"):
        if msg.get(h) is None:
            errs.append(f"missing {h}")
    try:
        assert msg["Date"].datetime is not None
        getaddresses([str(msg["To"])])
    except Exception as e:  # noqa: BLE001
        errs.append(f"bad header: {e}")
    for part in msg.walk():
        if part.defects:
            errs.append(f"defects {part.defects}")
        if part.get_content_type() == "message/rfc822":
            inner = part.get_content()
            for p2 in inner.walk():
                if p2.defects:
                    errs.append(f"inner defects {p2.defects}")
    got: dict = {}
    # --- not-a-notice by headers
    ctype = msg.get_content_type()
    subj = str(msg["Subject"])
    if msg.get("X-Eiamtriage") or from_addr(msg) == "eiamtriage@be.ch":
        got = {"class": "not-a-notice", "not_a_notice": "own-mail"}
    elif ctype == "multipart/report":
        got = {"class": "not-a-notice", "not_a_notice": "dsn"}
    elif str(msg.get("Auto-Submitted", "no")).lower().startswith("auto-replied"):
        got = {"class": "not-a-notice", "not_a_notice": "auto-reply"}
    elif msg.get("List-Id") or msg.get("List-Unsubscribe"):
        got = {"class": "not-a-notice", "not_a_notice": "list-mail"}
    if got:
        return errs + compare(g, got, path)
    # --- locate the notice, whoever sent it: attached, quoted inline, or the mail itself
    loc = locate(msg)
    if loc is None:
        if msg.get("List-Id"):
            return errs + compare(g, {"class": "not-a-notice", "not_a_notice": "list-mail"}, path)
        return errs + compare(g, {"class": "not-a-notice", "not_a_notice": "no-notice-subject"}, path)
    notice, delivery, subj, env = loc["holder"], loc["delivery"], loc["subject"], loc["env"]
    quoted = env["from"]
    body_lines, tables = None, None
    code = subject_lang(subj)
    if code is None:  # no notice subject: the language of the headings
        plain, html, _ = texts(notice)
        code = next((c for c, w in W.items() if w["exp"] in (plain or html or "")), None)
    if code is None:
        return errs + compare(g, {"class": "not-a-notice", "not_a_notice": "no-notice-subject"}, path)
    got = {"language": code, "delivery": delivery, "subject": subj, "subject_name": subject_name(subj)}
    got.update(env)
    sender_kind = sender_rule(quoted)
    if sender_kind:
        got["not_a_notice"] = sender_kind
    q = daemon_trust(raw, msg, quoted, env.get("forwarders", []))
    if q:
        got["quarantine"] = q
    plain, html, _ = texts(notice)
    layout, rows = None, None
    if html:
        h = H()
        h.feed(html)
        body_lines, tables = h.lines + [h.cur], h.tables
        layout, rows = read_comparison_html(tables, code)
    if plain:
        # like the Go parser: the text part of an alternative wins when it holds the comparison
        tl, tr = read_comparison_text(plain.split("\n"), code)
        if tl is not None or layout is None:
            body_lines = plain.split("\n")
            layout, rows = tl, tr
    if plain and html:
        # the text part must agree with the html part
        _, r2 = read_comparison_text(plain.split("\n"), code)
        if r2 is not None and rows is not None and values(r2, code) != values(rows, code):
            errs.append("text and html parts disagree")
    meta, extra_meta = parse_rows(body_lines, code)
    if body_lines and find_lang_by_body(body_lines) not in (code, None):
        errs.append(f"body language {find_lang_by_body(body_lines)} != subject language {code}")
    got.update(meta)
    if "signed_in_raw" in meta:
        got["signed_in_at"] = swiss(meta["signed_in_raw"])
    if rows is None:
        got["unreadable"] = True
        got["class"] = "review"
        got["expected"] = got["actual"] = {"given_name": "", "family_name": "", "email": ""}
        if extra_meta:
            got["extra_rows"] = extra_meta
    else:
        got["layout"] = layout
        exp, act, extra_attr = values(rows, code)
        got["expected"], got["actual"] = exp, act
        if extra_meta + extra_attr:
            got["extra_rows"] = extra_meta + extra_attr
        got["class"] = classify(tuple(exp.values()), tuple(act.values()))[0]
    if sender_kind:
        got["class"] = "not-a-notice"
    if not got.get("subject_name"):
        got.pop("subject_name")
    return errs + compare(g, got, path)


FROM_L = r"(Von|De|Da|From|Mittente)"
SUBJ_L = r"(Betreff|Objet|Oggetto|Subject|Sujet)"
TO_L = r"(An|À|A|To|Pour)"
MARKER = re.compile(r"^\s*-{5,}.*-{5,}\s*$|^\s*(Begin forwarded message|Anfang der weitergeleiteten Nachricht|"
                    r"Début du message réexpédié|Inizio messaggio inoltrato)\s*:\s*$|^_{10,}$")


def lab_value(line, labels):
    m = re.match(r"\s*" + labels + r"\s*:\s*(.*)$", line)
    return m.group(2).strip() if m else None


def quoted_addr(v):
    m = re.search(r"mailto:([^\]\s]+)\]", v)
    a = m.group(1) if m else parseaddr(v)[1]
    return ascii_fold(a) if a.count("@") == 1 else ""


def body_lines_of(msg):
    plain, html, _ = texts(msg)
    if plain:
        return plain.split("\n"), []
    if html:
        h = H()
        h.feed(html)
        return h.lines + [h.cur], h.tables
    return [], []


def header_blocks(lines, tables):
    """The forward header blocks in a body, in order: (from, to, subject)."""
    blocks = []
    i = 0
    while i < len(lines):
        f = lab_value(lines[i], FROM_L)
        before = [x for x in lines[max(0, i - 10):i] if x.strip()][-4:]
        window = before + [x for x in lines[i:i + 12] if x.strip()][:5]
        if f is not None and "@" in f and any(lab_value(x, SUBJ_L) is not None for x in window):
            to = next((lab_value(x, TO_L) for x in window if lab_value(x, TO_L) is not None), "")
            subj = next(lab_value(x, SUBJ_L) for x in window if lab_value(x, SUBJ_L) is not None)
            blocks.append((quoted_addr(f), [quoted_addr(to)] if quoted_addr(to) else None, subj))
            i += 4
        i += 1
    for t in tables:  # Thunderbird's header table: two cells a row
        rows = {re.sub(r"\s*:\s*$", "", r[0].strip()): r[1].strip() for r in t if len(r) == 2}
        f = next((v for k, v in rows.items() if re.fullmatch(FROM_L, k)), None)
        if f:
            to = next((v for k, v in rows.items() if re.fullmatch(TO_L, k)), "")
            blocks.append((quoted_addr(f), [quoted_addr(to)] if to else None,
                           next(v for k, v in rows.items() if re.fullmatch(SUBJ_L, k))))
    return blocks


def notice_like(msg) -> bool:
    lines, tables = body_lines_of(msg)
    text = "\n".join(lines) + str(tables)
    return subject_lang(str(msg["Subject"] or "")) is not None or any(
        w["exp"] in text and w["act"] in text for w in W.values())


def locate(msg):
    """Where the notice is: attached (at any depth), quoted under header blocks, or the mail itself."""
    for i, part in enumerate(msg.iter_parts() if msg.is_multipart() else [], 1):
        if part.get_content_type() != "message/rfc822":
            continue
        r = locate(part.get_content())
        if r is None:
            continue
        lines, tables = body_lines_of(msg)
        env = r["env"]
        env["forwarders"] = [addr(msg["From"])] + [b[0] for b in header_blocks(lines, tables)] + env.get("forwarders", [])
        env["outer_message_id"] = str(msg["Message-ID"])
        if r["delivery"] == "direct":
            r["delivery"] = "attached-forward"
            env["part"] = str(i)
        elif env.get("part"):
            env["part"] = f"{i}.{env['part']}"
        env.pop("_direct", None)
        return r
    lines, tables = body_lines_of(msg)
    blocks = header_blocks(lines, tables)
    if blocks:
        f, to, subj = blocks[-1]
        env = {"from": f, "date": msg["Date"].datetime.isoformat(), "outer_message_id": str(msg["Message-ID"]),
               "forwarders": [addr(msg["From"])] + [b[0] for b in blocks[:-1]]}
        if to:
            env["to"] = to
        return {"holder": msg, "delivery": "inline-forward", "subject": subj, "env": env}
    if not notice_like(msg):
        return None
    env = {"from": addr(msg["From"]), "message_id": str(msg["Message-ID"]),
           "to": [ascii_fold(a) for _, a in getaddresses([str(msg["To"])])], "date": msg["Date"].datetime.isoformat()}
    return {"holder": msg, "delivery": "direct", "subject": str(msg["Subject"]), "env": env}


EIAM = {"noreply@eiam.admin.ch"}
SUPERUSERS = {"martina.graf@be.ch", "peter.aebi@be.ch"}  # deploy/eiamtriage.example.yaml, mailbox be


def plain_ascii(a):
    return a.count("@") == 1 and a.isascii() and "." in a.split("@")[1]


def sender_rule(notice_from):
    if not plain_ascii(notice_from):
        return "ambiguous-sender"
    return None if notice_from in EIAM else "untrusted-sender"


def daemon_trust(raw, msg, notice_from, forwarders):
    """Sender authentication as NOTICE.md section 5 says, read from the file: the topmost
    Authentication-Results of mx.be.ch decides."""
    outer = addr(msg["From"])
    if not plain_ascii(outer):
        return "ambiguous-sender"
    if forwarders and forwarders[0] not in SUPERUSERS:
        return "untrusted-forwarder"
    kind = sender_rule(notice_from)
    if kind:
        return kind
    head = raw.split(b"\n\n", 1)[0].decode("utf-8")
    ars = [re.sub(r"\s+", " ", v) for v in re.findall(r"^Authentication-Results:(.*(?:\n[ \t].*)*)", head, re.M)]
    ars = [v.strip() for v in ars if v.strip().startswith("mx.be.ch;")]
    if not ars:
        return "unauthenticated"
    dom = outer.split("@")[1]
    top = ars[0]
    if re.search(r"dmarc=pass header\.from=" + re.escape(dom) + r"\b", top) or \
            re.search(r"dkim=pass header\.d=(\S+)", top) and dom.endswith(re.search(r"dkim=pass header\.d=([^\s;]+)", top).group(1)):
        return None
    return "unauthenticated"


def compare(g, got, path):
    errs = []
    for k, v in got.items():
        if g.get(k) != v:
            errs.append(f"{k}: golden {g.get(k)!r} read {v!r}")
    for k in g:
        if k not in got and k != "covers":
            errs.append(f"golden has {k} the reader did not produce")
    return errs


def main():
    golden = json.loads((DIR / "golden.json").read_text(encoding="utf-8"))
    files = sorted(p.name for p in DIR.glob("*.eml"))
    bad = 0
    if sorted(golden) != files:
        print("golden.json and files differ:", set(golden) ^ set(files))
        bad += 1
    ids = {}
    for name in files:
        raw = (DIR / name).read_bytes()
        mid = email.message_from_bytes(raw, policy=email.policy.default)["Message-ID"]
        if mid in ids:
            print(f"{name}: Message-ID shared with {ids[mid]}")
            bad += 1
        ids[mid] = name
        errs = check_file(DIR / name, golden[name])
        for e in errs:
            print(f"{name}: {e}")
        bad += bool(errs)
    print(f"{len(files)} files, {bad} with problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
