#!/usr/bin/env python3
"""Generate the eIAM mismatch-notice test fixtures of eiamtriage.

Writes testdata/notices/*.eml and testdata/notices/golden.json. Python 3.11
standard library only; deterministic (fixed seed, no clock), so running it twice
gives byte-identical files.

    python3 testdata/gen/gen_fixtures.py            # (re)write the fixtures
    python3 testdata/gen/check_fixtures.py          # re-read them independently

The wording follows docs/NOTICE.md sections 2-4 and the samples in shared/samples.
Every fixture states the class it must get; the generator recomputes the class
with a small reference implementation of section 4 and refuses to write a
fixture whose stated class disagrees.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import quopri
import random
import re
import sys
import unicodedata
from email.utils import format_datetime
from html.entities import codepoint2name
from pathlib import Path

SEED = 20260315
HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "notices"

EIAM = "eIAM <noreply@eiam.admin.ch>"
MAILBOX = "triage@be.ch"
SERVICE = "eiamtriage@be.ch"

PYCS = {"utf-8": "utf-8", "iso-8859-1": "latin-1", "windows-1252": "cp1252", "us-ascii": "ascii"}

# ---------------------------------------------------------------- wording (spec section 2)

W = {
    "de": dict(
        subject="eIAM: Abweichende Benutzerdaten",
        greet="Guten Tag",
        intro="Beim Onboarding wurden Abweichungen zwischen den im eIAM-Portal erfassten Daten "
        "und den Daten des angemeldeten Benutzers festgestellt.",
        close="Diese Nachricht wurde automatisch erstellt. Bitte antworten Sie nicht darauf.",
        meta=("Profil-ID", "Anwendung", "Organisation", "Anmeldung am"),
        attr="Attribut", exp="Im eIAM-Portal erfasst", act="Angemeldeter Benutzer",
        g=["Vorname"], f=["Nachname", "Name"], e=["E-Mail", "E-Mail-Adresse"], x="Sprache",
        lang={"de": "Deutsch", "fr": "Französisch", "it": "Italienisch", "en": "Englisch"},
        orgs=["Kanton Bern", "Kanton Zürich", "Kanton Aargau", "Kanton St. Gallen",
              "Kanton Basel-Stadt", "Kanton Graubünden", "Kanton Luzern"],
    ),
    "fr": dict(
        subject="eIAM : Incohérence des données utilisateur",
        greet="Bonjour",
        intro="Lors de l'onboarding, une incohérence a été constatée entre les données saisies "
        "dans le portail eIAM et les données de l'utilisateur connecté.",
        close="Ce message a été généré automatiquement. Merci de ne pas y répondre.",
        meta=("ID du profil", "Application", "Organisation", "Connexion le"),
        attr="Attribut", exp="Saisi dans le portail eIAM", act="Utilisateur connecté",
        g=["Prénom"], f=["Nom", "Nom de famille"], e=["E-mail", "Adresse e-mail", "Courriel"],
        x="Langue",
        lang={"de": "Allemand", "fr": "Français", "it": "Italien", "en": "Anglais"},
        orgs=["Canton de Vaud", "Canton de Genève", "Canton de Neuchâtel", "Canton du Valais",
              "Canton de Fribourg", "Canton du Jura"],
    ),
    "it": dict(
        subject="eIAM: Dati utente non corrispondenti",
        greet="Buongiorno",
        intro="Durante l'onboarding sono state rilevate differenze tra i dati registrati nel "
        "portale eIAM e i dati dell'utente connesso.",
        close="Questo messaggio è stato generato automaticamente. Si prega di non rispondere.",
        meta=("ID del profilo", "Applicazione", "Organizzazione", "Accesso il"),
        attr="Attributo", exp="Registrato nel portale eIAM", act="Utente connesso",
        g=["Nome"], f=["Cognome"], e=["E-mail", "Indirizzo e-mail"], x="Lingua",
        lang={"de": "Tedesco", "fr": "Francese", "it": "Italiano", "en": "Inglese"},
        orgs=["Cantone Ticino", "Cantone dei Grigioni"],
    ),
    "en": dict(
        subject="eIAM: User data mismatch",
        greet="Hello",
        intro="During onboarding, differences were found between the data entered in the "
        "eIAM portal and the data of the signed-in user.",
        close="This message was generated automatically. Please do not reply.",
        meta=("Profile ID", "Application", "Organisation", "Signed in at"),
        attr="Attribute", exp="Entered in the eIAM portal", act="Signed-in user",
        g=["First name", "Given name"], f=["Last name", "Family name", "Surname"],
        e=["E-mail", "Email address"], x="Language",
        lang={"de": "German", "fr": "French", "it": "Italian", "en": "English"},
        orgs=["Canton of Zurich", "Canton of Bern", "Canton of Vaud", "Canton of Ticino"],
    ),
}

SUPERUSERS = {
    "martina": ("Martina Graf", "martina.graf@be.ch"),
    "sara": ("Sara Bianchi", "sara.bianchi@ti.ch"),
    "olivier": ("Olivier Roch", "olivier.roch@vd.ch"),
    "nathalie": ("Nathalie Favre", "nathalie.favre@etat.ge.ch"),
    "lukas": ("Lukas Gerber", "lukas.gerber@gef.be.ch"),
    "reto": ("Reto Caduff", "reto.caduff@gr.ch"),
}
SUPERUSERS.update({
    "peter": ("Peter Aebi", "peter.aebi@be.ch"),
    # colleagues who forward a notice to a superuser (not superusers themselves)
    "claire": ("Claire Dubois", "claire.dubois@be.ch"),
    "marco": ("Marco Pellandini", "marco.pellandini@be.ch"),
    "james": ("James Miller", "james.miller@be.ch"),
    "urs": ("Urs Zbinden", "urs.zbinden@gef.be.ch"),
    "sara_lookalike": ("Sara Bianchi", "sara.b\u0130anchi@t\u0130.ch"),
})
DEFAULT_SU = {"de": "martina", "fr": "olivier", "it": "sara", "en": "nathalie"}
# Who forwards a notice to the service by default: the superusers of the example configuration's
# mailbox "be" (deploy/eiamtriage.example.yaml), whose forwards are trusted.
FWD_SU = {"de": "martina", "fr": "peter", "it": "martina", "en": "peter"}
BE_SUPERUSERS = {"martina.graf@be.ch", "peter.aebi@be.ch"}
EIAM_SENDERS = {"noreply@eiam.admin.ch"}
AUTHSERV = "mx.be.ch"  # the example configuration's authserv_id

# ---------------------------------------------------------------- reference classifier (spec section 4)

FREE_MAIL = set(
    "gmail.com googlemail.com outlook.com hotmail.com hotmail.ch hotmail.fr hotmail.it live.com "
    "msn.com yahoo.com yahoo.fr yahoo.de yahoo.it icloud.com me.com mac.com aol.com gmx.ch gmx.net "
    "gmx.de gmx.at web.de t-online.de protonmail.com protonmail.ch proton.me libero.it orange.fr "
    "free.fr laposte.net wanadoo.fr bluewin.ch sunrise.ch hispeed.ch bluemail.ch swissonline.ch "
    "mail.com yandex.com tutanota.com".split()
)
WS = " \t\r\n\u00a0\u2007\u202f"


def clean(v: str) -> str:
    """A value as the golden file holds it: trimmed of white space and NBSP."""
    return v.strip(WS)


def fold_tokens(s: str) -> list[str]:
    s = unicodedata.normalize("NFKC", s).casefold()
    for ch in "-'\u2019.":
        s = s.replace(ch, " ")
    s = "".join(c for c in unicodedata.normalize("NFD", s) if not unicodedata.combining(c))
    s = s.replace("ß", "ss")
    out = []
    for t in s.split():
        t = t.replace("ae", "a").replace("oe", "o").replace("ue", "u")
        out.append(t)
    return out


def dist(a: str, b: str) -> int:
    """Optimal string alignment distance (Levenshtein plus adjacent transposition)."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            c = 0 if a[i - 1] == b[j - 1] else 1
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + c)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def tok_match(a: str, b: str) -> bool:
    return a == b or (len(a) >= 5 and len(b) >= 5 and dist(a, b) == 1)


def subseq(small: list[str], big: list[str]) -> bool:
    it = iter(big)
    return len(small) < len(big) and all(t in it for t in small)


def name_verdict(exp, act) -> tuple[str, str]:
    eg, ef = fold_tokens(exp[0]), fold_tokens(exp[1])
    ag, af = fold_tokens(act[0]), fold_tokens(act[1])
    if eg == ag and ef == af:
        return "same", "equal"
    if ef == af and (subseq(eg, ag) or subseq(ag, eg)):
        return "same", "middle name"
    if eg == ag and (subseq(ef, af) or subseq(af, ef)):
        return "same", "double family name"
    if eg == af and ef == ag:
        return "same", "swapped"
    e_all, a_all = eg + ["|"] + ef, ag + ["|"] + af
    if len(e_all) == len(a_all):
        diffs = [(x, y) for x, y in zip(e_all, a_all) if x != y]
        if len(diffs) == 1 and "|" not in diffs[0] and tok_match(*diffs[0]):
            return "same", "typo"
    if not any(tok_match(x, y) for x in eg for y in ag):
        return "different", "no given-name token matches"
    return "partial", "given name matches, rest differs"


def domain(addr: str) -> str:
    return addr.rsplit("@", 1)[-1].lower()


def same_domain(a: str, b: str) -> bool:
    return a == b or a.endswith("." + b) or b.endswith("." + a)


def classify(exp, act, unreadable=False) -> tuple[str, str]:
    if unreadable:
        return "review", "unreadable"
    if any(v == "" for v in (*exp, *act)):
        return "review", "missing value"
    v, why = name_verdict(exp, act)
    if v == "different":
        return "wrong-person", why
    if v == "partial":
        return "review", why
    if exp[2].lower() != act[2].lower():
        if domain(act[2]) in FREE_MAIL:
            return "private-email", why + ", private address"
        if same_domain(domain(exp[2]), domain(act[2])):
            return "negligible", why + ", same domain"
        return "review", why + ", other domain"
    return "negligible", why


# ---------------------------------------------------------------- MIME helpers


class Part:
    def __init__(self, headers, body: bytes):
        self.headers = headers
        self.body = body

    def bytes(self) -> bytes:
        h = "".join(fold(k, v) for k, v in self.headers)
        return h.encode("utf-8") + b"\n" + self.body


def fold(name: str, value: str, width: int = 76) -> str:
    """Fold a header at spaces; value must be ASCII (encoded words already applied), but for an
    address in From or To, which may be UTF-8 as RFC 6532 allows (the look-alike senders)."""
    if name not in ("From", "To") or value.isascii():
        value.encode("ascii")
    if "\n" in value:  # pre-folded
        return f"{name}: {value}\n"
    words = value.split(" ")
    lines, cur = [], f"{name}:"
    for i, w in enumerate(words):
        if len(cur) + 1 + len(w) > width and i > 0:
            lines.append(cur)
            cur = " " + w
        else:
            cur = cur + " " + w
    lines.append(cur)
    return "\n".join(lines) + "\n"


def q_encode_bytes(b: bytes) -> str:
    out = []
    for c in b:
        ch = chr(c)
        if ch.isascii() and (ch.isalnum() or ch in "!*+-/"):
            out.append(ch)
        elif c == 0x20:
            out.append("_")
        else:
            out.append("=%02X" % c)
    return "".join(out)


def encoded_words(text: str, cs: str, enc: str) -> list[str]:
    pre = f"=?{cs}?{enc}?"
    words, cur = [], ""
    for ch in text:
        b = ch.encode(PYCS[cs])
        if enc == "q":
            piece = q_encode_bytes(b)
            if len(pre) + len(cur) + len(piece) + 2 > 66:
                words.append(cur)
                cur = ""
            cur += piece
        else:
            raw = base64.b64decode(cur) if cur else b""
            if len(pre) + len(base64.b64encode(raw + b).decode()) + 2 > 66:
                words.append(cur)
                raw = b""
            cur = base64.b64encode(raw + b).decode()
    words.append(cur)
    return [f"{pre}{w}?=" for w in words if w]


def enc_header(s: str, style: str = "q") -> str:
    """RFC 2047: 'q'/'b' encode runs of non-ASCII words (utf-8), 'qfull'/'bfull' the whole
    value, 'latin1'/'cp1252' runs in that charset with Q, 'ascii' asserts no encoding needed."""
    if style == "ascii":
        s.encode("ascii")
        return s
    cs, enc, full = "utf-8", "q", False
    if style == "b":
        enc = "b"
    elif style == "qfull":
        full = True
    elif style == "bfull":
        enc, full = "b", True
    elif style == "latin1":
        cs = "iso-8859-1"
    elif style == "cp1252":
        cs = "windows-1252"
    if full:
        return " ".join(encoded_words(s, cs, enc))
    toks = s.split(" ")
    out, run = [], []

    def flush():
        if run:
            out.extend(encoded_words(" ".join(run), cs, enc))
            run.clear()

    for t in toks:
        if t.isascii():
            flush()
            out.append(t)
        else:
            run.append(t)
    flush()
    return " ".join(out)


def leaf(ctype: str, text: str, cs: str, cte: str, flowed: str | None = None) -> Part:
    params = f'{ctype}; charset="{cs}"'
    if flowed:
        params += "; format=flowed" + ("; delsp=yes" if flowed == "delsp" else "")
    errors = "xmlcharrefreplace" if ctype == "text/html" else "strict"
    data = text.encode(PYCS[cs], errors=errors)
    if cte == "7bit":
        assert all(c < 128 for c in data), f"7bit body has 8-bit data: {text[:60]!r}"
        body = data
    elif cte == "8bit":
        body = data
    elif cte == "quoted-printable":
        body = quopri.encodestring(data)
    elif cte == "base64":
        body = base64.encodebytes(data.replace(b"\n", b"\r\n"))
    else:
        raise ValueError(cte)
    return Part([("Content-Type", params), ("Content-Transfer-Encoding", cte)], body)


def boundary(rng: random.Random) -> str:
    return "===============" + str(rng.randrange(10**18, 10**19)) + "=="


def multipart(sub: str, parts: list[Part], rng: random.Random, extra: str = "") -> Part:
    b = boundary(rng)
    body = b""
    for p in parts:
        body += b"--" + b.encode() + b"\n" + p.bytes()
        if not body.endswith(b"\n"):
            body += b"\n"
        body += b"\n"
    body += b"--" + b.encode() + b"--\n"
    return Part([("Content-Type", f'multipart/{sub};{extra} boundary="{b}"')], body)


def rfc822(inner: bytes, disposition: str = "attachment") -> Part:
    cte = "8bit" if any(c > 127 for c in inner) else "7bit"
    hs = [("Content-Type", "message/rfc822"), ("Content-Transfer-Encoding", cte)]
    if disposition:
        hs.append(("Content-Disposition", disposition))
    return Part(hs, inner)


def message(headers: list[tuple[str, str]], part: Part) -> bytes:
    hs = list(headers) + [("MIME-Version", "1.0")] + part.headers
    return Part(hs, part.body).bytes()


MSGID_N = [0]


def msgid(rng: random.Random, dom: str) -> str:
    MSGID_N[0] += 1
    return f"<{179555737600 + MSGID_N[0] * 7919}.{rng.randrange(1000, 9999)}.{rng.getrandbits(60)}@{dom}>"


def tz_for(d: dt.datetime) -> dt.timezone:
    # Swiss summer time 2026: 29 March 01:00 UTC to 25 October 01:00 UTC.
    summer = dt.datetime(2026, 3, 29, 3) <= d < dt.datetime(2026, 10, 25, 2)
    return dt.timezone(dt.timedelta(hours=2 if summer else 1))


def local(d: dt.datetime) -> dt.datetime:
    return d.replace(tzinfo=tz_for(d))


# ---------------------------------------------------------------- flowed text (RFC 3676)


def flow(text: str, delsp: bool, width: int = 72, wrap_all: bool = False) -> str:
    """Encode text as format=flowed: long lines get soft breaks (a trailing space, deleted
    again on reading when delsp), lines starting with space, '>' or 'From ' are
    space-stuffed, hard lines lose trailing spaces."""
    out = []
    for line in text.split("\n"):
        line = line.rstrip(" ")
        pieces = []
        while len(line) > width and (wrap_all or " | " not in line):
            if delsp:
                cut = width - 10
                pieces.append(line[:cut] + " ")
                line = line[cut:]
            else:
                cut = line.rfind(" ", 0, width)
                if cut <= 0:
                    break
                pieces.append(line[: cut + 1])
                line = line[cut + 1:]
        pieces.append(line)
        for p in pieces:
            if p.startswith((" ", ">", "From ")):
                p = " " + p
            out.append(p)
    return "\n".join(out)


def unflow(text: str, delsp: bool) -> str:
    lines, cur = [], None
    for line in text.split("\n"):
        if line.startswith(" "):
            line = line[1:]
        soft = line.endswith(" ") and line != "-- "
        if soft and delsp:
            line = line[:-1]
        cur = line if cur is None else cur + line
        if not soft:
            lines.append(cur)
            cur = None
    if cur is not None:
        lines.append(cur)
    return "\n".join(lines)


# ---------------------------------------------------------------- HTML helpers


def ent(s: str, mode: str) -> str:
    """Escape for HTML; mode decides how non-ASCII is written: raw, named, numeric, hex,
    mixed (named where there is a name, else numeric)."""
    s = html.escape(s, quote=False)
    if mode == "raw":
        return s.replace("\u00a0", "&nbsp;")
    out = []
    for ch in s:
        cp = ord(ch)
        if cp < 128:
            out.append(ch)
        elif ch == "\u00a0":
            out.append("&nbsp;" if mode in ("named", "mixed") else "&#160;")
        elif mode == "named" and cp in codepoint2name:
            out.append(f"&{codepoint2name[cp]};")
        elif mode == "hex":
            out.append(f"&#x{cp:X};")
        elif mode == "mixed" and cp in codepoint2name and ch in "äöüÄÖÜ":
            out.append(f"&{codepoint2name[cp]};")
        else:
            out.append(f"&#{cp};")
    return "".join(out)


# ---------------------------------------------------------------- the notice

ATTR = ("g", "f", "e")


class Notice:
    """One rendered notice: its texts and the golden values."""

    def __init__(self, spec: dict, rng: random.Random):
        self.s = spec
        self.rng = rng
        lang = spec["lang"]
        self.w = w = W[lang]
        self.lang = lang
        self.exp, self.act = spec["exp"], spec["act"]
        labels = spec.get("labels") or (w["g"][0], w["f"][0], w["e"][0])
        self.labels = dict(zip(ATTR, labels))
        self.order = spec.get("order", "gfe")
        self.missing = set(spec.get("missing", ""))
        self.pid = "-".join(
            "".join(rng.choice("0123456789abcdef") for _ in range(n)) for n in (8, 4, 4, 4, 12))
        self.org = spec.get("org") or rng.choice(w["orgs"])
        self.app = spec.get("app", "SpiGes")
        start = dt.datetime(2026, 1, 5, 7, 0)
        d = start + dt.timedelta(days=rng.randrange(0, 330), minutes=rng.randrange(0, 12 * 60))
        self.signed = local(d)
        self.date = self.signed + dt.timedelta(seconds=rng.randrange(5, 90))
        self.signed_raw = self.signed.strftime("%d.%m.%Y %H:%M")
        su = SUPERUSERS[spec.get("su", DEFAULT_SU[lang])]
        self.to = f"{su[0]} <{su[1]}>"
        self.su = su
        self.extra_attr = spec.get("extra_attr", [])  # (label, exp, act)
        self.extra_meta = spec.get("extra_meta", [])  # (label, value)
        self.unreadable = spec.get("unreadable")
        name = spec.get("subject_name") or " ".join(
            x for x in (clean(self.exp[0]), clean(self.exp[1])) if x)
        dash = spec.get("dash", "\u2013")
        self.subject = f"{w['subject']} {dash} {name}"
        self.subject_name = " ".join(name.split())
        if spec.get("curly"):
            self.intro = w["intro"].replace("'", "\u2019")
        else:
            self.intro = w["intro"]

    # rows in display order: (key, label, expected raw, actual raw)
    def rows(self):
        out = []
        for k in self.order:
            if k in self.missing:
                continue
            i = ATTR.index(k)
            out.append((k, self.labels[k], self.exp[i], self.act[i]))
        for lab, ev, av in self.extra_attr:
            out.append(("x", lab, ev, av))
        return out

    def meta_rows(self):
        m = self.w["meta"]
        rows = [(m[0], self.pid), (m[1], self.app), (m[2], self.org), (m[3], self.signed_raw)]
        for x in self.extra_meta:  # (label, value[, position])
            rows.insert(x[2] if len(x) > 2 else len(rows), (x[0], x[1]))
        return rows

    # --- text renderings
    def text_table(self) -> str:
        w = self.w
        hdr = [w["attr"], w["exp"], w["act"]]
        rows = [[lab, ev, av] for _, lab, ev, av in self.rows()]
        if self.unreadable == "no-actual-column":
            hdr = hdr[:2]
            rows = [r[:2] for r in rows]
        allr = [hdr] + rows
        widths = [max(len(r[i]) for r in allr) for i in range(len(hdr))]
        lines = []
        for n, r in enumerate(allr):
            cells = [r[i].ljust(widths[i]) for i in range(len(r))]
            lines.append(" | ".join(cells).rstrip(" "))
            if n == 0 and self.s.get("sep", True):
                segs = ["-" * (widths[0] + 1)] + ["-" * (x + 2) for x in widths[1:-1]] + [
                    "-" * (widths[-1] + 1)]
                lines.append("+".join(segs))
        return "\n".join(lines)

    def blocks(self) -> str:
        w = self.w
        ind = self.s.get("indent", "")
        sepr = self.s.get("block_sep", ": ")
        out = []
        sides = [(w["exp"], 2)] if self.unreadable == "no-actual-block" else [(w["exp"], 2), (w["act"], 3)]
        for heading, col in sides:
            out.append(heading + ":")
            for row in self.rows():
                v = row[col]
                line = f"{ind}{row[1]}{sepr}{v}" if v != "" else f"{ind}{row[1]}{sepr.rstrip(' ')}"
                out.append(line)
            out.append("")
        return "\n".join(out).rstrip("\n")

    def text(self, layout: str) -> str:
        w = self.w
        parts = [w["greet"], self.intro, "\n".join(f"{k}: {v}" for k, v in self.meta_rows())]
        if self.unreadable == "no-comparison":
            pass
        elif layout == "blocks":
            parts.append(self.blocks())
        else:
            parts.append(self.text_table())
        parts.append(w["close"])
        return "\n\n".join(parts) + "\n"

    # --- HTML rendering
    def html_inner(self) -> str:
        w = self.w
        o = self.s.get("html", {})
        m = o.get("ent", "raw")
        E = lambda s: ent(s, m)  # noqa: E731
        hmode = o.get("head", "th")
        out = [f"<p>{E(w['greet'])}</p>", f"<p>{E(self.intro)}</p>"]
        out.append("<p>" + "<br>".join(f"{E(k)}: {E(v)}" for k, v in self.meta_rows()) + "</p>")
        if self.unreadable != "no-comparison":
            tattr = ' border="1" cellpadding="4"' if not o.get("style") else \
                ' style="border-collapse:collapse;font-family:Arial,sans-serif" cellspacing="0"'
            out.append(f"<table{tattr}>")
            heads = [w["attr"], w["exp"], w["act"]]
            if self.unreadable == "no-actual-column":
                heads = heads[:2]
            if hmode == "th":
                hr = "<tr>" + "".join(f"<th>{E(h)}</th>" for h in heads) + "</tr>"
            else:
                hr = "<tr>" + "".join(f"<td><b>{E(h)}</b></td>" for h in heads) + "</tr>"
            if o.get("thead"):
                out.append(f"<thead>{hr}</thead>")
                out.append("<tbody>")
            else:
                out.append(hr)
            for k, lab, ev, av in self.rows():
                cells = [lab, ev, av]
                if self.unreadable == "no-actual-column":
                    cells = cells[:2]
                tds = []
                for i, c in enumerate(cells):
                    inner = E(c)
                    if i > 0 and k == "e" and o.get("mailto") and clean(c):
                        inner = f'<a href="mailto:{html.escape(clean(c))}">{E(c)}</a>'
                    if o.get("span") and i > 0:
                        inner = f'<span style="font-family:Arial">{inner}</span>'
                    tds.append(f"<td>{inner}</td>")
                if o.get("multiline"):
                    out.append("<tr>\n  " + "\n  ".join(tds) + "\n</tr>")
                else:
                    out.append("<tr>" + "".join(tds) + "</tr>")
            if o.get("thead"):
                out.append("</tbody>")
            out.append("</table>")
        out.append(f"<p><small>{E(w['close'])}</small></p>")
        return "\n".join(out)

    def html(self, cs: str) -> str:
        meta = self.s.get("html", {}).get("meta", cs)
        return (f'<html><head><meta charset="{meta}"></head><body>\n'
                + self.html_inner() + "\n</body></html>\n")

    # --- golden
    def golden_values(self):
        exp = {"given_name": "", "family_name": "", "email": ""}
        act = dict(exp)
        keys = {"g": "given_name", "f": "family_name", "e": "email"}
        for k in ATTR:
            if k in self.missing:
                continue
            i = ATTR.index(k)
            exp[keys[k]] = clean(self.exp[i])
            act[keys[k]] = clean(self.act[i])
        return exp, act

    def extra_rows(self, meta_only=False):
        out = []
        base = set(self.w["meta"])
        for k, v in self.meta_rows():
            if k not in base:
                out.append({"label": clean(k), "value": clean(v)})
        if meta_only:
            return out
        for lab, ev, av in self.extra_attr:
            out.append({"label": clean(lab), "expected": clean(ev), "actual": clean(av)})
        return out


# ---------------------------------------------------------------- forward wrappers

DAYS = {
    "de": ["Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"],
    "fr": ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"],
    "it": ["lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato", "domenica"],
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
}
MONTHS = {
    "de": "Januar Februar März April Mai Juni Juli August September Oktober November Dezember".split(),
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre".split(),
    "it": "gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre dicembre".split(),
    "en": "January February March April May June July August September October November December".split(),
}


def outlook_date(lang: str, d: dt.datetime) -> str:
    day, mon = DAYS[lang][d.weekday()], MONTHS[lang][d.month - 1]
    if lang == "de":
        return f"{day}, {d.day}. {mon} {d.year} {d:%H:%M}"
    if lang == "fr":
        return f"{day} {d.day} {mon} {d.year} {d:%H:%M}"
    if lang == "it":
        return f"{day} {d.day} {mon} {d.year} {d:%H:%M}"
    h = d.hour % 12 or 12
    return f"{day}, {mon} {d.day}, {d.year} {h}:{d:%M} {'AM' if d.hour < 12 else 'PM'}"


def gmail_date(lang: str, d: dt.datetime) -> str:
    if lang == "de":
        return f"{DAYS['de'][d.weekday()][:2]}., {d.day}. {MONTHS['de'][d.month - 1]} {d.year} um {d:%H:%M} Uhr"
    if lang == "fr":
        return f"{DAYS['fr'][d.weekday()][:3]}. {d.day} {MONTHS['fr'][d.month - 1][:4].rstrip('.')}. {d.year} à {d:%H:%M}"
    if lang == "it":
        return f"{DAYS['it'][d.weekday()][:3]} {d.day} {MONTHS['it'][d.month - 1][:3]} {d.year} alle ore {d:%H:%M}"
    h = d.hour % 12 or 12
    return f"{DAYS['en'][d.weekday()][:3]}, {MONTHS['en'][d.month - 1][:3]} {d.day}, {d.year} at {h}:{d:%M} {'AM' if d.hour < 12 else 'PM'}"


OUTLOOK_LABELS = {
    "de": ("Von:", "Gesendet:", "An:", "Betreff:"),
    "fr": ("De :", "Envoyé :", "À :", "Objet :"),
    "it": ("Da:", "Inviato:", "A:", "Oggetto:"),
    "en": ("From:", "Sent:", "To:", "Subject:"),
}
GMAIL = {
    "de": ("---------- Weitergeleitete Nachricht ----------", "Von:", "Date:", "Subject:", "To:"),
    "fr": ("---------- Message transféré ---------", "De :", "Date :", "Objet :", "À :"),
    "it": ("---------- Messaggio inoltrato ---------", "Da:", "Date:", "Subject:", "To:"),
    "en": ("---------- Forwarded message ---------", "From:", "Date:", "Subject:", "To:"),
}
FWD_TEXT = {
    "de": "Hallo zusammen\n\nzur Triage weitergeleitet.\n\nFreundliche Grüsse\n{name}",
    "fr": "Bonjour,\n\ntransmis pour triage.\n\nMeilleures salutations\n{name}",
    "it": "Buongiorno,\n\ninoltro per il triage.\n\nCordiali saluti\n{name}",
    "en": "Hi,\n\nforwarding this one for triage.\n\nBest regards\n{name}",
}
ATT_TEXT = {"de": "Siehe Anhang.", "fr": "Voir la pièce jointe.", "it": "Vedi allegato.",
            "en": "See attachment."}


def fwd_block_text(style: str, flang: str, sender: str, n: Notice) -> str:
    to = n.to
    if style == "outlook":
        lv, ls, lt, lsub = OUTLOOK_LABELS[flang]
        return ("________________________________\n"
                f"{lv} {sender}\n{ls} {outlook_date(flang, n.date)}\n{lt} {to}\n{lsub} {n.subject}\n")
    if style == "outlook-old":
        lv, ls, lt, lsub = OUTLOOK_LABELS[flang]
        mark = {"de": "-----Ursprüngliche Nachricht-----", "fr": "-----Message d'origine-----",
                "it": "-----Messaggio originale-----", "en": "-----Original Message-----"}[flang]
        addr = re.search(r"<(.*)>", sender).group(1)
        name = sender.split("<")[0].strip()
        return (f"{mark}\n{lv} {name} [mailto:{addr}]\n{ls} {outlook_date(flang, n.date)}\n"
                f"{lt} {to}\n{lsub} {n.subject}\n")
    mark, lf, ld, lsub, lt = GMAIL[flang]
    return (f"{mark}\n{lf} {sender}\n{ld} {gmail_date(flang, n.date)}\n{lsub} {n.subject}\n"
            f"{lt} <{n.su[1]}>\n")


def fwd_block_html(style: str, flang: str, sender: str, n: Notice, m: str) -> str:
    E = lambda s: ent(s, m)  # noqa: E731
    to = n.to
    if style in ("outlook", "outlook-old"):
        lv, ls, lt, lsub = OUTLOOK_LABELS[flang]
        return ('<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">\n'
                f'<p class="MsoNormal"><b>{E(lv)}</b> {E(sender)}<br>\n<b>{E(ls)}</b> '
                f"{E(outlook_date(flang, n.date))}<br>\n<b>{E(lt)}</b> {E(to)}<br>\n"
                f"<b>{E(lsub)}</b> {E(n.subject)}</p>\n</div>\n")
    if style == "outlook-plain-p":  # like sample 0006
        lv, ls, lt, lsub = OUTLOOK_LABELS[flang]
        return (f"<hr>\n<p>{E(lv)} {E(sender)}<br>{E(ls)} {E(outlook_date(flang, n.date))}<br>"
                f"{E(lt)} {E(to)}<br>{E(lsub)} {E(n.subject)}</p>\n")
    mark, lf, ld, lsub, lt = GMAIL[flang]
    name, addr = re.match(r"(.*) <(.*)>", sender).groups()
    return ('<div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
            f"{E(mark)}<br>{E(lf)} <strong class=\"gmail_sendername\" dir=\"auto\">{E(name)}</strong> "
            f'<span dir="auto">&lt;<a href="mailto:{addr}">{addr}</a>&gt;</span><br>'
            f"{E(ld)} {E(gmail_date(flang, n.date))}<br>{E(lsub)} {E(n.subject)}<br>"
            f'{E(lt)} &lt;<a href="mailto:{n.su[1]}">{n.su[1]}</a>&gt;<br></div><br><br>\n')


# ---------------------------------------------------------------- building one notice fixture


def build_notice(spec: dict, rng: random.Random):
    n = Notice(spec, rng)
    layout = spec.get("layout", "text-table")  # layout of the text/plain rendering
    mime = spec.get("mime", "plain")
    cs, cte = spec.get("cs", "utf-8"), spec.get("cte", "8bit")
    flowed = spec.get("flowed")
    sender = spec.get("from", EIAM)
    subj_style = spec.get("subj", "q")
    deliv = spec.get("delivery", "direct")

    def body_part(text_layout=layout, kind=mime, c=cs, t=cte, text_prefix="", html_wrap=None):
        txt = text_prefix + n.text(text_layout)
        if flowed:
            txt = flow(txt, flowed == "delsp", wrap_all=spec.get("flow_rows", False))
        parts = []
        if kind in ("plain", "alt"):
            parts.append(leaf("text/plain", txt, c, t, flowed))
        if kind in ("html", "alt"):
            h = html_wrap(n) if html_wrap else n.html(c)
            parts.append(leaf("text/html", h, c, t))
        return parts[0] if len(parts) == 1 else multipart("alternative", parts, rng)

    n.msgid = msgid(rng, "eiam.admin.ch")
    n.sender = sender
    inner_headers = [("From", sender), ("To", n.to), ("Subject", enc_header(n.subject, subj_style)),
                     ("Date", format_datetime(n.date)), ("Message-ID", n.msgid)]
    inner_headers += spec.get("extra_headers", [])

    if deliv == "direct":
        raw = message(inner_headers, body_part())
    elif deliv == "attached":
        inner = message(inner_headers, body_part())
        f = spec.get("fwd", {})
        flang = f.get("lang", n.lang)
        fname, faddr = SUPERUSERS[f.get("by", FWD_SU[n.lang])]
        note = f.get("note", ATT_TEXT[flang])
        if f.get("note_alt"):
            first = multipart("alternative", [
                leaf("text/plain", note + "\n", "utf-8", "quoted-printable"),
                leaf("text/html", f"<html><body><p>{ent(note, 'named')}</p></body></html>\n",
                     "utf-8", "quoted-printable")], rng)
        else:
            first = leaf("text/plain", note + "\n", "utf-8", "8bit" if not note.isascii() else "7bit")
        disp = f.get("disposition", "attachment")
        top = multipart("mixed", [first, rfc822(inner, disp)], rng)
        fsub = f.get("prefix", "WG: ") + n.subject
        d2 = n.date + dt.timedelta(minutes=rng.randrange(3, 600))
        n.outer = dict(from_=faddr, date=d2, msgid=msgid(rng, faddr.split("@")[1]))
        raw = message([("From", f"{fname} <{faddr}>"), ("To", MAILBOX),
                       ("Subject", enc_header(fsub, f.get("subj", subj_style))),
                       ("Date", format_datetime(d2)), ("Message-ID", n.outer["msgid"])],
                      top)
    else:  # inline: outlook | outlook-old | gmail ; fmime plain|html|alt
        f = spec.get("fwd", {})
        style = f.get("style", "outlook")
        flang = f.get("lang", n.lang)
        fname, faddr = SUPERUSERS[f.get("by", FWD_SU[n.lang])]
        note = f.get("note", FWD_TEXT[flang].format(name=fname))
        quoted_from = spec.get("quoted_from", sender)
        hm = spec.get("html", {}).get("ent", "raw")

        prefix_txt = note + "\n\n" + fwd_block_text(style, flang, quoted_from, n) + "\n"

        def wrap_html(nn: Notice, _c=cs):
            hstyle = f.get("html_style", style)
            if hstyle in ("outlook", "outlook-old"):
                return (f'<html><head><meta http-equiv="Content-Type" content="text/html; charset={_c}">'
                        '</head><body lang="DE-CH">\n<div class="WordSection1">\n'
                        f'<p class="MsoNormal">{ent(note, hm).replace(chr(10), "<br>")}</p>\n'
                        + fwd_block_html(hstyle, flang, quoted_from, nn, hm)
                        + "<div>\n" + nn.html_inner() + "\n</div>\n</div>\n</body></html>\n")
            if hstyle == "outlook-plain-p":
                return (f'<html><head><meta charset="{_c}"></head><body>\n'
                        f"<p>{ent(note, hm).replace(chr(10), '<br>')}</p>"
                        + fwd_block_html(hstyle, flang, quoted_from, nn, hm)
                        + "<blockquote>\n" + nn.html_inner() + "\n</blockquote></body></html>\n")
            return ('<html><head><meta charset="' + _c + '"></head><body><div dir="ltr">'
                    f"<div>{ent(note, hm).replace(chr(10), '<br>')}</div><br>"
                    + fwd_block_html(hstyle, flang, quoted_from, nn, hm)
                    + nn.html_inner() + "\n</div></div></body></html>\n")

        part = body_part(text_prefix=prefix_txt, html_wrap=wrap_html)
        fsub = f.get("prefix", "WG: ") + n.subject
        d2 = n.date + dt.timedelta(minutes=rng.randrange(3, 600))
        n.outer = dict(from_=faddr, date=d2, msgid=msgid(rng, faddr.split("@")[1]))
        raw = message([("From", f"{fname} <{faddr}>"), ("To", MAILBOX),
                       ("Subject", enc_header(fsub, f.get("subj", subj_style))),
                       ("Date", format_datetime(d2)), ("Message-ID", n.outer["msgid"])],
                      part)
    return n, raw


def golden_for_notice(spec: dict, n: Notice) -> dict:
    g: dict = {"class": spec["cls"]}
    if spec["cls"] == "not-a-notice":  # a notice the sender rule rejects (look-alikes)
        g["not_a_notice"] = spec["nan"]
    deliv = spec.get("delivery", "direct")
    g["language"] = n.lang
    g["delivery"] = {"direct": "direct", "attached": "attached-forward"}.get(deliv, "inline-forward")
    mime = spec.get("mime", "plain")
    if not n.unreadable:
        # the parser reads the text part of an alternative first (cheaper), the HTML part only when the text lacks the comparison
        g["layout"] = "html-table" if mime == "html" else spec.get("layout", "text-table")
    g["profile_id"] = n.pid
    g["application"] = n.app
    g["organisation"] = n.org
    g["signed_in_raw"] = n.signed_raw
    g["signed_in_at"] = n.signed.isoformat()
    if not n.unreadable:
        exp, act = n.golden_values()
        g["expected"], g["actual"] = exp, act
        ex = n.extra_rows()
        if ex:
            g["extra_rows"] = ex
    else:
        g["expected"] = g["actual"] = {"given_name": "", "family_name": "", "email": ""}
        ex = n.extra_rows(meta_only=True)
        if ex:
            g["extra_rows"] = ex
        g["unreadable"] = True
    g.update(envelope(spec, n))
    g["covers"] = spec["covers"]
    return g


def addr_of(s: str) -> str:
    """The address of a From or To value, folded in ASCII only (as the parser does)."""
    m = re.search(r"<([^<>]*)>", s)
    a = (m.group(1) if m else s).strip()
    return "".join(c.lower() if "A" <= c <= "Z" else c for c in a)


def envelope(spec: dict, n: Notice) -> dict:
    """What the parser reads of the notice's senders, recipients, subject and dates."""
    deliv = spec.get("delivery", "direct")
    g = {"from": addr_of(spec.get("quoted_from", n.sender) if deliv == "inline" else n.sender),
         "subject": n.subject, "subject_name": n.subject_name}
    if deliv == "direct":
        g.update({"message_id": n.msgid, "to": [addr_of(n.to)], "date": n.date.isoformat()})
    elif deliv == "attached":
        g.update({"message_id": n.msgid, "to": [addr_of(n.to)], "date": n.date.isoformat(),
                  "forwarders": [n.outer["from_"]], "outer_message_id": n.outer["msgid"], "part": "2"})
    else:  # an inline forward: the quoted notice has no Message-ID; the date is the forward's
        g.update({"to": [n.su[1]], "date": n.outer["date"].isoformat(), "forwarders": [n.outer["from_"]],
                  "outer_message_id": n.outer["msgid"]})
    return g


# ---------------------------------------------------------------- reference sender rules (NOTICE.md sections 2 and 5)


def plain_ascii(a: str) -> bool:
    return a.count("@") == 1 and a.isascii() and "." in a.split("@")[1] and " " not in a


def sender_rule(notice_from: str) -> str | None:
    """The sender rule of section 2 as the offline classify command applies it (trust.SenderRule)."""
    if not plain_ascii(notice_from):
        return "ambiguous-sender"
    return None if notice_from in EIAM_SENDERS else "untrusted-sender"


def daemon_trust(outer_from: str, notice_from: str, forwarders: list[str], auth: str) -> str | None:
    """What sender authentication (trust.Check) decides for the example configuration's mailbox be:
    None (trusted) or the kind of the quarantine."""
    if not plain_ascii(outer_from):
        return "ambiguous-sender"
    if forwarders and forwarders[0] not in BE_SUPERUSERS:
        return "untrusted-forwarder"
    kind = sender_rule(notice_from)
    if kind:
        return kind
    return None if auth == "pass" else "unauthenticated"


# ---------------------------------------------------------------- fixture list

FIX: list[dict] = []


def N(name, cls, lang, exp, act, covers, **kw):
    FIX.append(dict(kind="notice", name=name, cls=cls, lang=lang, exp=exp, act=act, covers=covers, **kw))


def X(name, nan, covers, build, **kw):
    FIX.append(dict(kind="other", name=name, cls="not-a-notice", nan=nan, covers=covers, build=build, **kw))


def C(name, cls, lang, exp, act, covers, hops, **kw):
    """A notice forwarded through a chain of messages: hops innermost first, each
    (delivery, style, by, mime) with delivery "inline" or "attached"."""
    FIX.append(dict(kind="chain", name=name, cls=cls, lang=lang, exp=exp, act=act, covers=covers,
                    hops=hops, **kw))


NB = "\u00a0"

# ---- German ----------------------------------------------------------------
N("de-table-alt-identical-utf8-qp", "negligible", "de",
  ("Jürg", "Gröbli", "jurg.groebli@be.ch"), ("Jürg", "Gröbli", "jurg.groebli@be.ch"),
  "identical values; alt text+html table; utf-8 QP; Vorname/Nachname/E-Mail",
  mime="alt", cs="utf-8", cte="quoted-printable")
N("de-table-alt-diacritics-ue-iso8859-8bit", "negligible", "de",
  ("Jürg", "Müller", "juerg.mueller@insel.ch"), ("Juerg", "Mueller", "juerg.mueller@insel.ch"),
  "ü vs ue transcription in both names; Name = family name; E-Mail-Adresse; iso-8859-1 8bit",
  mime="alt", cs="iso-8859-1", cte="8bit", labels=("Vorname", "Name", "E-Mail-Adresse"),
  order="fge", html={"ent": "named", "meta": "utf-8"})
N("de-table-text-diacritics-dropped-cp1252-qp", "negligible", "de",
  ("Jürg", "Käser", "jurg.kaser@usz.ch"), ("Jurg", "Kaser", "jurg.kaser@usz.ch"),
  "diacritics dropped (Jürg/Jurg, Käser/Kaser); text table with separator; windows-1252 QP",
  cs="windows-1252", cte="quoted-printable", labels=("Vorname", "Nachname", "E-Mail-Adresse"))
N("de-blocks-eszett-weiss-utf8-8bit", "negligible", "de",
  ("Zoë", "Weiß", "zoe.weiss@zh.ch"), ("Zoe", "Weiss", "zoe.weiss@zh.ch"),
  "ß/ss and ë/e; blocks indented two spaces; Name = family name; utf-8 8bit",
  layout="blocks", labels=("Vorname", "Name", "E-Mail"), indent="  ", dash="-")
N("de-blocks-case-upper-cp1252-base64", "negligible", "de",
  ("Thomas", "Zürcher", "thomas.zuercher@bs.ch"), ("THOMAS", "ZÜRCHER", "thomas.zuercher@bs.ch"),
  "upper-case signed-in name; blocks indented four spaces; windows-1252 base64",
  layout="blocks", cs="windows-1252", cte="base64", labels=("Vorname", "Nachname", "E-Mail-Adresse"),
  indent="    ")
N("de-html-middle-added-nbsp-labels-utf8-qp", "negligible", "de",
  ("Daniela", "Bühler", "daniela.buehler@kssg.ch"), ("Daniela Simone", "Bühler", "daniela.buehler@kssg.ch"),
  "middle name added; html only; labels with trailing &nbsp;; header row in td/b cells",
  mime="html", cte="quoted-printable", labels=("Vorname" + NB, "Nachname" + NB, "E-Mail" + NB),
  html={"ent": "named", "head": "td"})
N("de-blocks-middle-removed-odd-case-iso-qp", "negligible", "de",
  ("Anna Maria", "Steiner", "anna.steiner@be.ch"), ("Anna", "Steiner", "anna.steiner@be.ch"),
  "middle name removed; labels in odd case (VORNAME, nachname, E-MAIL); iso-8859-1 QP",
  layout="blocks", cs="iso-8859-1", cte="quoted-printable", labels=("VORNAME", "nachname", "E-MAIL"),
  dash="-", subj="latin1")
N("de-table-alt-double-family-added-b64", "negligible", "de",
  ("Laura", "Keller", "laura.keller@luks.ch"), ("Laura", "Keller-Steiner", "laura.keller@luks.ch"),
  "double family name on the signed-in side (Keller vs Keller-Steiner); order e,f,g; utf-8 base64",
  mime="alt", cte="base64", labels=("Vorname", "Name", "E-Mail-Adresse"), order="efg", subj="b")
N("de-table-text-double-family-removed-flowed", "negligible", "de",
  ("Sarah", "Bachmann-Roth", "sarah.bachmann@gef.be.ch"), ("Sarah", "Bachmann", "sarah.bachmann@gef.be.ch"),
  "double family name entered, one part signed in; text/plain format=flowed (DelSp=no) wrapping intro and closing",
  flowed="fixed", labels=("Vorname", "Nachname", "E-Mail"))
N("de-html-swap-cp1252-8bit", "negligible", "de",
  ("Reto", "Caduff", "reto.caduff@ksgr.ch"), ("Caduff", "Reto", "reto.caduff@ksgr.ch"),
  "given and family name swapped; html only windows-1252 8bit; meta charset says utf-8 (as the samples)",
  mime="html", cs="windows-1252", labels=("Vorname", "Name", "E-Mail"),
  html={"meta": "utf-8", "thead": True})
N("de-blocks-swap-private-gmail", "private-email", "de",
  ("Stefan", "Lüthi", "stefan.luethi@be.ch"), ("Lüthi", "Stefan", "stefan.luethi@gmail.com"),
  "swap plus private address (gmail.com): rule 4",
  layout="blocks", cte="quoted-printable", labels=("Vorname", "Name", "E-Mail-Adresse"), order="egf")
N("de-table-alt-typo-family-deletion", "negligible", "de",
  ("Matthias", "Zimmermann", "matthias.zimmermann@zh.ch"), ("Matthias", "Zimmerman", "matthias.zimmermann@zh.ch"),
  "typo (one deletion) in a family-name token of 10 letters",
  mime="alt", cs="iso-8859-1", cte="quoted-printable", subj="qfull")
N("de-blocks-typo-transposition-cp1252-8bit", "negligible", "de",
  ("Christine", "Imhof", "christine.imhof@insel.ch"), ("Chrsitine", "Imhof", "christine.imhof@insel.ch"),
  "transposition of adjacent letters in a given name (Christine/Chrsitine)",
  layout="blocks", cs="windows-1252", labels=("Vorname", "Nachname", "E-Mail"), indent="\t")
N("de-table-text-two-edit-family-review", "review", "de",
  ("Nicole", "Schneider", "nicole.schneider@sg.ch"), ("Nicole", "Schnyder", "nicole.schneider@sg.ch"),
  "family names two edits apart (Schneider/Schnyder): not a typo, same given name: partial -> review",
  cte="base64", sep=False, labels=("Vorname", "Name", "E-Mail"))
N("de-blocks-two-edit-given-wrong-person", "wrong-person", "de",
  ("Beatrice", "Keller", "beatrice.keller@fr.ch"), ("Beatrix", "Keller", "beatrix.keller@fr.ch"),
  "given names two edits apart (Beatrice/Beatrix): not a typo, no given token matches -> different",
  layout="blocks", labels=("Vorname", "Nachname", "E-Mail-Adresse"))
N("de-table-alt-anna-anja-wrong-person", "wrong-person", "de",
  ("Anna", "Muster", "anna.muster@zh.ch"), ("Anja", "Muster", "anja.muster@zh.ch"),
  "Anna/Anja: one letter in a 4-letter name is not a typo -> different given names, same family",
  mime="alt", labels=("Vorname", "Nachname", "E-Mail"))
N("de-blocks-anna-maria-anja-maria-review", "review", "de",
  ("Anna Maria", "Muster", "anna.muster@zh.ch"), ("Anja Maria", "Muster", "anna.muster@zh.ch"),
  "Anna Maria/Anja Maria: 'Maria' matches so not different; Anna/Anja not a typo so not same -> partial",
  layout="blocks", labels=("Vorname", "Name", "E-Mail"))
N("de-table-text-short-token-graf-graff-review", "review", "de",
  ("Martin", "Graf", "martin.graf@bs.ch"), ("Martin", "Graff", "martin.graf@bs.ch"),
  "Graf/Graff: one edit but token of 4 letters on one side is not a typo -> partial",
  labels=("Vorname", "Nachname", "E-Mail-Adresse"), order="fge")
N("de-html-wrong-same-family-mailto", "wrong-person", "de",
  ("Lukas", "Brunner", "lukas.brunner@luks.ch"), ("Jonas", "Brunner", "jonas.brunner@luks.ch"),
  "different given names, same family name; e-mail cells are mailto links",
  mime="html", labels=("Vorname", "Nachname", "E-Mail-Adresse"), html={"mailto": True, "ent": "numeric"})
N("de-blocks-review-name-change", "review", "de",
  ("Beatrice", "Rossi", "beatrice.rossi@fr.ch"), ("Beatrice", "Keller", "beatrice.rossi@fr.ch"),
  "same given name, wholly different family name (name change?) -> partial -> review",
  layout="blocks", cs="windows-1252", labels=("Vorname", "Nachname", "E-Mail-Adresse"))
N("de-table-alt-private-bluewin", "private-email", "de",
  ("Daniel", "Roth", "daniel.roth@insel.ch"), ("Daniel", "Roth", "daniel.roth@bluewin.ch"),
  "exact name, private address at bluewin.ch", mime="alt", cte="quoted-printable",
  labels=("Vorname", "Name", "E-Mail"), html={"style": True})
N("de-blocks-private-gmx-ch", "private-email", "de",
  ("Céline", "Käser", "celine.kaeser@be.ch"), ("Céline", "Käser", "celine.kaeser@gmx.ch"),
  "private address at gmx.ch; blocks with 'Label :  value' extra spaces before the colon",
  layout="blocks", cs="iso-8859-1", labels=("Vorname  ", "Nachname ", "E-Mail-Adresse   "), subj="latin1",
  dash="-")
N("de-table-text-private-web-de", "private-email", "de",
  ("Patrick", "Wyss", "patrick.wyss@ag.ch"), ("Patrick", "Wyss", "pwyss84@web.de"),
  "private address at web.de; text table with trailing-colon labels",
  cs="windows-1252", cte="8bit", labels=("Vorname:", "Nachname:", "E-Mail:"))
N("de-html-subdomain-negligible", "negligible", "de",
  ("Lukas", "Meier", "lukas.meier@be.ch"), ("Lukas", "Meier", "lukas.meier@gef.be.ch"),
  "signed-in address in a subdomain of the entered one (gef.be.ch vs be.ch) -> rule 5",
  mime="html", cs="iso-8859-1", cte="quoted-printable", html={"ent": "named", "multiline": True})
N("de-table-alt-other-domain-review", "review", "de",
  ("Andrea", "Fontana", "andrea.fontana@insel.ch"), ("Andrea", "Fontana", "andrea.fontana@unibe.ch"),
  "other non-private domain (insel.ch vs unibe.ch) -> rule 6", mime="alt",
  labels=("Vorname", "Nachname", "E-Mail-Adresse"))
N("de-blocks-email-case-negligible", "negligible", "de",
  ("Sandra", "Hofer", "sandra.hofer@bern.ch"), ("Sandra", "Hofer", "Sandra.Hofer@Bern.CH"),
  "addresses differ only in letter case -> equal -> rule 7; 7bit", layout="blocks", cte="7bit",
  labels=("Vorname", "Name", "E-Mail"), org="Kanton Bern")
N("de-table-alt-wrong-person-private-gmail", "wrong-person", "de",
  ("Peter", "Gerber", "peter.gerber@be.ch"), ("Marco", "Rossi", "marco.rossi@gmail.com"),
  "another person with a private address: rule 2 before rule 4", mime="alt", cs="windows-1252",
  cte="quoted-printable", labels=("Vorname", "Name", "E-Mail-Adresse"))
N("de-table-text-empty-actual-family-review", "review", "de",
  ("Céline", "Bonvin", "celine.bonvin@insel.ch"), ("Céline", "", "celine.bonvin@insel.ch"),
  "empty actual family-name cell in a text table -> rule 1", labels=("Vorname", "Nachname", "E-Mail"))
N("de-html-nbsp-only-email-review", "review", "de",
  ("Marc", "Aebischer", "marc.aebischer@fr.ch"), ("Marc", "Aebischer", NB),
  "actual e-mail cell holds only &nbsp; -> empty -> rule 1", mime="html", html={"ent": "named"})
N("de-blocks-missing-email-row-review", "review", "de",
  ("Ursula", "Schmid", "ursula.schmid@lu.ch"), ("Ursula", "Schmid", "ursula.schmid@lu.ch"),
  "E-Mail rows missing entirely on both sides -> rule 1", layout="blocks", missing="e")
N("de-table-alt-private-exact-sprache-referenz", "private-email", "de",
  ("Fabian", "Lehmann", "fabian.lehmann@zh.ch"), ("Fabian", "Lehmann", "fabian.lehmann@hotmail.ch"),
  "private hotmail.ch; extra attribute row Sprache and unknown metadata row Referenz kept",
  mime="alt", cte="quoted-printable", extra_attr=[("Sprache", "Deutsch", "Deutsch")],
  extra_meta=[("Referenz", "X-1")])
N("de-unreadable-no-comparison", "review", "de",
  ("Monika", "Frei", "monika.frei@so.ch"), ("Monika", "Frei", "monika.frei@so.ch"),
  "eIAM sender and notice subject but no comparison at all in the body -> unreadable",
  unreadable="no-comparison")
N("de-blocks-review-partial-beats-private", "review", "de",
  ("Simone", "Baumann", "simone.baumann@gr.ch"), ("Simone", "Kunz", "simone.kunz@gmail.com"),
  "same given name, other family name and a private address: partial (rule 3) before private (rule 4)",
  layout="blocks", labels=("Vorname", "Name", "E-Mail-Adresse"))
N("de-table-text-private-both-gmail-different", "private-email", "de",
  ("Heidi", "Huber", "heidi.huber@gmail.com"), ("Heidi", "Huber", "h.huber@gmail.com"),
  "entered and signed-in addresses both at gmail.com but different: rule 4 comes before rule 5",
  labels=("Vorname", "Nachname", "E-Mail-Adresse"))
N("de-blocks-equal-private-address-negligible", "negligible", "de",
  ("Ruth Elisabeth", "Zbinden", "ruth.zbinden@bluewin.ch"), ("Ruth", "Zbinden", "ruth.zbinden@bluewin.ch"),
  "entered address is already private and equal to the signed-in one: addresses do not differ -> rule 7",
  layout="blocks")
N("de-html-empty-expected-given-review", "review", "de",
  ("", "Brand", "p.brand@bs.ch"), ("Pascal", "Brand", "p.brand@bs.ch"),
  "empty entered given-name cell (<td></td>) -> rule 1; subject carries only the family name", mime="html")
N("de-blocks-spaces-only-value-review", "review", "de",
  ("Yvonne", "Kälin", "yvonne.kaelin@sz.ch"), ("   ", "Kälin", "yvonne.kaelin@sz.ch"),
  "actual given name holds only spaces in a blocks line -> empty -> rule 1", layout="blocks",
  cte="quoted-printable")
N("de-blocks-private-sunrise-nbsp-value", "private-email", "de",
  ("Urs", "Brügger", "urs.bruegger@be.ch"), ("Urs", "Brügger", NB + "urs.bruegger@sunrise.ch" + NB),
  "value padded with NBSP (trimmed); private sunrise.ch", layout="blocks", cs="iso-8859-1",
  cte="base64", subj="latin1", dash="-")
N("de-table-alt-trusted-sender-upper-case", "negligible", "de",
  ("Nadine", "Gisler", "nadine.gisler@ur.ch"), ("Nadine", "Gisler", "nadine.gisler@ur.ch"),
  "From address of eIAM in other letter case (NoReply@EIAM.Admin.CH) is still trusted",
  mime="alt", **{"from": '"eIAM - Federal IAM" <NoReply@EIAM.Admin.CH>'})
N("de-table-text-bare-from-address", "private-email", "de",
  ("Jan", "Vogel", "jan.vogel@bl.ch"), ("Jan", "Vogel", "jan.vogel@gmx.net"),
  "From header without display name (noreply@eiam.admin.ch); private gmx.net",
  cte="7bit", sep=False, org="Kanton Basel-Landschaft", dash="-", **{"from": "noreply@eiam.admin.ch"})

# German forwards
N("de-fwd-outlook-text-table-wg-private-yahoo-de", "private-email", "de",
  ("Michael", "Schürch", "michael.schuerch@be.ch"), ("Michael", "Schürch", "m.schuerch@yahoo.de"),
  "inline Outlook forward (text), Von:/Gesendet:/An:/Betreff:, subject 'WG: '; private yahoo.de",
  delivery="inline", fwd={"style": "outlook", "prefix": "WG: "}, cte="quoted-printable")
N("de-fwd-outlook-html-aw-wg-stacked-middle", "negligible", "de",
  ("Hans Peter", "Gasser", "hanspeter.gasser@insel.ch"), ("Hans", "Gasser", "hanspeter.gasser@insel.ch"),
  "inline Outlook forward (html, <b>Von:</b> ...), stacked prefixes 'WG: AW: '; middle name removed",
  delivery="inline", mime="html", fwd={"style": "outlook", "prefix": "WG: AW: "}, cs="windows-1252",
  cte="quoted-printable", html={"ent": "named"})
N("de-fwd-outlook-text-blocks-wrong-person", "wrong-person", "de",
  ("Barbara", "Kunz", "barbara.kunz@lu.ch"), ("Werner", "Kunz", "wkunz@bluewin.ch"),
  "inline Outlook forward (text, windows-1252 8bit: en dash 0x96 in the Betreff line) of a blocks notice; wrong person with private address",
  delivery="inline", layout="blocks", fwd={"style": "outlook", "prefix": "WG: ", "by": "lukas"},
  indent="  ", cs="windows-1252")
N("de-fwd-outlook-old-mailto-review", "review", "de",
  ("Silvia", "Meyer", "silvia.meyer@bs.ch"), ("Silvia", "Frey", "silvia.meyer@bs.ch"),
  "older Outlook forward '-----Ursprüngliche Nachricht-----' with 'Von: eIAM [mailto:...]'; same given name, other family name -> partial",
  delivery="inline", fwd={"style": "outlook-old", "prefix": "wg: "}, cs="iso-8859-1", subj="latin1",
  dash="-")
N("de-fwd-gmail-text-weitergeleitete-typo", "negligible", "de",
  ("Katharina", "Widmer", "katharina.widmer@sg.ch"), ("Katharina", "Widmr", "katharina.widmer@sg.ch"),
  "inline Gmail forward (text) '---------- Weitergeleitete Nachricht ----------'; typo in 6-letter family name",
  delivery="inline", fwd={"style": "gmail", "prefix": "Fwd: "}, layout="text-table")
N("de-fwd-gmail-html-diacritics", "negligible", "de",
  ("Jörg", "Schläfli", "joerg.schlaefli@so.ch"), ("Joerg", "Schlaefli", "joerg.schlaefli@so.ch"),
  "inline Gmail forward (html, gmail_attr block with mailto links); ö/oe ä/ae",
  delivery="inline", mime="html", fwd={"style": "gmail", "prefix": "AW: "}, html={"ent": "mixed"})
N("de-fwd-attached-blocks-name-change", "review", "de",
  ("Beatrice", "Rossi", "beatrice.rossi@fr.ch"), ("Beatrice", "Keller", "beatrice.rossi@fr.ch"),
  "attached forward (message/rfc822) of a blocks notice, windows-1252 8bit inner (like sample 0005)",
  delivery="attached", layout="blocks", cs="windows-1252", indent="    ", fwd={"prefix": "WG: ", "by": "sara"})
N("de-fwd-attached-table-alt-swap-fw", "negligible", "de",
  ("Remo", "Bieri", "remo.bieri@ne.ch"), ("Bieri", "Remo", "remo.bieri@ne.ch"),
  "attached forward with 'FW: ', forwarder text multipart/alternative; inner alt table QP",
  delivery="attached", mime="alt", cte="quoted-printable", fwd={"prefix": "FW: ", "note_alt": True})

# ---- French -----------------------------------------------------------------
N("fr-table-alt-identical-utf8-8bit", "negligible", "fr",
  ("Chloé", "Favre", "chloe.favre@vd.ch"), ("Chloé", "Favre", "chloe.favre@vd.ch"),
  "identical; Prénom/Nom/E-mail (Nom = family name); utf-8 8bit",
  mime="alt", labels=("Prénom", "Nom", "E-mail"), html={"ent": "numeric"})
N("fr-table-text-curly-apostrophe-cp1252-8bit", "negligible", "fr",
  ("François", "Rochat", "francois.rochat@hcuge.ch"), ("Francois", "Rochat", "francois.rochat@hcuge.ch"),
  "windows-1252 8bit with ’ (0x92) in the intro; ç/c; Nom de famille and Courriel",
  cs="windows-1252", curly=True, labels=("Prénom", "Nom de famille", "Courriel"), subj="cp1252")
N("fr-blocks-adresse-email-iso-qp", "negligible", "fr",
  ("Élodie", "Girard", "elodie.girard@chuv.ch"), ("Elodie", "GIRARD", "elodie.girard@chuv.ch"),
  "É/E and case; blocks with tab indent; Adresse e-mail; iso-8859-1 QP",
  layout="blocks", cs="iso-8859-1", cte="quoted-printable", indent="\t",
  labels=("Prénom", "Nom de famille", "Adresse e-mail"), subj="latin1", dash="-")
N("fr-blocks-nom-trap-swap", "negligible", "fr",
  ("Noémie", "Chappuis", "noemie.chappuis@ne.ch"), ("Chappuis", "Noémie", "noemie.chappuis@ne.ch"),
  "swap with the French 'Nom' label (family name) in blocks; Courriel",
  layout="blocks", labels=("Prénom", "Nom", "Courriel"), order="fge")
N("fr-html-nom-trap-wrong-person", "wrong-person", "fr",
  ("Maëlle", "Perrin", "maelle.perrin@vs.ch"), ("Julie", "Perrin", "julie.perrin@vs.ch"),
  "French 'Nom' is the family name: Perrin equal, Maëlle/Julie differ -> wrong-person; html entities",
  mime="html", labels=("Prénom", "Nom", "E-mail"), order="fge", html={"ent": "named"})
N("fr-table-alt-private-orange", "private-email", "fr",
  ("Mathieu", "Berset", "mathieu.berset@fr.ch"), ("Mathieu", "Berset", "mathieu.berset@orange.fr"),
  "private orange.fr; Adresse e-mail; alt base64", mime="alt", cte="base64",
  labels=("Prénom", "Nom de famille", "Adresse e-mail"), subj="bfull")
N("fr-blocks-private-yahoo-fr-nbsp-labels", "private-email", "fr",
  ("Aurélie", "Monnier", "aurelie.monnier@vd.ch"), ("Aurélie", "Monnier", "aurelie.monnier@yahoo.fr"),
  "private yahoo.fr; French typography 'Prénom\u00a0: Aurélie' (NBSP before the colon)",
  layout="blocks", labels=("Prénom" + NB, "Nom" + NB, "E-mail" + NB))
N("fr-table-text-private-laposte", "private-email", "fr",
  ("Sébastien", "Roulin", "sebastien.roulin@h-fr.ch"), ("Sébastien", "Roulin", "seb.roulin@laposte.net"),
  "private laposte.net; Nom label in text table", labels=("Prénom", "Nom", "Adresse e-mail"),
  cte="quoted-printable", order="egf")
N("fr-html-other-domain-review", "review", "fr",
  ("Camille", "Jaquet", "camille.jaquet@chuv.ch"), ("Camille", "Jaquet", "camille.jaquet@unil.ch"),
  "other non-private domain (chuv.ch vs unil.ch) -> review", mime="html", cs="iso-8859-1",
  cte="8bit", labels=("Prénom", "Nom", "Courriel"), html={"thead": True, "ent": "hex"})
N("fr-table-alt-double-family-removed", "negligible", "fr",
  ("Sophie", "Dubois-Rochat", "sophie.dubois@hcuge.ch"), ("Sophie", "Dubois", "sophie.dubois@hcuge.ch"),
  "double family name entered, one part signed in", mime="alt", cs="windows-1252", cte="8bit",
  labels=("Prénom", "Nom de famille", "E-mail"), curly=True)
N("fr-html-spaces-only-email-review", "review", "fr",
  ("Nathan", "Schaller", "nathan.schaller@ne.ch"), ("Nathan", "Schaller", "   "),
  "actual e-mail cell holds only spaces (<td>   </td>) -> empty -> review", mime="html",
  labels=("Prénom", "Nom", "E-mail"))
N("fr-blocks-langue-differs-negligible", "negligible", "fr",
  ("Gaëlle", "Pittet", "gaelle.pittet@vd.ch"), ("Gaelle", "Pittet", "gaelle.pittet@vd.ch"),
  "extra attribute row Langue with different values (Français/Allemand) never changes the class",
  layout="blocks", labels=("Prénom", "Nom de famille", "Courriel"),
  extra_attr=[("Langue", "Français", "Allemand")], indent="  ")
N("fr-html-typo-given-substitution", "negligible", "fr",
  ("Laurence", "Bovet", "laurence.bovet@jura.ch"), ("Laurance", "Bovet", "laurence.bovet@jura.ch"),
  "typo (substitution) in an 8-letter given name", mime="html", cte="base64",
  labels=("Prénom", "Nom", "Adresse e-mail"), html={"ent": "numeric", "head": "td"})
N("fr-unreadable-no-actual-column", "review", "fr",
  ("Léa", "Rey", "lea.rey@vs.ch"), ("Léa", "Rey", "lea.rey@vs.ch"),
  "html table without the signed-in column -> unreadable", mime="html",
  unreadable="no-actual-column", labels=("Prénom", "Nom", "E-mail"))
N("fr-blocks-wrong-person-same-family-flowed-delsp", "wrong-person", "fr",
  ("Julien", "Cuennet", "julien.cuennet@fr.ch"), ("Maxime", "Cuennet", "maxime.cuennet@fr.ch"),
  "wrong person, same family; format=flowed DelSp=yes (soft breaks inside words) with space-stuffed indented lines",
  layout="blocks", flowed="delsp", indent=" ", labels=("Prénom", "Nom", "E-mail"))
N("fr-table-text-flowed-long-row", "private-email", "fr",
  ("Marie-Christine", "Vuilleumier", "marie-christine.vuilleumier@etat.ge.ch"),
  ("Marie-Christine", "Vuilleumier", "marie-christine.vuilleumier.perso@hotmail.fr"),
  "format=flowed (DelSp=no) where the long e-mail row of the text table is soft-wrapped; private hotmail.fr",
  flowed="fixed", flow_rows=True, labels=("Prénom", "Nom de famille", "Courriel"))
N("fr-table-alt-private-free-fr-swap", "private-email", "fr",
  ("Olivier", "Zufferey", "olivier.zufferey@hopitalvs.ch"), ("Zufferey", "Olivier", "ozufferey@free.fr"),
  "swap plus private free.fr", mime="alt", labels=("Prénom", "Nom", "Adresse e-mail"))
N("fr-blocks-missing-given-row-review", "review", "fr",
  ("Lucie", "Droz", "lucie.droz@ne.ch"), ("Lucie", "Droz", "lucie.droz@ne.ch"),
  "Prénom rows missing entirely -> review", layout="blocks", missing="g",
  labels=("Prénom", "Nom de famille", "E-mail"))
N("fr-html-eszett-case-negligible", "negligible", "fr",
  ("Zoë", "Weiß", "zoe.weiss@hcuge.ch"), ("ZOE", "WEISS", "zoe.weiss@hcuge.ch"),
  "ß/SS and ë in French html (&euml; &szlig;)", mime="html", cte="7bit",
  labels=("Prénom", "Nom de famille", "Courriel"), html={"ent": "named"}, subj="qfull")

# French forwards
N("fr-fwd-outlook-text-tr-private-gmail", "private-email", "fr",
  ("Chloé", "Meylan", "chloe.meylan@vd.ch"), ("Chloé", "Meylan", "chloe.meylan@gmail.com"),
  "inline Outlook forward (text) De :/Envoyé :/À :/Objet :, 'TR: ' prefix",
  delivery="inline", fwd={"style": "outlook", "prefix": "TR: "}, cte="quoted-printable",
  labels=("Prénom", "Nom", "Adresse e-mail"))
N("fr-fwd-outlook-html-tr-space-colon", "negligible", "fr",
  ("Amélie", "Rochat", "amelie.rochat@chuv.ch"), ("Amelie", "Rochat", "amelie.rochat@chuv.ch"),
  "inline Outlook forward (html) with French spacing 'TR : ' prefix",
  delivery="inline", mime="html", fwd={"style": "outlook", "prefix": "TR : "}, cs="iso-8859-1",
  cte="base64", html={"ent": "named"}, labels=("Prénom", "Nom de famille", "Courriel"), subj="latin1",
  dash="-")
N("fr-fwd-gmail-text-message-transfere-review", "review", "fr",
  ("Inès", "Morel", "ines.morel@ge.ch"), ("Inès", "Morel", "ines.morel@hug.ch"),
  "inline Gmail forward (text) '---------- Message transféré ---------'; other domain -> review",
  delivery="inline", fwd={"style": "gmail", "prefix": "Fwd: "}, labels=("Prénom", "Nom", "Courriel"))
N("fr-fwd-gmail-html-base64-identical", "negligible", "fr",
  ("Chloé", "Meier", "chloe.meier@lu.ch"), ("Chloé", "Meier", "chloe.meier@lu.ch"),
  "inline Gmail forward (html, base64 iso-8859-1, like sample 0022)",
  delivery="inline", mime="html", fwd={"style": "gmail", "prefix": "TR: "}, cs="iso-8859-1",
  cte="base64", labels=("Prénom", "Nom de famille", "Courriel"), html={"ent": "mixed"})
N("fr-fwd-attached-b64-html-inner-wrong", "wrong-person", "fr",
  ("Valérie", "Tschopp", "valerie.tschopp@hopitalvs.ch"), ("Damien", "Tschopp", "damien.tschopp@bluewin.ch"),
  "attached forward whose inner notice is text/html base64; wrong person + private",
  delivery="attached", mime="html", cte="base64", labels=("Prénom", "Nom", "E-mail"),
  fwd={"prefix": "TR: ", "by": "olivier"})
N("fr-fwd-outlook-text-german-forwarder", "private-email", "fr",
  ("Yannick", "Berthoud", "yannick.berthoud@be.ch"), ("Yannick", "Berthoud", "yannick.berthoud@icloud.com"),
  "French notice forwarded by a German-speaking superuser (Von:/Betreff: header block): language from the notice",
  delivery="inline", fwd={"style": "outlook", "prefix": "WG: ", "lang": "de", "by": "martina"},
  labels=("Prénom", "Nom", "E-mail"))

# ---- Italian ----------------------------------------------------------------
N("it-table-alt-nome-trap-identical", "negligible", "it",
  ("Giulia", "Rezzonico", "giulia.rezzonico@eoc.ch"), ("Giulia", "Rezzonico", "giulia.rezzonico@eoc.ch"),
  "Italian 'Nome' is the GIVEN name (Cognome family); identical", mime="alt")
N("it-table-text-typo-family-indirizzo", "negligible", "it",
  ("Luca", "Pedrazzini", "luca.pedrazzini@ti.ch"), ("Luca", "Pedrazini", "luca.pedrazzini@ti.ch"),
  "typo (deletion) in Pedrazzini; Indirizzo e-mail label", labels=("Nome", "Cognome", "Indirizzo e-mail"),
  cte="quoted-printable")
N("it-blocks-nome-trap-wrong-person", "wrong-person", "it",
  ("Luca", "Bernasconi", "luca.bernasconi@eoc.ch"), ("Marco", "Bernasconi", "marco.bernasconi@eoc.ch"),
  "Nome differs (Luca/Marco), Cognome equal -> wrong-person (trap: Nome is not the family name)",
  layout="blocks", order="fge")
N("it-blocks-review-partial", "review", "it",
  ("Sara", "Fontana", "sara.fontana@ti.ch"), ("Sara", "Ghirlanda", "sara.fontana@ti.ch"),
  "same given name, other family -> review", layout="blocks", labels=("Nome", "Cognome", "Indirizzo e-mail"),
  indent="  ")
N("it-html-private-libero", "private-email", "it",
  ("Matteo", "Galli", "matteo.galli@eoc.ch"), ("Matteo", "Galli", "matteo.galli@libero.it"),
  "private libero.it; html only", mime="html", cte="quoted-printable")
N("it-table-alt-private-hotmail-it", "private-email", "it",
  ("Chiara", "Rossi", "chiara.rossi@ti.ch"), ("Chiara", "Rossi", "chiara_rossi@hotmail.it"),
  "private hotmail.it; alt iso-8859-1 base64", mime="alt", cs="iso-8859-1", cte="base64",
  labels=("Nome", "Cognome", "Indirizzo e-mail"), subj="latin1", dash="-")
N("it-table-text-apostrophe-dellacqua-cp1252", "negligible", "it",
  ("Lorenzo", "Dell\u2019Acqua", "lorenzo.dellacqua@eoc.ch"), ("Lorenzo", "Dell'Acqua", "lorenzo.dellacqua@eoc.ch"),
  "typographic apostrophe (windows-1252 0x92) vs ASCII apostrophe: both word separators",
  cs="windows-1252", cte="quoted-printable", curly=True, subj="cp1252")
N("it-blocks-swap", "negligible", "it",
  ("Giorgio", "Cattaneo", "giorgio.cattaneo@ti.ch"), ("Cattaneo", "Giorgio", "giorgio.cattaneo@ti.ch"),
  "swap in Italian blocks (Nome/Cognome)", layout="blocks", cs="iso-8859-1", cte="8bit",
  subj="latin1", dash="-")
N("it-html-nbsp-cell-review", "review", "it",
  ("Elena", "Bernasconi", "elena.bernasconi@eoc.ch"), ("Elena", NB, "elena.bernasconi@eoc.ch"),
  "actual Cognome cell is &nbsp; -> empty -> review", mime="html", labels=("Nome", "Cognome", "E-mail"),
  html={"ent": "named"})
N("it-table-text-missing-cognome-row-review", "review", "it",
  ("Paolo", "Ferrari", "paolo.ferrari@ti.ch"), ("Paolo", "Ferrari", "paolo.ferrari@ti.ch"),
  "Cognome row missing in the text table -> review", missing="f",
  labels=("Nome", "Cognome", "Indirizzo e-mail"))
N("it-table-alt-lingua-extra-middle", "negligible", "it",
  ("Anna", "Bianchi", "anna.bianchi@ti.ch"), ("Anna Lucia", "Bianchi", "anna.bianchi@ti.ch"),
  "extra attribute row Lingua; middle name added", mime="alt",
  extra_attr=[("Lingua", "Italiano", "Italiano")])
N("it-unreadable-no-actual-block", "review", "it",
  ("Marta", "Sala", "marta.sala@ti.ch"), ("Marta", "Sala", "marta.sala@ti.ch"),
  "blocks layout with only the Registrato block, no Utente connesso block -> unreadable",
  layout="blocks", unreadable="no-actual-block")
N("it-table-text-flowed-subdomain", "negligible", "it",
  ("Davide", "Pellegrini", "davide.pellegrini@ti.ch"), ("Davide", "Pellegrini", "davide.pellegrini@dss.ti.ch"),
  "format=flowed DelSp=no in iso-8859-1 quoted-printable (soft-break spaces as =20); text table; subdomain dss.ti.ch of ti.ch -> negligible",
  flowed="fixed", labels=("Nome", "Cognome", "Indirizzo e-mail"), cs="iso-8859-1", cte="quoted-printable",
  subj="latin1", dash="-")
N("it-blocks-private-protonmail-odd-labels", "private-email", "it",
  ("Federica", "Mazzoleni", "federica.mazzoleni@eoc.ch"), ("Federica", "Mazzoleni", "fede.mazzoleni@protonmail.ch"),
  "private protonmail.ch; labels lower/upper case ('nome', 'COGNOME', 'e-MAIL')",
  layout="blocks", labels=("nome", "COGNOME", "e-MAIL"))
N("it-table-alt-wrong-person-gmail", "wrong-person", "it",
  ("Giulia", "Bonvin", "giulia.bonvin@usz.ch"), ("Céline", "Muster", "celinemuster@gmail.com"),
  "other person with a private address (like sample 0002)", mime="alt", cs="iso-8859-1", cte="8bit",
  labels=("Nome" + NB, "Cognome" + NB, "E-mail" + NB), html={"ent": "named", "meta": "utf-8"})

# Italian forwards
N("it-fwd-outlook-text-i-prefix", "negligible", "it",
  ("Alessandro", "Moretti", "alessandro.moretti@eoc.ch"), ("Alessandro", "Moretti", "Alessandro.Moretti@eoc.ch"),
  "inline Outlook forward (text) Da:/Inviato:/A:/Oggetto:, 'I: ' prefix; e-mail case only",
  delivery="inline", fwd={"style": "outlook", "prefix": "I: "}, labels=("Nome", "Cognome", "Indirizzo e-mail"))
N("it-fwd-outlook-html-roberta-roberto-typo", "negligible", "it",
  ("Roberta", "Sciarini", "roberta.sciarini@ti.ch"), ("Roberto", "Sciarini", "roberto.sciarini@ti.ch"),
  "inline Outlook forward (html); Roberta/Roberto is one substitution in a 7-letter token: a typo by rule -> same; address in same domain -> negligible",
  delivery="inline", mime="html", fwd={"style": "outlook", "prefix": "I: "}, cte="quoted-printable")
N("it-fwd-gmail-text-messaggio-inoltrato", "private-email", "it",
  ("Noemi", "Pedrini", "noemi.pedrini@eoc.ch"), ("Noemi", "Pedrini", "noemi.pedrini@gmx.ch"),
  "inline Gmail forward (text) '---------- Messaggio inoltrato ---------'; private gmx.ch",
  delivery="inline", layout="blocks", fwd={"style": "gmail", "prefix": "Fwd: "})
N("it-fwd-attached-table-text", "review", "it",
  ("Ilaria", "Conti", "ilaria.conti@ti.ch"), ("Ilaria", "Conti", "ilaria.conti@usi.ch"),
  "attached forward, inner text table; other domain -> review", delivery="attached",
  fwd={"prefix": "I: ", "by": "sara"}, cte="quoted-printable")

# ---- English ----------------------------------------------------------------
N("en-table-alt-first-last-identical", "negligible", "en",
  ("Emily", "Baumgartner", "emily.baumgartner@zh.ch"), ("Emily", "Baumgartner", "emily.baumgartner@zh.ch"),
  "English First name/Last name/E-mail; identical; 7bit ASCII", mime="alt", cte="7bit",
  labels=("First name", "Last name", "E-mail"), subj="ascii", dash="-")
N("en-table-text-given-family-email-address", "negligible", "en",
  ("Thomas", "Zürcher", "thomas.zuercher@usz.ch"), ("Thomas", "Zuercher", "thomas.zuercher@usz.ch"),
  "Given name/Family name/Email address; ü/ue", labels=("Given name", "Family name", "Email address"),
  cte="quoted-printable")
N("en-blocks-surname-middle", "negligible", "en",
  ("David", "Steiner", "david.steiner@kssg.ch"), ("David Michael", "Steiner", "david.steiner@kssg.ch"),
  "Surname label; middle name added; blocks", layout="blocks", labels=("First name", "Surname", "E-mail"))
N("en-html-7bit-entities-private-icloud", "private-email", "en",
  ("Céline", "Käser", "celine.kaeser@vd.ch"), ("Céline", "Käser", "celine.kaeser@icloud.com"),
  "html only, 7bit, all non-ASCII as entities (&eacute; &#228;); private icloud.com", mime="html",
  cte="7bit", html={"ent": "mixed"}, labels=("Given name", "Surname", "Email address"))
N("en-blocks-given-last-private-proton-me", "private-email", "en",
  ("Oliver", "Brunner", "oliver.brunner@bs.ch"), ("Oliver", "Brunner", "oliver.b@proton.me"),
  "Given name/Last name/Email address in blocks; private proton.me", layout="blocks",
  labels=("Given name", "Last name", "Email address"), indent="   ")
N("en-table-text-family-wrong-person", "wrong-person", "en",
  ("Sarah", "Bachmann", "sarah.bachmann@insel.ch"), ("Michelle", "Bachmann", "michelle.bachmann@insel.ch"),
  "different given names, same family; Family name label", labels=("First name", "Family name", "E-mail"),
  order="efg")
N("en-blocks-family-review-other-domain", "review", "en",
  ("Kevin", "Ammann", "kevin.ammann@sg.ch"), ("Kevin", "Ammann", "kevin.ammann@hsr.ch"),
  "Family name label in blocks; other domain -> review", layout="blocks",
  labels=("First name", "Family name", "Email address"))
N("en-html-surname-typo-transposition", "negligible", "en",
  ("Florian", "Schmidt", "florian.schmidt@ag.ch"), ("Florian", "Schmitd", "florian.schmidt@ag.ch"),
  "transposition typo in the family name (Schmidt/Schmitd)", mime="html",
  labels=("First name", "Surname", "E-mail"), html={"ent": "named", "span": True})
N("en-table-alt-outlook-private", "private-email", "en",
  ("Jessica", "Wenger", "jessica.wenger@be.ch"), ("Jessica", "Wenger", "jessica.wenger@outlook.com"),
  "private outlook.com; odd-case labels with trailing colons in the html table",
  mime="alt", cte="quoted-printable", labels=("FIRST NAME:", " last name ", "E-Mail:"),
  html={"ent": "named"})
N("en-blocks-missing-surname-row-and-referenz", "review", "en",
  ("Adrian", "Frick", "adrian.frick@gr.ch"), ("Adrian", "Frick", "adrian.frick@gr.ch"),
  "Surname rows missing -> review; unknown metadata row 'Reference: X-1' kept",
  layout="blocks", missing="f", labels=("First name", "Surname", "E-mail"),
  extra_meta=[("Reference", "X-1", 1)])
N("en-table-text-empty-expected-email-review", "review", "en",
  ("Tanja", "Gut", ""), ("Tanja", "Gut", "tanja.gut@zg.ch"),
  "empty entered e-mail cell -> review", labels=("First name", "Last name", "Email address"))
N("en-table-alt-language-row-private-mail-com", "private-email", "en",
  ("Marc", "Aeschlimann", "marc.aeschlimann@be.ch"), ("Marc", "Aeschlimann", "marc.a@mail.com"),
  "Language extra row; private mail.com", mime="alt", cs="windows-1252", cte="quoted-printable",
  labels=("First name", "Family name", "E-mail"), extra_attr=[("Language", "English", "German")])
N("en-blocks-flowed-delsp-swap", "negligible", "en",
  ("Nina", "Wälti", "nina.waelti@be.ch"), ("Wälti", "Nina", "nina.waelti@be.ch"),
  "format=flowed DelSp=yes; swap", layout="blocks", flowed="delsp",
  labels=("Given name", "Last name", "Email address"), indent="  ")
N("en-html-double-family-added-private-gmx-de", "private-email", "en",
  ("Lukas", "Keller", "lukas.keller@so.ch"), ("Lukas", "Keller-Steiner", "lukaskeller78@gmx.de"),
  "double family name plus private gmx.de (like sample 0012)", mime="html", cs="iso-8859-1",
  cte="quoted-printable", labels=("Given name", "Family name", "Email address"), order="gef")
N("en-table-text-two-edit-surname-review", "review", "en",
  ("Martin", "Schweizer", "martin.schweizer@zh.ch"), ("Martin", "Schwyzer", "martin.schweizer@zh.ch"),
  "Schweizer/Schwyzer two edits -> partial -> review", labels=("First name", "Surname", "Email address"))

# English forwards
N("en-fwd-outlook-text-fw-private-t-online", "private-email", "en",
  ("Simon", "Koch", "simon.koch@bl.ch"), ("Simon", "Koch", "simon.koch@t-online.de"),
  "inline Outlook forward (text) From:/Sent:/To:/Subject:, 'FW: '", delivery="inline",
  fwd={"style": "outlook", "prefix": "FW: "}, labels=("First name", "Last name", "E-mail"))
N("en-fwd-outlook-html-fwd-lower", "negligible", "en",
  ("Rebecca", "Studer", "rebecca.studer@insel.ch"), ("Rebecca", "Studer", "rebecca.studer@extern.insel.ch"),
  "inline Outlook forward (html) with lower-case 'fwd: '; subdomain", delivery="inline", mime="html",
  fwd={"style": "outlook", "prefix": "fwd: "}, labels=("Given name", "Surname", "Email address"))
N("en-fwd-gmail-text-forwarded-message", "wrong-person", "en",
  ("Daniel", "Frey", "daniel.frey@ag.ch"), ("Samuel", "Frey", "samuel.frey@ag.ch"),
  "inline Gmail forward (text) '---------- Forwarded message ---------'", delivery="inline",
  fwd={"style": "gmail", "prefix": "Fwd: "}, labels=("First name", "Last name", "E-mail"))
N("en-fwd-gmail-alt-html", "negligible", "en",
  ("Manuela", "Bühlmann", "manuela.buehlmann@lu.ch"), ("Manuela", "Buehlmann", "manuela.buehlmann@lu.ch"),
  "inline Gmail forward as multipart/alternative (text + html)", delivery="inline", mime="alt",
  fwd={"style": "gmail", "prefix": "Fwd: "}, cte="quoted-printable",
  labels=("First name", "Family name", "Email address"))
N("en-fwd-attached-plain-blocks-fw-fw", "review", "en",
  ("Rahel", "Zaugg", "rahel.zaugg@be.ch"), ("Rahel", "Zaugg-Lehmann", "rahel.zaugg@bfh.ch"),
  "attached forward (stacked 'FW: Fw: '); double family added but other domain -> review",
  delivery="attached", layout="blocks", fwd={"prefix": "FW: Fw: "}, labels=("Given name", "Surname", "E-mail"))
N("en-fwd-attached-html-b64-private", "private-email", "en",
  ("Patrick", "Imboden", "patrick.imboden@hopitalvs.ch"), ("Patrick", "Imboden", "imboden.p@hispeed.ch"),
  "attached forward, inner text/html base64 windows-1252; private hispeed.ch", delivery="attached",
  mime="html", cs="windows-1252", cte="base64", fwd={"prefix": "FW: ", "disposition": 'attachment; filename="eIAM notice.eml"'})

# Explicit coverage of subject/forward variants not used above.
N("de-fwd-outlook-html-plain-p-like-sample-0006", "negligible", "de",
  ("Beatrice", "Rossi", "beatrice.rossi@vs.ch"), ("Rossi", "Beatrice", "beatrice.rossi@vs.ch"),
  "inline forward in html with the header block in a <p> and the notice in <blockquote> (sample 0006 shape); swap",
  delivery="inline", mime="html", fwd={"style": "outlook", "html_style": "outlook-plain-p", "prefix": "WG: ", "by": "sara"},
  cs="iso-8859-1", labels=("Vorname", "Nachname", "E-Mail-Adresse"), order="efg", dash="-", subj="latin1")
N("en-fwd-outlook-text-blocks-wg-colon-variants", "negligible", "en",
  ("Olivia", "Marti", "olivia.marti@lu.ch"), ("Olivia", "Marti", "olivia.marti@lu.ch"),
  "inline Outlook forward (English header block) forwarded with German 'AW: WG: ' prefixes; identical",
  delivery="inline", layout="blocks", fwd={"style": "outlook", "prefix": "AW: WG: ", "lang": "en"},
  labels=("First name", "Last name", "Email address"))
N("it-fwd-gmail-html-wrong-person-anna-anja", "wrong-person", "it",
  ("Anna", "Lurati", "anna.lurati@eoc.ch"), ("Anja", "Lurati", "anja.lurati@eoc.ch"),
  "inline Gmail forward (html) in Italian; Anna/Anja -> different given names",
  delivery="inline", mime="html", fwd={"style": "gmail", "prefix": "I: "}, labels=("Nome", "Cognome", "Indirizzo e-mail"))
N("fr-fwd-attached-text-blocks-tr-tr", "negligible", "fr",
  ("Jérôme", "Python", "jerome.python@fr.ch"), ("Jerome", "Python", "jerome.python@fr.ch"),
  "attached forward, inner blocks text QP, stacked 'TR: TR: '", delivery="attached", layout="blocks",
  cte="quoted-printable", labels=("Prénom", "Nom", "Adresse e-mail"), fwd={"prefix": "TR: TR: "})
N("de-fwd-attached-alt-b64-wrong-person", "wrong-person", "de",
  ("Stefanie", "Ackermann", "stefanie.ackermann@tg.ch"), ("Roland", "Ackermann", "roland.ackermann@tg.ch"),
  "attached forward, inner multipart/alternative base64, 'Fwd: '", delivery="attached", mime="alt",
  cte="base64", fwd={"prefix": "Fwd: "})
N("en-table-text-iso-8bit-zoe", "negligible", "en",
  ("Zoë", "Mäder", "zoe.maeder@ag.ch"), ("Zoe", "Maeder", "zoe.maeder@ag.ch"),
  "Zoë/Zoe and ä/ae in English text table, iso-8859-1 8bit", cs="iso-8859-1", subj="latin1", dash="-",
  labels=("First name", "Last name", "Email address"))
N("it-blocks-cp1252-b64-curly-private-bluemail", "private-email", "it",
  ("Mattia", "Crivelli", "mattia.crivelli@ti.ch"), ("Mattia", "Crivelli", "mattia.crivelli@bluemail.ch"),
  "windows-1252 base64 blocks with ’ (0x92) in the intro; private bluemail.ch",
  layout="blocks", cs="windows-1252", cte="base64", curly=True,
  labels=("Nome", "Cognome", "Indirizzo e-mail"))

N("de-table-text-parent-domain-negligible", "negligible", "de",
  ("Lukas", "Gerber", "lukas.gerber@gef.be.ch"), ("Lukas", "Gerber", "lukas.gerber@be.ch"),
  "entered address in a subdomain, signed-in one in the parent domain (other direction of rule 5)",
  labels=("Vorname", "Name", "E-Mail-Adresse"), cte="quoted-printable")
N("de-table-alt-blocks-text-html-table", "private-email", "de",
  ("Corinne", "Blaser", "corinne.blaser@be.ch"), ("Corinne", "Blaser", "corinne.blaser@hotmail.com"),
  "multipart/alternative whose text part uses blocks and html part the table; private hotmail.com",
  mime="alt", layout="blocks", indent="  ", labels=("Vorname", "Nachname", "E-Mail-Adresse"))
N("en-blocks-nbsp-only-surname-review", "review", "en",
  ("Fiona", "Lüscher", "fiona.luescher@ag.ch"), ("Fiona", NB, "fiona.luescher@ag.ch"),
  "actual Surname value holds only NBSP in blocks -> empty -> review", layout="blocks",
  labels=("First name", "Surname", "E-mail"), cs="iso-8859-1", cte="quoted-printable", subj="latin1", dash="-")
N("en-table-text-nbsp-only-expected-cell-review", "review", "en",
  ("Ramon", "Egli", NB + NB), ("Ramon", "Egli", "ramon.egli@zg.ch"),
  "entered e-mail cell in the middle column of a text table holds only NBSP -> empty -> review",
  labels=("Given name", "Last name", "Email address"))
N("en-unreadable-text-table-no-actual-column", "review", "en",
  ("Noah", "Kessler", "noah.kessler@sh.ch"), ("Noah", "Kessler", "noah.kessler@sh.ch"),
  "text table with only the Attribute and Entered columns -> unreadable", unreadable="no-actual-column")

# ---- look-alikes and untrusted forwards: full notice otherwise --------------
N("not-lookalike-eiam-admin-ch-hyphen", "not-a-notice", "de",
  ("Anna", "Muster", "anna.muster@be.ch"), ("Anna", "Muster", "anna.muster@gmail.com"),
  "look-alike sender noreply@eiam-admin.ch with a full notice", mime="alt", nan="untrusted-sender",
  **{"from": "eIAM <noreply@eiam-admin.ch>"})
N("not-lookalike-eiam-admin-ch-evil-example", "not-a-notice", "fr",
  ("Chloé", "Favre", "chloe.favre@vd.ch"), ("Chloe", "Favre", "chloe.favre@gmail.com"),
  "look-alike sender noreply@eiam.admin.ch.evil.example", mime="html", nan="untrusted-sender",
  **{"from": "eIAM <noreply@eiam.admin.ch.evil.example>"})
N("not-lookalike-display-name-eiam-gmail", "not-a-notice", "de",
  ("Jürg", "Gröbli", "jurg.groebli@be.ch"), ("Hans", "Meier", "hans.meier@gmail.com"),
  "display name 'eIAM' with another address", layout="blocks", nan="untrusted-sender",
  **{"from": "eIAM <eiam.noreply@gmail.com>"})
N("not-lookalike-display-name-is-address", "not-a-notice", "it",
  ("Giulia", "Rezzonico", "giulia.rezzonico@eoc.ch"), ("Marco", "Rossi", "marco.rossi@gmail.com"),
  "display name that is the eIAM address, real address elsewhere", mime="alt", nan="untrusted-sender",
  **{"from": '"noreply@eiam.admin.ch" <alerts@eiam-support.net>'})
N("not-lookalike-subdomain-of-eiam", "not-a-notice", "en",
  ("Emily", "Baumgartner", "emily.baumgartner@zh.ch"), ("Emily", "Baumgartner", "emily.b@gmail.com"),
  "sender noreply@mail.eiam.admin.ch: not the configured address", nan="untrusted-sender",
  **{"from": "eIAM <noreply@mail.eiam.admin.ch>"})
N("not-inline-forward-quoted-from-gmail", "not-a-notice", "de",
  ("Anna", "Muster", "anna.muster@be.ch"), ("Anna", "Muster", "anna.muster@gmail.com"),
  "inline forward by a superuser whose quoted From is hans.meier@gmail.com, not eIAM",
  delivery="inline", fwd={"style": "outlook", "prefix": "WG: "}, nan="untrusted-sender",
  quoted_from="Hans Meier <hans.meier@gmail.com>")
N("not-attached-forward-inner-lookalike-eiarn", "not-a-notice", "fr",
  ("Noémie", "Chappuis", "noemie.chappuis@ne.ch"), ("Noémie", "Chappuis", "noemie.chappuis@gmail.com"),
  "attached forward whose inner From is noreply@eiarn.admin.ch (rn for m)", delivery="attached",
  fwd={"prefix": "TR: "}, nan="untrusted-sender", **{"from": "eIAM <noreply@eiarn.admin.ch>"})



# ---------------------------------------------------------------- forward chains


class Msg:
    """One message of a forward chain as a mail program renders it: its header fields, its text
    and HTML bodies (the HTML without <html>/<body>) and the messages attached to it."""

    def __init__(self, from_, to, subject, date, msgid, text, html, attachments, lang):
        self.from_, self.to, self.subject, self.date, self.msgid = from_, to, subject, date, msgid
        self.text, self.html, self.attachments, self.lang = text, html, attachments, lang


def apple_date(lang: str, d: dt.datetime) -> str:
    mon = MONTHS[lang][d.month - 1]
    tz = "MESZ" if d.utcoffset() == dt.timedelta(hours=2) else "MEZ"
    if lang == "de":
        return f"{d.day}. {mon} {d.year} um {d:%H:%M:%S} {tz}"
    if lang == "fr":
        return f"{d.day} {mon} {d.year} à {d:%H:%M:%S} UTC{d:%z}"
    if lang == "it":
        return f"{d.day} {mon} {d.year} alle ore {d:%H:%M:%S} {tz}"
    return f"{d.day} {mon} {d.year} at {d:%H:%M:%S} {'CEST' if tz == 'MESZ' else 'CET'}"


APPLE = {
    "de": ("Anfang der weitergeleiteten Nachricht:", "Von:", "Betreff:", "Datum:", "An:"),
    "fr": ("Début du message réexpédié :", "De :", "Objet :", "Date :", "À :"),
    "it": ("Inizio messaggio inoltrato:", "Da:", "Oggetto:", "Data:", "A:"),
    "en": ("Begin forwarded message:", "From:", "Subject:", "Date:", "To:"),
}
THUNDERBIRD = {
    "de": ("-------- Weitergeleitete Nachricht --------", "Betreff:", "Datum:", "Von:", "An:"),
    "fr": ("-------- Message transféré --------", "Sujet :", "Date :", "De :", "Pour :"),
    "it": ("-------- Messaggio inoltrato --------", "Oggetto:", "Data:", "Mittente:", "A:"),
    "en": ("-------- Forwarded Message --------", "Subject:", "Date:", "From:", "To:"),
}
OUTLOOK_OLD = {"de": "-----Ursprüngliche Nachricht-----", "fr": "-----Message d'origine-----",
               "it": "-----Messaggio originale-----", "en": "-----Original Message-----"}


def block_text(style: str, lang: str, m: Msg) -> str:
    """The header block a mail program writes above the message m it forwards, as text."""
    name, addr = re.match(r"(.*) <(.*)>", m.from_).groups()
    if style in ("outlook", "outlook-hr"):  # Outlook on the web writes the same text
        lv, ls, lt, lsub = OUTLOOK_LABELS[lang]
        return (f"________________________________\n{lv} {m.from_}\n{ls} {outlook_date(lang, m.date)}\n"
                f"{lt} {m.to}\n{lsub} {m.subject}\n")
    if style == "outlook-old":
        lv, ls, lt, lsub = OUTLOOK_LABELS[lang]
        return (f"{OUTLOOK_OLD[lang]}\n{lv} {name} [mailto:{addr}]\n{ls} {outlook_date(lang, m.date)}\n"
                f"{lt} {m.to}\n{lsub} {m.subject}\n")
    if style == "gmail":
        mark, lf, ld, lsub, lt = GMAIL[lang]
        return f"{mark}\n{lf} {m.from_}\n{ld} {gmail_date(lang, m.date)}\n{lsub} {m.subject}\n{lt} {m.to}\n"
    if style == "apple":
        mark, lf, lsub, ld, lt = APPLE[lang]
        return f"{mark}\n\n{lf} {m.from_}\n{lsub} {m.subject}\n{ld} {apple_date(lang, m.date)}\n{lt} {m.to}\n"
    assert style == "thunderbird", style
    mark, lsub, ld, lf, lt = THUNDERBIRD[lang]
    return (f"{mark}\n{lsub} \t{m.subject}\n{ld} \t{format_datetime(m.date)}\n{lf} \t{m.from_}\n"
            f"{lt} \t{m.to}\n")


def block_html(style: str, lang: str, m: Msg) -> str:
    """The same header block in the HTML the mail program writes."""
    E = lambda s: ent(s, "raw")  # noqa: E731
    name, addr = re.match(r"(.*) <(.*)>", m.from_).groups()
    if style in ("outlook", "outlook-old"):
        lv, ls, lt, lsub = OUTLOOK_LABELS[lang]
        return ('<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">\n'
                f'<p class="MsoNormal"><b>{E(lv)}</b> {E(m.from_)}<br>\n<b>{E(ls)}</b> '
                f"{E(outlook_date(lang, m.date))}<br>\n<b>{E(lt)}</b> {E(m.to)}<br>\n"
                f"<b>{E(lsub)}</b> {E(m.subject)}</p>\n</div>\n")
    if style == "outlook-hr":
        lv, ls, lt, lsub = OUTLOOK_LABELS[lang]
        return (f'<hr style="display:inline-block;width:98%" tabindex="-1">\n<div id="divRplyFwdMsg" dir="ltr">'
                f'<font face="Calibri, sans-serif" style="font-size:11pt" color="#000000"><b>{E(lv)}</b> {E(m.from_)}<br>'
                f"<b>{E(ls)}</b> {E(outlook_date(lang, m.date))}<br><b>{E(lt)}</b> {E(m.to)}<br>"
                f"<b>{E(lsub)}</b> {E(m.subject)}</font>\n<div>&nbsp;</div>\n</div>\n")
    if style == "gmail":
        mark, lf, ld, lsub, lt = GMAIL[lang]
        tname, taddr = re.match(r"(.*) <(.*)>", m.to).groups()
        return ('<div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
                f'{E(mark)}<br>{E(lf)} <strong class="gmail_sendername" dir="auto">{E(name)}</strong> '
                f'<span dir="auto">&lt;<a href="mailto:{addr}">{addr}</a>&gt;</span><br>'
                f"{E(ld)} {E(gmail_date(lang, m.date))}<br>{E(lsub)} {E(m.subject)}<br>"
                f'{E(lt)} {E(tname)} &lt;<a href="mailto:{taddr}">{taddr}</a>&gt;<br></div><br><br>\n')
    if style == "apple":
        mark, lf, lsub, ld, lt = APPLE[lang]
        span = '<span style="margin: 0px; font-family: -webkit-system-font, Helvetica Neue, Helvetica, sans-serif; color:rgba(0, 0, 0, 1.0);">'
        row = lambda label, value: (f'<div style="margin-top: 0px; margin-right: 0px; margin-bottom: 0px; margin-left: 0px;">'  # noqa: E731
                                    f"{span}<b>{E(label)} </b></span>{span}{value}<br></span></div>\n")
        tname, taddr = re.match(r"(.*) <(.*)>", m.to).groups()
        return (f'<div><br><blockquote type="cite"><div>{E(mark)}</div><br class="Apple-interchange-newline">\n'
                + row(lf, f'{E(name)} &lt;<a href="mailto:{addr}">{addr}</a>&gt;')
                + row(lsub, f"<b>{E(m.subject)}</b>")
                + row(ld, E(apple_date(lang, m.date)))
                + row(lt, f'{E(tname)} &lt;<a href="mailto:{taddr}">{taddr}</a>&gt;')
                + "<br></blockquote></div>\n")
    assert style == "thunderbird", style
    mark, lsub, ld, lf, lt = THUNDERBIRD[lang]
    th = '<th valign="BASELINE" nowrap="nowrap" align="RIGHT">'
    tname, taddr = re.match(r"(.*) <(.*)>", m.to).groups()
    return ('<div class="moz-forward-container"><br>\n<br>\n' + E(mark) + "\n"
            '<table class="moz-email-headers-table" border="0" cellspacing="0" cellpadding="0">\n<tbody>\n'
            f"<tr>{th}{E(lsub)} </th><td>{E(m.subject)}</td></tr>\n"
            f"<tr>{th}{E(ld)} </th><td>{E(format_datetime(m.date))}</td></tr>\n"
            f'<tr>{th}{E(lf)} </th><td>{E(name)} <a class="moz-txt-link-rfc2396E" href="mailto:{addr}">&lt;{addr}&gt;</a></td></tr>\n'
            f'<tr>{th}{E(lt)} </th><td>{E(tname)} <a class="moz-txt-link-rfc2396E" href="mailto:{taddr}">&lt;{taddr}&gt;</a></td></tr>\n'
            "</tbody>\n</table>\n<br>\n<br>\n")


def render(m: Msg, mime: str, rng: random.Random, cs: str = "utf-8", cte: str = "quoted-printable") -> bytes:
    """The message m as a mail: its body as text, HTML or both, its attachments after it."""
    parts = []
    if mime in ("plain", "alt"):
        parts.append(leaf("text/plain", m.text, cs, cte))
    if mime in ("html", "alt"):
        doc = f'<html><head><meta charset="{cs}"></head><body>\n{m.html}\n</body></html>\n'
        parts.append(leaf("text/html", doc, cs, cte))
    body = parts[0] if len(parts) == 1 else multipart("alternative", parts, rng)
    if m.attachments:
        body = multipart("mixed", [body] + [rfc822(a) for a in m.attachments], rng)
    return message([("From", m.from_), ("To", m.to), ("Subject", enc_header(m.subject)),
                    ("Date", format_datetime(m.date)), ("Message-ID", m.msgid)], body)


PREFIX = {"de": "WG: ", "fr": "TR: ", "it": "I: ", "en": "FW: "}


def build_chain(spec: dict, rng: random.Random):
    """The notice of spec, forwarded hop by hop (innermost first). Returns the notice, the mail
    and what the parser must read of its senders (golden fields)."""
    n = Notice(spec, rng)
    n.msgid = msgid(rng, "eiam.admin.ch")
    n.sender = spec.get("from", EIAM)
    mime = spec.get("mime", "alt")
    cur = Msg(n.sender, n.to, n.subject, n.date, n.msgid, n.text(spec.get("layout", "text-table")),
              n.html_inner(), [], n.lang)
    raw_cur = render(cur, mime, rng, spec.get("cs", "utf-8"), spec.get("cte", "8bit"))
    hops = spec["hops"]
    date = n.date
    senders = []
    holder, holder_mime = None, None  # the MIME message whose text quotes the notice (innermost hop inline)
    attached = 0
    for i, (kind, style, by, hmime) in enumerate(hops):
        fname, faddr = SUPERUSERS[by]
        to = (f"{SUPERUSERS[hops[i + 1][2]][0]} <{SUPERUSERS[hops[i + 1][2]][1]}>" if i + 1 < len(hops)
              else f"eIAM triage <{MAILBOX}>")
        date = date + dt.timedelta(minutes=rng.randrange(3, 300))
        lang = spec.get("fwd_lang", n.lang)
        mid = msgid(rng, faddr.split("@")[1] if faddr.isascii() else "mail.example.net")
        subject = PREFIX[lang] + cur.subject
        if kind == "attached":
            note = ATT_TEXT[lang]
            m = Msg(f"{fname} <{faddr}>", to, subject, date, mid, note + "\n",
                    f"<p>{ent(note, 'raw')}</p>", [raw_cur], lang)
            attached += 1
        else:
            note = FWD_TEXT[lang].format(name=fname)
            text = note + "\n\n" + block_text(style, lang, cur) + "\n" + cur.text
            html = (f"<div>{ent(note, 'raw').replace(chr(10), '<br>')}</div>\n" + block_html(style, lang, cur)
                    + "<blockquote>\n" + cur.html + "\n</blockquote>\n")
            m = Msg(f"{fname} <{faddr}>", to, subject, date, mid, text, html, cur.attachments, lang)
        if holder is None and hops[0][0] == "inline" and (i + 1 == len(hops) or hops[i + 1][0] == "attached"):
            holder, holder_mime = m, hmime
        senders.append(faddr)
        cur = m
        raw_cur = render(cur, hmime, rng)
    env = {"from": addr_of(n.sender), "subject": n.subject, "subject_name": n.subject_name,
           "forwarders": senders[::-1], "outer_message_id": cur.msgid}
    # What the parser reads the comparison from: the notice's own body when it is attached, else
    # the body of the message that quotes it (text first, when there is one).
    seen = mime if hops[0][0] == "attached" else holder_mime
    env["layout"] = "html-table" if seen == "html" else spec.get("layout", "text-table")
    if hops[0][0] == "attached":
        env.update({"delivery": "attached-forward", "message_id": n.msgid, "to": [addr_of(n.to)],
                    "date": n.date.isoformat(), "part": ".".join(["2"] * attached)})
    else:
        env.update({"delivery": "inline-forward", "to": [addr_of(n.to)], "date": holder.date.isoformat()})
    return n, raw_cur, env


def direct_fields(raw: bytes, lang: str, layout: str, exp, act) -> dict:
    """What the parser reads of a direct mail holding a comparison without metadata."""
    import email
    import email.policy
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    keys = ("given_name", "family_name", "email")
    return {"language": lang, "delivery": "direct", "layout": layout, "from": addr_of(str(msg["From"])),
            "to": [addr_of(str(msg["To"]))], "subject": str(msg["Subject"]), "message_id": str(msg["Message-ID"]),
            "date": msg["Date"].datetime.isoformat(), "expected": dict(zip(keys, exp)),
            "actual": dict(zip(keys, act))}


# ---- forward chains: two and three hops, inline and attached in every combination --------------
# hops innermost first: (delivery, mail program's form, who forwards, the forward's MIME)
IN, AT = "inline", "attached"
C("de-chain2-inline-in-inline-outlook-text-wrong-person", "wrong-person", "de",
  ("Barbara", "Kunz", "barbara.kunz@be.ch"), ("Werner", "Kunz", "wkunz@bluewin.ch"),
  "a colleague forwarded the notice inline (Outlook, text) to the superuser, who forwarded that inline again: the twice-forwarded wrong person",
  [(IN, "outlook", "urs", "plain"), (IN, "outlook", "martina", "plain")], su="urs")
C("de-chain2-attached-in-inline-outlook-html-private", "private-email", "de",
  ("Michael", "Gerber", "michael.gerber@be.ch"), ("Michael", "Gerber", "m.gerber@gmx.ch"),
  "attached to a colleague's forward, which the superuser forwarded inline (Outlook HTML, the attachment carried along)",
  [(AT, None, "urs", "plain"), (IN, "outlook", "martina", "html")], su="urs")
C("de-chain2-inline-in-attached-thunderbird-text-review", "review", "de",
  ("Sandra", "Moser", "sandra.moser@be.ch"), ("Sandra", "Brunner", "sandra.moser@be.ch"),
  "a colleague's inline Thunderbird forward (text, 'Weitergeleitete Nachricht' table of Betreff/Datum/Von/An), attached by the superuser",
  [(IN, "thunderbird", "urs", "plain"), (AT, None, "peter", "plain")], su="urs", layout="blocks")
C("de-chain2-attached-in-attached-negligible", "negligible", "de",
  ("Reto", "Hofer", "reto.hofer@be.ch"), ("Reto", "Hofer", "reto.hofer@be.ch"),
  "attached in attached: the notice at part 2.2", [(AT, None, "urs", "alt"), (AT, None, "peter", "plain")],
  su="urs", mime="html")
C("fr-chain2-inline-in-inline-apple-gmail-html-wrong-person", "wrong-person", "fr",
  ("Valérie", "Bonvin", "valerie.bonvin@be.ch"), ("Julien", "Bonvin", "julien.bonvin@gmail.com"),
  "Apple Mail's 'Début du message réexpédié :' (HTML) inside a Gmail 'Message transféré' forward (HTML only)",
  [(IN, "apple", "claire", "html"), (IN, "gmail", "peter", "html")], su="claire", labels=("Prénom", "Nom", "E-mail"))
C("fr-chain2-attached-in-inline-gmail-text-negligible", "negligible", "fr",
  ("Élise", "Roth", "elise.roth@be.ch"), ("Elise", "Roth", "elise.roth@be.ch"),
  "attached to a colleague's forward, forwarded inline by the superuser from Gmail (text)",
  [(AT, None, "claire", "plain"), (IN, "gmail", "peter", "plain")], su="claire", labels=("Prénom", "Nom", "Courriel"))
C("fr-chain2-inline-in-attached-outlook-old-private", "private-email", "fr",
  ("Nicolas", "Favre", "nicolas.favre@be.ch"), ("Nicolas", "Favre", "nico.favre@hotmail.fr"),
  "an older Outlook '-----Message d'origine-----' inline forward, attached (multipart/alternative) by the superuser",
  [(IN, "outlook-old", "claire", "plain"), (AT, None, "peter", "alt")], su="claire",
  labels=("Prénom", "Nom de famille", "Adresse e-mail"))
C("fr-chain2-attached-in-attached-review", "review", "fr",
  ("Aline", "Perret", "aline.perret@be.ch"), ("Aline", "Perret", "aline.perret@unige.ch"),
  "attached in attached (French)", [(AT, None, "claire", "plain"), (AT, None, "peter", "plain")], su="claire",
  labels=("Prénom", "Nom", "E-mail"), layout="blocks")
C("it-chain2-inline-in-inline-thunderbird-outlook-html-wrong-person", "wrong-person", "it",
  ("Chiara", "Lepori", "chiara.lepori@be.ch"), ("Paolo", "Lepori", "paolo.lepori@libero.it"),
  "Thunderbird's HTML header table (moz-email-headers-table, Oggetto/Data/Mittente/A) inside an Outlook HTML forward",
  [(IN, "thunderbird", "marco", "html"), (IN, "outlook", "martina", "html")], su="marco")
C("it-chain2-attached-in-inline-apple-text-private", "private-email", "it",
  ("Luca", "Ferrari", "luca.ferrari@be.ch"), ("Luca", "Ferrari", "luca.ferrari@gmail.com"),
  "attached to a colleague's forward, forwarded inline from Apple Mail ('Inizio messaggio inoltrato:', text)",
  [(AT, None, "marco", "plain"), (IN, "apple", "martina", "plain")], su="marco")
C("it-chain2-inline-in-attached-gmail-html-negligible", "negligible", "it",
  ("Giorgio", "Bernasconi", "giorgio.bernasconi@be.ch"), ("Giorgio", "Bernasconi", "giorgio.bernasconi@be.ch"),
  "a colleague's Gmail HTML forward ('Messaggio inoltrato', gmail_quote), attached by the superuser",
  [(IN, "gmail", "marco", "html"), (AT, None, "martina", "plain")], su="marco")
C("it-chain2-attached-in-attached-wrong-person", "wrong-person", "it",
  ("Sara", "Galli", "sara.galli@be.ch"), ("Elena", "Galli", "elena.galli@be.ch"),
  "attached in attached (Italian): a wrong person two attachments deep", [(AT, None, "marco", "plain"), (AT, None, "martina", "alt")],
  su="marco")
C("en-chain2-inline-in-inline-gmail-outlook-hr-alt-review", "review", "en",
  ("Emma", "Wyss", "emma.wyss@be.ch"), ("Emma", "Steiner", "emma.wyss@be.ch"),
  "Gmail's 'Forwarded message' (text and HTML) inside an Outlook web forward (<hr> and divRplyFwdMsg, HTML only)",
  [(IN, "gmail", "james", "alt"), (IN, "outlook-hr", "peter", "html")], su="james")
C("en-chain2-attached-in-inline-thunderbird-html-negligible", "negligible", "en",
  ("Oliver", "Schmid", "oliver.schmid@be.ch"), ("Oliver", "Schmid", "oliver.schmid@be.ch"),
  "attached to a colleague's forward, forwarded inline from Thunderbird (HTML only, moz-forward-container)",
  [(AT, None, "james", "plain"), (IN, "thunderbird", "peter", "html")], su="james")
C("en-chain2-inline-in-attached-outlook-hr-html-private", "private-email", "en",
  ("Grace", "Keller", "grace.keller@be.ch"), ("Grace", "Keller", "gracek@yahoo.com"),
  "a colleague's Outlook web forward (HTML only), attached by the superuser",
  [(IN, "outlook-hr", "james", "html"), (AT, None, "peter", "plain")], su="james")
C("en-chain2-attached-in-attached-private", "private-email", "en",
  ("Henry", "Baumann", "henry.baumann@be.ch"), ("Henry", "Baumann", "henry.baumann@icloud.com"),
  "attached in attached (English)", [(AT, None, "james", "plain"), (AT, None, "peter", "plain")], su="james",
  labels=("Given name", "Surname", "Email address"))
C("de-chain3-inline-inline-inline-apple-gmail-outlook-text-wrong-person", "wrong-person", "de",
  ("Monika", "Steffen", "monika.steffen@be.ch"), ("Heidi", "Steffen", "heidi.steffen@gmx.ch"),
  "three inline forwards in text: Apple Mail inside Gmail inside Outlook", [(IN, "apple", "urs", "plain"),
  (IN, "gmail", "lukas", "plain"), (IN, "outlook", "martina", "plain")], su="urs", layout="blocks", indent="  ")
C("fr-chain3-attached-attached-attached-negligible", "negligible", "fr",
  ("Hélène", "Monnet", "helene.monnet@be.ch"), ("Helene", "Monnet", "helene.monnet@be.ch"),
  "three attachments deep: the notice at part 2.2.2", [(AT, None, "claire", "plain"), (AT, None, "olivier", "plain"),
  (AT, None, "peter", "plain")], su="claire")
C("it-chain3-inline-attached-inline-html-private", "private-email", "it",
  ("Marta", "Rossi", "marta.rossi@be.ch"), ("Marta", "Rossi", "marta.rossi@hotmail.it"),
  "an inline Outlook forward, attached to a forward that the superuser forwarded inline from Thunderbird (HTML)",
  [(IN, "outlook", "marco", "html"), (AT, None, "sara", "plain"), (IN, "thunderbird", "martina", "html")], su="marco")
C("en-chain3-attached-inline-attached-review", "review", "en",
  ("Lucy", "Frei", "lucy.frei@be.ch"), ("Lucy", "Frei", "lucy.frei@unibe.ch"),
  "attached, then forwarded inline with the attachment (Apple Mail, text), then attached by the superuser",
  [(AT, None, "james", "plain"), (IN, "apple", "nathalie", "plain"), (AT, None, "peter", "plain")], su="james")
C("de-chain3-attached-inline-inline-thunderbird-outlook-html-negligible", "negligible", "de",
  ("Andreas", "Bühler", "andreas.buehler@be.ch"), ("Andreas", "Buehler", "andreas.buehler@be.ch"),
  "attached, then forwarded inline twice (Thunderbird HTML, then Outlook HTML), the attachment carried along: part 2",
  [(AT, None, "urs", "plain"), (IN, "thunderbird", "lukas", "html"), (IN, "outlook", "martina", "html")], su="urs")
C("fr-chain3-inline-inline-attached-wrong-person", "wrong-person", "fr",
  ("Sophie", "Pasche", "sophie.pasche@be.ch"), ("Claude", "Pasche", "claude.pasche@orange.fr"),
  "two inline forwards (Thunderbird text, then Outlook text) attached by the superuser",
  [(IN, "thunderbird", "claire", "plain"), (IN, "outlook", "olivier", "plain"), (AT, None, "peter", "plain")],
  su="claire", labels=("Prénom", "Nom", "E-mail"))
C("it-chain3-attached-attached-inline-outlook-old-negligible", "negligible", "it",
  ("Fabio", "Crivelli", "fabio.crivelli@be.ch"), ("Fabio", "Crivelli", "fabio.crivelli@be.ch"),
  "attached in attached, forwarded inline by the superuser ('-----Messaggio originale-----', text)",
  [(AT, None, "marco", "plain"), (AT, None, "sara", "plain"), (IN, "outlook-old", "martina", "plain")], su="marco")
C("en-chain3-inline-attached-attached-apple-html-private", "private-email", "en",
  ("Ella", "Zimmermann", "ella.zimmermann@be.ch"), ("Ella", "Zimmermann", "ella.z@outlook.com"),
  "an Apple Mail HTML forward ('Begin forwarded message:'), attached, and attached again",
  [(IN, "apple", "james", "html"), (AT, None, "nathalie", "plain"), (AT, None, "peter", "plain")], su="james")

# ---- one hop, the forms not covered above: Apple Mail, Thunderbird, Outlook on the web -----------
C("de-fwd-apple-text-private", "private-email", "de",
  ("Ursula", "Meier", "ursula.meier@be.ch"), ("Ursula", "Meier", "ursula.meier@bluewin.ch"),
  "Apple Mail inline forward (text): 'Anfang der weitergeleiteten Nachricht:', Von/Betreff/Datum/An",
  [(IN, "apple", "martina", "plain")])
C("de-fwd-thunderbird-html-only-wrong-person", "wrong-person", "de",
  ("Thomas", "Lehmann", "thomas.lehmann@be.ch"), ("Daniel", "Lehmann", "daniel.lehmann@be.ch"),
  "a superuser's HTML-only Thunderbird forward (moz-forward-container, moz-email-headers-table)",
  [(IN, "thunderbird", "peter", "html")])
C("fr-fwd-apple-html-negligible", "negligible", "fr",
  ("Céline", "Aubert", "celine.aubert@be.ch"), ("Celine", "Aubert", "celine.aubert@be.ch"),
  "Apple Mail inline forward (HTML): 'Début du message réexpédié :'", [(IN, "apple", "peter", "html")])
C("fr-fwd-thunderbird-text-private", "private-email", "fr",
  ("Pierre", "Rochat", "pierre.rochat@be.ch"), ("Pierre", "Rochat", "pierre.rochat@free.fr"),
  "Thunderbird inline forward (text): '-------- Message transféré --------', Sujet/Date/De/Pour",
  [(IN, "thunderbird", "peter", "plain")], labels=("Prénom", "Nom", "Courriel"))
C("it-fwd-thunderbird-text-review", "review", "it",
  ("Anna", "Colombo", "anna.colombo@be.ch"), ("Anna", "Conti", "anna.colombo@be.ch"),
  "Thunderbird inline forward (text): '-------- Messaggio inoltrato --------', Oggetto/Data/Mittente/A",
  [(IN, "thunderbird", "martina", "plain")])
C("it-fwd-apple-html-wrong-person", "wrong-person", "it",
  ("Giulia", "Pedrazzini", "giulia.pedrazzini@be.ch"), ("Roberto", "Pedrazzini", "roberto.p@gmail.com"),
  "Apple Mail inline forward (HTML): 'Inizio messaggio inoltrato:'", [(IN, "apple", "martina", "html")])
C("en-fwd-thunderbird-html-only-private", "private-email", "en",
  ("Laura", "Graf", "laura.graf@be.ch"), ("Laura", "Graf", "laura.graf@gmail.com"),
  "a superuser's HTML-only Thunderbird forward ('-------- Forwarded Message --------' and its header table)",
  [(IN, "thunderbird", "peter", "html")])
C("en-fwd-apple-text-negligible", "negligible", "en",
  ("Noah", "Kunz", "noah.kunz@be.ch"), ("Noah", "Kunz", "noah.kunz@be.ch"),
  "Apple Mail inline forward (text): 'Begin forwarded message:'", [(IN, "apple", "peter", "plain")])
C("de-fwd-outlook-hr-html-review", "review", "de",
  ("Karin", "Wenger", "karin.wenger@be.ch"), ("Karin", "Wenger", "karin.wenger@unibe.ch"),
  "Outlook on the web inline forward (HTML only, <hr> and divRplyFwdMsg)", [(IN, "outlook-hr", "martina", "html")])

# ---- forwards and notices that sender authentication quarantines --------------------------------
C("de-chain2-by-other-superuser-wrong-person", "wrong-person", "de",
  ("Peter", "Wyss", "peter.wyss@be.ch"), ("Stefan", "Wyss", "stefan.wyss@be.ch"),
  "a chain whose outermost forwarder is a superuser of another canton (sara.bianchi@ti.ch): quarantined, untrusted-forwarder",
  [(IN, "outlook", "urs", "plain"), (AT, None, "sara", "plain")], su="urs")
C("en-chain2-superuser-unauthenticated-wrong-person", "wrong-person", "en",
  ("Mia", "Huber", "mia.huber@be.ch"), ("Zoe", "Huber", "zoe.huber@be.ch"),
  "a chain forwarded by a superuser, but the mail carries no Authentication-Results of mx.be.ch: quarantined, unauthenticated",
  [(AT, None, "james", "plain"), (IN, "gmail", "peter", "plain")], su="james", auth="none")
C("it-chain2-inner-lookalike-sender", "not-a-notice", "it",
  ("Nina", "Ghisla", "nina.ghisla@be.ch"), ("Nina", "Ghisla", "nina.ghisla@gmail.com"),
  "a chain whose innermost From is the look-alike noreply@eiam-admin.ch: the sender rule rejects it",
  [(IN, "outlook", "marco", "plain"), (IN, "outlook", "martina", "plain")], su="marco", nan="untrusted-sender",
  **{"from": "eIAM <noreply@eiam-admin.ch>"})
C("it-fwd-lookalike-forwarder-dotted-capital-i-wrong-person", "wrong-person", "it",
  ("Lara", "Bernasconi", "lara.bernasconi@ti.ch"), ("Mara", "Rusconi", "mara.rusconi@gmail.com"),
  "a forward from sara.bİanchi@tİ.ch (capital dotted I): read as written, never folded onto sara.bianchi@ti.ch; quarantined, ambiguous-sender",
  [(AT, None, "sara_lookalike", "plain")], auth="none")
N("not-lookalike-dotted-capital-i-eiam", "not-a-notice", "de",
  ("Anna", "Muster", "anna.muster@be.ch"), ("Anna", "Muster", "anna.muster@gmail.com"),
  "look-alike sender noreply@eİam.admİn.ch (capital dotted I, which strings.ToLower maps to i): read as written; not an eIAM sender",
  nan="ambiguous-sender", auth="none", **{"from": "eIAM <noreply@eİam.admİn.ch>"})
N("de-forged-direct-no-authentication-results-wrong-person", "wrong-person", "de",
  ("Ruth", "Keller", "ruth.keller@be.ch"), ("Vera", "Keller", "vera.keller@gmail.com"),
  "claims the eIAM sender but carries no Authentication-Results of mx.be.ch: quarantined, unauthenticated",
  auth="none")
N("fr-forged-direct-dkim-fail-private", "private-email", "fr",
  ("Lucie", "Morel", "lucie.morel@be.ch"), ("Lucie", "Morel", "lucie.morel@gmail.com"),
  "claims the eIAM sender; mx.be.ch says dkim=fail and dmarc=fail: quarantined, unauthenticated",
  auth="fail", labels=("Prénom", "Nom", "E-mail"))
N("en-forged-direct-planted-pass-below-fail-wrong-person", "wrong-person", "en",
  ("Adam", "Roth", "adam.roth@be.ch"), ("Eve", "Roth", "eve.roth@gmail.com"),
  "a passing Authentication-Results of mx.be.ch planted below the failing real one on top: quarantined, unauthenticated",
  auth="planted", mime="alt")

# ---- the other not-a-notice mails -------------------------------------------


def plain_msg(rng, headers, text, cs="utf-8", cte="8bit"):
    return message(headers, leaf("text/plain", text, cs, cte))


def sample_notice(rng, lang, exp, act, **kw) -> Notice:
    spec = dict(name="inner", lang=lang, exp=exp, act=act, cls="negligible", covers="")
    spec.update(kw)
    return Notice(spec, rng)


def x_ooo_fr(rng):
    n = sample_notice(rng, "fr", ("Chloé", "Favre", "chloe.favre@vd.ch"), ("Chloé", "Favre", "c@gmail.com"))
    d = n.date + dt.timedelta(minutes=2)
    return plain_msg(rng, [
        ("From", "Beatrice " + enc_header("Käser") + " <beatrice.kaser@ge.ch>"),
        ("To", "Olivier Roch <olivier.roch@vd.ch>"),
        ("Subject", enc_header("Réponse automatique : " + n.subject)),
        ("Date", format_datetime(d)), ("Message-ID", msgid(rng, "ge.ch")),
        ("Auto-Submitted", "auto-replied")],
        "Je suis absente jusqu'au 3 décembre. En cas d'urgence, veuillez contacter le secrétariat.\n")


def x_ooo_de_quoting(rng):
    n = sample_notice(rng, "de", ("Anna", "Muster", "anna.muster@be.ch"), ("Anna", "Muster", "anna.muster@gmail.com"))
    d = n.date + dt.timedelta(minutes=1)
    text = ("Ich bin bis am 14. August abwesend und habe keinen Zugriff auf meine E-Mails.\n"
            "In dringenden Fällen wenden Sie sich an support@be.ch.\n\n"
            "-----Ursprüngliche Nachricht-----\n"
            f"Von: {EIAM}\nGesendet: {outlook_date('de', n.date)}\nAn: {n.to}\nBetreff: {n.subject}\n\n"
            + n.text("text-table"))
    return plain_msg(rng, [
        ("From", "Thomas Brunner <thomas.brunner@be.ch>"), ("To", "Martina Graf <martina.graf@be.ch>"),
        ("Subject", enc_header("Automatische Antwort: " + n.subject)),
        ("Date", format_datetime(d)), ("Message-ID", msgid(rng, "be.ch")),
        ("Auto-Submitted", "auto-replied"), ("X-Auto-Response-Suppress", "All")], text, cte="quoted-printable")


def x_ooo_it_html(rng):
    n = sample_notice(rng, "it", ("Sara", "Fontana", "sara.fontana@ti.ch"), ("Sara", "Fontana", "sara.f@gmail.com"))
    d = n.date + dt.timedelta(minutes=3)
    h = ("<html><body><p>Sono assente fino al 2 settembre. Per urgenze contattare "
         "<a href=\"mailto:ufficio@ti.ch\">ufficio@ti.ch</a>.</p></body></html>\n")
    return message([
        ("From", "Marco Ghirlanda <marco.ghirlanda@ti.ch>"), ("To", "Sara Bianchi <sara.bianchi@ti.ch>"),
        ("Subject", enc_header("Risposta automatica: " + n.subject)),
        ("Date", format_datetime(d)), ("Message-ID", msgid(rng, "ti.ch")),
        ("Auto-Submitted", "auto-replied (vacation)"), ("Precedence", "auto_reply")],
        multipart("alternative", [
            leaf("text/plain", "Sono assente fino al 2 settembre. Per urgenze contattare ufficio@ti.ch.\n",
                 "utf-8", "7bit"),
            leaf("text/html", h, "utf-8", "7bit")], rng))


def dsn_status(rcpt: str, mta: str, arrival: dt.datetime, diag: str) -> Part:
    body = (f"Reporting-MTA: dns; {mta}\nArrival-Date: {format_datetime(arrival)}\n\n"
            f"Final-Recipient: rfc822; {rcpt}\nOriginal-Recipient: rfc822;{rcpt}\nAction: failed\n"
            f"Status: 5.1.1\nRemote-MTA: dns; mx.example.ch\nDiagnostic-Code: smtp; {diag}\n")
    return Part([("Content-Type", "message/delivery-status")], body.encode())


def x_dsn_postfix(rng):
    spec = dict(name="inner", lang="de", exp=("Reto", "Caduff", "reto.caduff@gr.ch"),
                act=("Reto", "Caduff", "reto.caduff@gmail.com"), cls="private-email", covers="", mime="alt",
                su="martina")
    n, inner = build_notice(spec, rng)
    d = n.date + dt.timedelta(minutes=1)
    expl = ("This is the mail system at host mx1.be.ch.\n\nI'm sorry to have to inform you that your message "
            "could not\nbe delivered to one or more recipients. It's attached below.\n\n"
            "<martina.graf.alt@be.ch>: host mx.be.ch said: 550 5.1.1 User unknown\n")
    rep = multipart("report", [leaf("text/plain", expl, "us-ascii", "7bit"),
                               dsn_status("martina.graf.alt@be.ch", "mx1.be.ch", n.date, "550 5.1.1 User unknown"),
                               rfc822(inner, "")], rng, extra=" report-type=delivery-status;")
    return message([
        ("From", "Mail Delivery System <MAILER-DAEMON@mx1.be.ch>"), ("To", MAILBOX),
        ("Subject", "Undelivered Mail Returned to Sender"), ("Date", format_datetime(d)),
        ("Message-ID", msgid(rng, "mx1.be.ch")), ("Auto-Submitted", "auto-replied")], rep)


def x_dsn_exchange(rng):
    spec = dict(name="inner", lang="fr", exp=("Élodie", "Girard", "elodie.girard@chuv.ch"),
                act=("Paul", "Girard", "paul.girard@bluewin.ch"), cls="wrong-person", covers="", mime="html",
                su="olivier")
    n, inner = build_notice(spec, rng)
    d = n.date + dt.timedelta(minutes=4)
    t = ("La remise a échoué pour ces destinataires ou groupes :\n\nolivier.roch.old@vd.ch\n"
         "L'adresse de messagerie que vous avez entrée est introuvable.\n")
    h = ("<html><body><p><b>La remise a &eacute;chou&eacute; pour ces destinataires ou groupes :</b></p>"
         "<p>olivier.roch.old@vd.ch<br>L'adresse de messagerie que vous avez entr&eacute;e est introuvable.</p>"
         "</body></html>\n")
    rep = multipart("report", [
        multipart("alternative", [leaf("text/plain", t, "utf-8", "quoted-printable"),
                                  leaf("text/html", h, "us-ascii", "7bit")], rng),
        dsn_status("olivier.roch.old@vd.ch", "smtp.vd.ch", n.date, "550 5.1.10 RESOLVER.ADR.RecipientNotFound"),
        rfc822(inner, "")], rng, extra=" report-type=delivery-status;")
    return message([
        ("From", "MAILER-DAEMON <MAILER-DAEMON@smtp.vd.ch>"), ("To", "Olivier Roch <olivier.roch@vd.ch>"),
        ("Subject", enc_header("Non remis : " + n.subject)), ("Date", format_datetime(d)),
        ("Message-ID", msgid(rng, "smtp.vd.ch"))], rep)


def x_list_bfs(rng):
    text = ("SpiGes-Newsletter Nr. 4/2026\n\nDie Datenerhebung 2026 beginnt im Januar. Bitte prüfen Sie, ob "
            "Vorname, Nachname und E-Mail-Adresse Ihrer Kontaktpersonen im eIAM-Portal aktuell sind.\n\n"
            "Vorname: (wie im Pass)\nNachname: (wie im Pass)\nE-Mail: berufliche Adresse\n\n"
            "Abmelden: https://www.bfs.admin.ch/newsletter\n")
    h = ("<html><body><h1>SpiGes-Newsletter Nr. 4/2026</h1><p>Die Datenerhebung 2026 beginnt im Januar.</p>"
         "<table><tr><th>Attribut</th><th>Hinweis</th></tr><tr><td>Vorname</td><td>wie im Pass</td></tr>"
         "<tr><td>Nachname</td><td>wie im Pass</td></tr><tr><td>E-Mail</td><td>berufliche Adresse</td></tr>"
         "</table></body></html>\n")
    d = local(dt.datetime(2026, 9, 1, 8, 0))
    return message([
        ("From", "BFS Newsletter <newsletter@bfs.admin.ch>"), ("To", "Martina Graf <martina.graf@be.ch>"),
        ("Subject", enc_header("SpiGes: Neuigkeiten zur Datenerhebung – Vorname, Nachname, E-Mail prüfen")),
        ("Date", format_datetime(d)), ("Message-ID", msgid(rng, "bfs.admin.ch")),
        ("List-Id", "SpiGes Newsletter <spiges-news.bfs.admin.ch>"),
        ("List-Unsubscribe", "<mailto:unsubscribe@bfs.admin.ch>, <https://www.bfs.admin.ch/newsletter>"),
        ("Precedence", "bulk")],
        multipart("alternative", [leaf("text/plain", text, "utf-8", "quoted-printable"),
                                  leaf("text/html", h, "utf-8", "quoted-printable")], rng))


def x_list_eiam(rng):
    text = ("Bonjour\n\nLe portail de délégation eIAM sera mis à jour le 12 octobre. Après la mise à jour, "
            "les champs Prénom, Nom de famille et Courriel seront vérifiés lors de l'onboarding.\n\n"
            "Saisi dans le portail eIAM: Prénom, Nom de famille, Courriel\n"
            "Utilisateur connecté: données de l'identité de connexion\n\n"
            "Pour vous désabonner, écrivez à eiam-info-leave@eiam.admin.ch.\n")
    d = local(dt.datetime(2026, 10, 1, 9, 30))
    return message([
        ("From", EIAM), ("To", "eiam-info@eiam.admin.ch"),
        ("Subject", enc_header("eIAM : Mise à jour du portail de délégation")),
        ("Date", format_datetime(d)), ("Message-ID", msgid(rng, "eiam.admin.ch")),
        ("List-Id", "eIAM Info <eiam-info.eiam.admin.ch>"),
        ("List-Unsubscribe", "<mailto:eiam-info-leave@eiam.admin.ch>"), ("Precedence", "list")],
        leaf("text/plain", text, "utf-8", "quoted-printable"))


def x_colleague_de(rng):
    text = ("Hallo Martina\n\nich habe von eIAM eine Mail bekommen, da steht\n\n"
            "Im eIAM-Portal erfasst:\n  Vorname: Anna\n  Nachname: Muster\n  E-Mail: anna.muster@be.ch\n\n"
            "Angemeldeter Benutzer:\n  Vorname: Anna\n  Nachname: Muster\n  E-Mail: anna.muster@gmail.com\n\n"
            "Was bedeutet das genau, was heisst 'Vorname:' und 'Nachname:' hier? Muss ich etwas tun?\n\n"
            "Gruss\nLukas\n")
    d = local(dt.datetime(2026, 6, 3, 10, 12))
    return plain_msg(rng, [
        ("From", "Lukas Gerber <lukas.gerber@gef.be.ch>"), ("To", "Martina Graf <martina.graf@be.ch>"),
        ("Subject", "Frage zu den eIAM-Mails"), ("Date", format_datetime(d)),
        ("Message-ID", msgid(rng, "gef.be.ch"))], text)


def x_colleague_fr(rng):
    text = ("Bonjour Olivier,\n\nDans les messages eIAM il y a un tableau\n\n"
            "Attribut       | Saisi dans le portail eIAM | Utilisateur connecté\n"
            "Prénom         | ...                        | ...\n"
            "Nom de famille | ...                        | ...\n"
            "Courriel       | ...                        | ...\n\n"
            "Que signifie « Nom » ici : le nom de famille ou le nom complet ?\n\nMerci et bonne journée\n"
            "Nathalie\n")
    d = local(dt.datetime(2026, 2, 17, 14, 40))
    return plain_msg(rng, [
        ("From", "Nathalie Favre <nathalie.favre@etat.ge.ch>"), ("To", "Olivier Roch <olivier.roch@vd.ch>"),
        ("Subject", enc_header("Question : Prénom / Nom de famille dans eIAM")), ("Date", format_datetime(d)),
        ("Message-ID", msgid(rng, "etat.ge.ch"))], text, cs="iso-8859-1", cte="quoted-printable")


def x_eiam_code_de(rng):
    text = ("Guten Tag\n\nSie wurden für die Anwendung SpiGes eingeladen. Ihr Onboarding-Code lautet:\n\n"
            "    K7Q2-9XHM\n\nVorname: Anna\nNachname: Muster\nE-Mail: anna.muster@be.ch\n\n"
            "Diese Nachricht wurde automatisch erstellt. Bitte antworten Sie nicht darauf.\n")
    d = local(dt.datetime(2026, 4, 22, 11, 5))
    return plain_msg(rng, [
        ("From", EIAM), ("To", "Anna Muster <anna.muster@be.ch>"),
        ("Subject", enc_header("eIAM: Ihr Onboarding-Code für SpiGes")), ("Date", format_datetime(d)),
        ("Message-ID", msgid(rng, "eiam.admin.ch"))], text, cte="quoted-printable")


def x_eiam_reminder_fr(rng):
    text = ("Bonjour\n\nLe profil suivant n'a pas encore été activé :\n\nPrénom: Chloé\nNom: Favre\n"
            "Courriel: chloe.favre@vd.ch\n\nCe message a été généré automatiquement. Merci de ne pas y répondre.\n")
    d = local(dt.datetime(2026, 5, 11, 6, 0))
    return plain_msg(rng, [
        ("From", EIAM), ("To", "Olivier Roch <olivier.roch@vd.ch>"),
        ("Subject", enc_header("eIAM : Rappel – profil non activé – Chloé Favre")), ("Date", format_datetime(d)),
        ("Message-ID", msgid(rng, "eiam.admin.ch"))], text)


def x_own_summary(rng):
    text = ("Triage-Zusammenfassung eIAM, 07.05.2026 07:30\n\nprivate-email (1)\n"
            "  Anna Muster: angemeldet mit anna.muster@gmail.com statt anna.muster@be.ch\n"
            "  Vorname: Anna | Nachname: Muster\n\nnegligible (2)\n  ignoriert, eIAM aktualisiert selbst\n")
    d = local(dt.datetime(2026, 5, 7, 7, 30))
    return plain_msg(rng, [
        ("From", f"eIAM triage <{SERVICE}>"), ("To", "Martina Graf <martina.graf@be.ch>"),
        ("Subject", "eIAM triage summary: 3 cases"), ("Date", format_datetime(d)),
        ("Message-ID", msgid(rng, "be.ch")), ("Auto-Submitted", "auto-generated"), ("X-Eiamtriage", "1")], text)


def x_own_wrong_person_forward(rng):
    spec = dict(name="inner", lang="de", exp=("Peter", "Gerber", "peter.gerber@be.ch"),
                act=("Marco", "Rossi", "marco.rossi@gmail.com"), cls="wrong-person", covers="", mime="alt",
                su="martina")
    n, inner = build_notice(spec, rng)
    d = n.date + dt.timedelta(minutes=2)
    text = ("Guten Tag\n\nDie folgende eIAM-Meldung deutet darauf hin, dass eine andere Person den "
            "Onboarding-Code eingelöst hat (Profil " + n.pid + "). Die Originalmeldung ist angehängt.\n\n"
            "Vorname: Peter -> Marco\nNachname: Gerber -> Rossi\n\neIAM triage, Kanton Bern\n")
    top = multipart("mixed", [leaf("text/plain", text, "utf-8", "quoted-printable"), rfc822(inner)], rng)
    return message([
        ("From", f"eIAM triage <{SERVICE}>"), ("To", "spiges@bfs.admin.ch"),
        ("Cc", f"Martina Graf <martina.graf@be.ch>, {MAILBOX}"),
        ("Subject", enc_header("Fremde Person im eIAM-Profil: " + n.subject)),
        ("Date", format_datetime(d)), ("Message-ID", msgid(rng, "be.ch")),
        ("Auto-Submitted", "auto-generated"), ("X-Eiamtriage", "1")], top)


X("not-ooo-fr-auto-replied", "auto-reply", "out-of-office reply quoting the notice subject (like sample 0004)", x_ooo_fr)
X("not-ooo-de-auto-replied-quoting-notice", "auto-reply",
  "out-of-office reply that quotes a whole notice under an Outlook header block", x_ooo_de_quoting)
X("not-ooo-it-auto-replied-vacation-html", "auto-reply",
  "Auto-Submitted: auto-replied (vacation) with a comment, multipart/alternative", x_ooo_it_html)
X("not-dsn-postfix-returned-notice", "dsn",
  "multipart/report delivery-status from MAILER-DAEMON returning a complete eIAM notice as message/rfc822",
  x_dsn_postfix)
X("not-dsn-exchange-non-remis-notice-subject", "dsn",
  "multipart/report (Exchange style, French) whose subject quotes the notice subject and returns the notice",
  x_dsn_exchange)
X("not-newsletter-bfs-list-id-labels", "list-mail",
  "newsletter with List-Id/List-Unsubscribe mentioning Vorname/Nachname/E-Mail, with a table", x_list_bfs)
X("not-newsletter-from-eiam-address-list-id", "list-mail",
  "list mail from the eIAM address itself (List-Id), mentioning the headings and labels", x_list_eiam)
X("not-colleague-question-de-quotes-blocks", "untrusted-sender",
  "a colleague at a canton domain quoting blocks with Vorname:/Nachname:, no notice subject: read as a "
  "notice from him, which the sender rule rejects", x_colleague_de,
  notice=lambda raw: direct_fields(raw, "de", "blocks", ("Anna", "Muster", "anna.muster@be.ch"),
                                   ("Anna", "Muster", "anna.muster@gmail.com")))
X("not-colleague-question-fr-quotes-table", "untrusted-sender",
  "a colleague quoting the table header and labels, no notice subject: read as a notice from her, which "
  "the sender rule rejects", x_colleague_fr,
  notice=lambda raw: direct_fields(raw, "fr", "text-table", ("...", "...", "..."), ("...", "...", "...")))
X("not-eiam-onboarding-code-de", "no-notice-subject",
  "mail from the trusted eIAM address with another subject (onboarding code) and label lines", x_eiam_code_de)
X("not-eiam-reminder-fr", "no-notice-subject",
  "mail from the trusted eIAM address, subject 'Rappel – profil non activé – name'", x_eiam_reminder_fr)
X("not-own-mail-triage-summary", "own-mail",
  "the service's own summary (From eiamtriage@be.ch, Auto-Submitted: auto-generated, X-Eiamtriage: 1)",
  x_own_summary)
X("not-own-mail-wrong-person-forward-with-notice", "own-mail",
  "the service's own wrong-person forward to spiges@bfs.admin.ch (Cc the mailbox) carrying the notice as message/rfc822",
  x_own_wrong_person_forward)


# ---------------------------------------------------------------- main


def norm_label(s: str) -> str:
    return clean(s).rstrip(":").strip(WS).casefold()


def coverage(fixtures) -> list[str]:
    problems = []
    seen = set()
    for f in fixtures:
        if f["kind"] != "notice" or f["cls"] == "not-a-notice" or f.get("unreadable"):
            continue
        lang = f["lang"]
        mime, layout = f.get("mime", "plain"), f.get("layout", "text-table")
        kinds = set()
        if mime in ("html", "alt") or layout == "text-table":
            kinds.add("table")
        if layout == "blocks" and mime in ("plain", "alt"):
            kinds.add("blocks")
        labels = f.get("labels") or (W[lang]["g"][0], W[lang]["f"][0], W[lang]["e"][0])
        for k, lab in zip(ATTR, labels):
            if k in f.get("missing", ""):
                continue
            for kind in kinds:
                seen.add((lang, kind, norm_label(lab)))
    for lang, w in W.items():
        for kind in ("table", "blocks"):
            for lab in w["g"] + w["f"] + w["e"]:
                if (lang, kind, lab.casefold()) not in seen:
                    problems.append(f"label {lang}/{kind}/{lab} not covered")
    return problems


def with_auth_results(raw: bytes, auth: str) -> bytes:
    """The Authentication-Results header the organisation's boundary server (mx.be.ch) adds on top:
    pass for the outer From's domain, or none, or a failing one, or a failing one on top of a
    passing one the sender planted further down."""
    head = raw.split(b"\n\n", 1)[0].decode("utf-8")
    addr = addr_of(re.search(r"^From:(.*)$", head, re.M).group(1))
    dom = addr.split("@")[1]
    org = ".".join(dom.split(".")[-2:])
    ok = f"{AUTHSERV};\n\tdkim=pass header.d={org} header.s=sel1;\n\tdmarc=pass header.from={dom}"
    bad = (f"{AUTHSERV};\n\tdkim=fail (body hash did not verify) header.d={org} header.s=sel1;\n"
           f"\tdmarc=fail header.from={dom}")
    if auth == "none":
        return raw
    if auth == "pass":
        return b"Authentication-Results: " + ok.encode() + b"\n" + raw
    if auth == "fail":
        return b"Authentication-Results: " + bad.encode() + b"\n" + raw
    assert auth == "planted", auth
    i = raw.index(b"\nMessage-ID:") + 1
    raw = raw[:i] + b"Authentication-Results: " + ok.encode() + b"\n" + raw[i:]
    return b"Authentication-Results: " + bad.encode() + b"\n" + raw


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.eml"):
        old.unlink()
    golden: dict = {}
    stats: dict = {}
    errors = []
    names = set()
    mids = set()
    for f in FIX:
        name = f["name"] + ".eml"
        assert re.fullmatch(r"[a-z0-9][a-z0-9.-]*\.eml", name), name
        assert name not in names, name
        names.add(name)
        rng = random.Random(f"{SEED}:{f['name']}")
        if f["kind"] in ("notice", "chain"):
            if f["kind"] == "chain":
                n, raw, env = build_chain(f, rng)
                g = golden_for_notice(f, n)
                for k in ("delivery", "from", "to", "date", "message_id", "forwarders", "outer_message_id", "part"):
                    g.pop(k, None)
                if "layout" in g:
                    g["layout"] = env.pop("layout")
                env.pop("layout", None)
                g.update(env)
            else:
                n, raw = build_notice(f, rng)
                g = golden_for_notice(f, n)
            outer = (g.get("forwarders") or [g["from"]])[0]
            q = daemon_trust(outer, g["from"], g.get("forwarders", []), f.get("auth", "pass"))
            if q:
                g["quarantine"] = q
            if f["cls"] == "not-a-notice" and sender_rule(g["from"]) != f["nan"]:
                errors.append(f"{name}: stated {f['nan']}, the sender rule gives {sender_rule(g['from'])}")
            if f["cls"] != "not-a-notice" and sender_rule(g["from"]):
                errors.append(f"{name}: the sender rule rejects {g['from']}: state not-a-notice")
            if f["cls"] != "not-a-notice":
                if n.unreadable:
                    want, why = classify(None, None, unreadable=True)
                else:
                    e, a = g["expected"], g["actual"]
                    want, why = classify((e["given_name"], e["family_name"], e["email"]),
                                         (a["given_name"], a["family_name"], a["email"]))
                if want != f["cls"]:
                    errors.append(f"{name}: stated {f['cls']}, rules give {want} ({why})")
                g["_why"] = why
        else:
            raw = f["build"](rng)
            g = {"class": "not-a-notice", "not_a_notice": f["nan"]}
            if f.get("notice"):  # read as a notice, which the sender rule rejects
                g.update(f["notice"](raw))
                q = daemon_trust(g["from"], g["from"], [], f.get("auth", "pass"))
                if q:
                    g["quarantine"] = q
            g["covers"] = f["covers"]
        raw = with_auth_results(raw, f.get("auth", "pass"))
        # The parser keeps its fields in golden.json in this order: the class and what the
        # daemon does first, what the fixture covers last.
        g = {k: g[k] for k in sorted(g, key=lambda k: (k not in ("class", "not_a_notice", "quarantine"), k == "covers"))}
        m = re.search(rb"^Message-ID:\s*(<[^>]+>)", raw, re.M | re.I)
        assert m and m.group(1) not in mids, name
        mids.add(m.group(1))
        (OUT / name).write_bytes(raw)
        why = g.pop("_why", None)
        golden[name] = g
        stats.setdefault(g["class"], []).append((name, why))
    errors += coverage(FIX)
    for f in FIX:  # labels are given per attribute (g, f, e), not in display order
        if f["kind"] == "notice" and f.get("labels"):
            for k, lab in zip(ATTR, f["labels"]):
                if norm_label(lab) not in [x.casefold() for x in W[f["lang"]][k]]:
                    errors.append(f"{f['name']}: label {lab!r} is not a {k} label in {f['lang']}")
    (OUT / "golden.json").write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n",
                                     encoding="utf-8")
    for c in sorted(stats):
        print(f"{c:14} {len(stats[c])}")
    print(f"total          {len(golden)}")
    for e in errors:
        print("ERROR:", e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
