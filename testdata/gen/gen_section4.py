#!/usr/bin/env python3
"""Generate the notices of the changed section 4 of docs/NOTICE.md.

Writes testdata/notices-s4/*.eml and testdata/notices-s4/golden-s4.json: one or
more notices per clause that changed (invisible format characters inside names,
in text and in HTML as &#8203; and &shy;; a name without letters; an e-mail
value that is not exactly one address; a control character in a name; an
initial). Python 3 standard library only, deterministic (no clock, no random):
running it twice gives byte-identical files.

    python3 testdata/gen/gen_section4.py

golden-s4.json has the format of testdata/notices/golden.json (class, language,
delivery, layout, profile_id, application, organisation, signed_in_raw,
expected, actual, covers) and three keys of its own: rule (the row of the
class table that decides), names (the name verdict, "" when rule 1 decides)
and reason (a part of the deciding reason, the decisive value escaped as the
classifier quotes it). expected/actual are the values as the parser reads
them: trimmed, and without the invisible format characters, which the parser
removes; control characters are kept (the classifier refuses them).
"""

from __future__ import annotations

import base64
import json
import quopri
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "notices-s4"

EIAM = "eIAM <noreply@eiam.admin.ch>"

W = {
    "de": dict(
        subject="eIAM: Abweichende Benutzerdaten", greet="Guten Tag",
        intro="Beim Onboarding wurden Abweichungen zwischen den im eIAM-Portal erfassten Daten "
        "und den Daten des angemeldeten Benutzers festgestellt.",
        close="Diese Nachricht wurde automatisch erstellt. Bitte antworten Sie nicht darauf.",
        meta=("Profil-ID", "Anwendung", "Organisation", "Anmeldung am"),
        attr="Attribut", exp="Im eIAM-Portal erfasst", act="Angemeldeter Benutzer",
        labels=("Vorname", "Nachname", "E-Mail"), org="Kanton Bern",
    ),
    "fr": dict(
        subject="eIAM : Incohérence des données utilisateur", greet="Bonjour",
        intro="Lors de l'onboarding, une incohérence a été constatée entre les données saisies "
        "dans le portail eIAM et les données de l'utilisateur connecté.",
        close="Ce message a été généré automatiquement. Merci de ne pas y répondre.",
        meta=("ID du profil", "Application", "Organisation", "Connexion le"),
        attr="Attribut", exp="Saisi dans le portail eIAM", act="Utilisateur connecté",
        labels=("Prénom", "Nom", "E-mail"), org="Canton de Vaud",
    ),
    "it": dict(
        subject="eIAM: Dati utente non corrispondenti", greet="Buongiorno",
        intro="Durante l'onboarding sono state rilevate differenze tra i dati registrati nel "
        "portale eIAM e i dati dell'utente connesso.",
        close="Questo messaggio è stato generato automaticamente. Si prega di non rispondere.",
        meta=("ID del profilo", "Applicazione", "Organizzazione", "Accesso il"),
        attr="Attributo", exp="Registrato nel portale eIAM", act="Utente connesso",
        labels=("Nome", "Cognome", "E-mail"), org="Cantone Ticino",
    ),
    "en": dict(
        subject="eIAM: User data mismatch", greet="Hello",
        intro="During onboarding, differences were found between the data entered in the eIAM "
        "portal and the data of the signed-in user.",
        close="This message was generated automatically. Please do not reply.",
        meta=("Profile ID", "Application", "Organisation", "Signed in at"),
        attr="Attribute", exp="Entered in the eIAM portal", act="Signed-in user",
        labels=("First name", "Last name", "E-mail"), org="Kanton Graubünden",
    ),
}

# Each notice: file name, language, layout, the values as the notice writes
# them (raw: in HTML they are inserted as they stand, entities included), the
# values the parser reads, the verdict, what it covers.
N = [
    dict(
        file="de-blocks-zwsp-wj-in-names-text-negligible.eml", lang="de", layout="blocks",
        exp=("Lukas", "Meier", "lukas.meier@be.ch"),
        act=("Lu\u200bkas", "Mei\u2060er", "lukas.meier@be.ch"),
        read_act=("Lukas", "Meier", "lukas.meier@be.ch"),
        cls="negligible", rule=7, names="same", reason="'Lukas Meier' is the same on both sides",
        covers="U+200B inside the given name and U+2060 inside the family name in text/plain (utf-8 8bit): removed, "
        "Lu|kas is Lukas (was wrong-person)",
    ),
    dict(
        file="fr-table-zwsp-bom-in-names-text-qp-negligible.eml", lang="fr", layout="text-table", cte="quoted-printable",
        exp=("Céline", "Dubois", "celine.dubois@vd.ch"),
        act=("C\u200béline", "\ufeffDubois", "celine.dubois@vd.ch"),
        read_act=("Céline", "Dubois", "celine.dubois@vd.ch"),
        cls="negligible", rule=7, names="same", reason="'Céline Dubois' is the same on both sides",
        covers="U+200B and U+FEFF in a text table, quoted-printable (=E2=80=8B, =EF=BB=BF): removed (was review, rule 3)",
    ),
    dict(
        file="de-html-zwsp-entity-private.eml", lang="de", layout="html-table",
        exp=("Lukas", "Meier", "lukas.meier@be.ch"),
        act=("Lu&#8203;kas", "Meier", "lukas.meier@gmail.com"),
        read_act=("Lukas", "Meier", "lukas.meier@gmail.com"),
        cls="private-email", rule=4, names="same", reason="free-mail provider 'gmail.com'",
        covers="&#8203; inside the given name in an HTML table: removed, the private address decides "
        "(was wrong-person: an escalation and a deactivation for nothing)",
    ),
    dict(
        file="it-html-shy-hex-zwsp-entities-negligible.eml", lang="it", layout="html-table",
        exp=("Giovanni", "Rossi", "giovanni.rossi@ti.ch"),
        act=("Gio&shy;vanni", "Ros&#x200B;si", "giovanni.rossi@ti.ch"),
        read_act=("Giovanni", "Rossi", "giovanni.rossi@ti.ch"),
        cls="negligible", rule=7, names="same", reason="'Giovanni Rossi' is the same on both sides",
        covers="&shy; in the given name and &#x200B; in the family name in an HTML table: removed (was review, rule 3: "
        "Ros si against Rossi)",
    ),
    dict(
        file="en-blocks-family-name-dashes-review.eml", lang="en", layout="blocks",
        exp=("Sarah", "Brunner", "sarah.brunner@gr.ch"),
        act=("Sarah", "---", "sarah.brunner@gr.ch"),
        read_act=("Sarah", "---", "sarah.brunner@gr.ch"),
        cls="review", rule=1, names="", reason="the signed-in family name '---' holds no letters",
        covers="a signed-in family name without a letter ('---') counts as missing: rule 1",
    ),
    dict(
        file="de-html-given-name-digits-review.eml", lang="de", layout="html-table",
        exp=("Anna", "Muster", "anna.muster@be.ch"),
        act=("123", "Muster", "anna.muster@be.ch"),
        read_act=("123", "Muster", "anna.muster@be.ch"),
        cls="review", rule=1, names="", reason="the signed-in given name '123' holds no letters",
        covers="a signed-in given name of digits only counts as missing: rule 1 (was wrong-person)",
    ),
    dict(
        file="de-table-email-two-at-review.eml", lang="de", layout="text-table",
        exp=("Anna", "Muster", "anna.muster@be.ch"),
        act=("Anna", "Muster", "anna.muster@gmail.com@be.ch"),
        read_act=("Anna", "Muster", "anna.muster@gmail.com@be.ch"),
        cls="review", rule=1, names="",
        reason="the signed-in e-mail 'anna.muster@gmail.com@be.ch' is not one address, it has 2 '@'",
        covers="a signed-in e-mail value with two '@' counts as missing: rule 1 (was negligible, rule 5, "
        "its last part read as the domain be.ch)",
    ),
    dict(
        file="fr-html-email-localhost-review.eml", lang="fr", layout="html-table",
        exp=("Céline", "Dubois", "celine.dubois@vd.ch"),
        act=("Céline", "Dubois", "celine@localhost"),
        read_act=("Céline", "Dubois", "celine@localhost"),
        cls="review", rule=1, names="", reason="its domain 'localhost' has no dot",
        covers="a signed-in e-mail whose domain has no dot counts as missing: rule 1 (was review, rule 6)",
    ),
    dict(
        file="de-blocks-control-esc-in-name-review.eml", lang="de", layout="blocks",
        exp=("Anna", "Muster", "anna.muster@be.ch"),
        act=("Anna\x1b[2J\x1b[31m", "Muster", "anna.muster@be.ch"),
        read_act=("Anna\x1b[2J\x1b[31m", "Muster", "anna.muster@be.ch"),
        cls="review", rule=1, names="",
        reason="the signed-in given name 'Anna\\x1b[2J\\x1b[31m' holds the control character U+001B",
        covers="escape sequences (ESC) in the signed-in given name, raw in text/plain: not a readable name, rule 1 "
        "(was negligible: the controls read as separators)",
    ),
    dict(
        file="en-html-control-entity-in-name-review.eml", lang="en", layout="html-table",
        exp=("Sarah", "Brunner", "sarah.brunner@gr.ch"),
        act=("Peter&#27;]0;x&#7;", "Keller", "peter.keller@gmail.com"),
        read_act=("Peter\x1b]0;x\x07", "Keller", "peter.keller@gmail.com"),
        cls="review", rule=1, names="",
        reason="the signed-in given name 'Peter\\x1b]0;x\\a' holds the control character U+001B",
        covers="ESC and BEL as &#27; and &#7; in an HTML cell: rule 1 wins over a wrong person (was wrong-person)",
    ),
    dict(
        file="fr-html-initial-given-name-review.eml", lang="fr", layout="html-table",
        exp=("C.", "Dubois", "celine.dubois@vd.ch"),
        act=("Céline", "Dubois", "celine.dubois@vd.ch"),
        read_act=("Céline", "Dubois", "celine.dubois@vd.ch"),
        read_exp=("C.", "Dubois", "celine.dubois@vd.ch"),
        cls="review", rule=3, names="partial", reason="the given names match only by an initial ('C.' for 'Céline')",
        covers="an entered initial against the full given name: not different (partial), never same: rule 3 (was wrong-person)",
    ),
    dict(
        file="en-blocks-initial-other-letter-wrong-person.eml", lang="en", layout="blocks",
        exp=("J.", "Brunner", "j.brunner@gr.ch"),
        act=("Peter", "Brunner", "j.brunner@gr.ch"),
        read_act=("Peter", "Brunner", "j.brunner@gr.ch"),
        read_exp=("J.", "Brunner", "j.brunner@gr.ch"),
        cls="wrong-person", rule=2, names="different", reason="given name 'J.' vs 'Peter': no given name in common",
        covers="an initial of another letter ('J.' against 'Peter') is different: rule 2 (unchanged)",
    ),
    dict(
        file="it-blocks-initial-swapped-review.eml", lang="it", layout="blocks",
        exp=("G.", "Rossi", "giovanni.rossi@ti.ch"),
        act=("Rossi", "Giovanni", "giovanni.rossi@ti.ch"),
        read_act=("Rossi", "Giovanni", "giovanni.rossi@ti.ch"),
        read_exp=("G.", "Rossi", "giovanni.rossi@ti.ch"),
        cls="review", rule=3, names="partial", reason="given and family name look swapped",
        covers="an initial with given and family name swapped on the signed-in side: partial, rule 3 (was wrong-person)",
    ),
]

ID_BASE = 0x5EC7104


def profile_id(i: int) -> str:
    h = f"{ID_BASE + i:08x}"
    return f"{h}-5ec4-4000-8000-{i:012x}"


def text_body(n: dict, i: int) -> str:
    w = W[n["lang"]]
    lines = [w["greet"], "", w["intro"], ""]
    lines += meta_lines(w, i)
    lines.append("")
    if n["layout"] == "blocks":
        for head, vals in ((w["exp"], n["exp"]), (w["act"], n["act"])):
            lines.append(head + ":")
            for lab, v in zip(w["labels"], vals):
                lines.append(f"  {lab}: {v}")
            lines.append("")
    else:
        rows = [(w["attr"], w["exp"], w["act"])] + [
            (lab, e, a) for lab, e, a in zip(w["labels"], n["exp"], n["act"])
        ]
        width = [max(len(r[c]) for r in rows) for c in range(3)]
        fmt = lambda r: "| " + " | ".join(r[c].ljust(width[c]) for c in range(3)) + " |"
        lines.append(fmt(rows[0]))
        lines.append("|" + "+".join("-" * (width[c] + 2) for c in range(3)) + "|")
        lines += [fmt(r) for r in rows[1:]]
        lines.append("")
    lines.append(w["close"])
    return "\n".join(lines) + "\n"


def html_body(n: dict, i: int) -> str:
    w = W[n["lang"]]
    esc = lambda s: s.replace("&", "&amp;").replace("<", "&lt;")
    out = [
        "<html><head><meta charset=\"utf-8\"></head><body>",
        f"<p>{esc(w['greet'])}</p>",
        f"<p>{esc(w['intro'])}</p>",
        "<p>" + "<br>".join(esc(l) for l in meta_lines(w, i)) + "</p>",
        "<table border=\"1\" cellpadding=\"4\">",
        f"<tr><th>{esc(w['attr'])}</th><th>{esc(w['exp'])}</th><th>{esc(w['act'])}</th></tr>",
    ]
    for lab, e, a in zip(w["labels"], n["exp"], n["act"]):
        # The values are inserted as they stand: their entities are the point.
        out.append(f"<tr><td>{esc(lab)}</td><td>{e}</td><td>{a}</td></tr>")
    out += ["</table>", f"<p><small>{esc(w['close'])}</small></p>", "</body></html>"]
    return "\n".join(out) + "\n"


def meta_lines(w: dict, i: int) -> list[str]:
    return [
        f"{w['meta'][0]}: {profile_id(i)}",
        f"{w['meta'][1]}: SpiGes",
        f"{w['meta'][2]}: {w['org']}",
        f"{w['meta'][3]}: {signed_in(i)}",
    ]


def signed_in(i: int) -> str:
    return f"{10 + i:02d}.11.2026 {8 + i % 10:02d}:{(7 * i) % 60:02d}"


def subject(n: dict) -> str:
    w = W[n["lang"]]
    name = n["read_exp"][0] if "read_exp" in n else n["exp"][0]
    text = f"{w['subject']} – {name} {n['exp'][1]}"
    b = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return f"=?utf-8?b?{b}?="


def message(n: dict, i: int) -> bytes:
    html = n["layout"] == "html-table"
    body = html_body(n, i) if html else text_body(n, i)
    cte = n.get("cte", "8bit")
    raw = body.encode("utf-8")
    if cte == "quoted-printable":
        raw = quopri.encodestring(raw)
    headers = [
        f"From: {EIAM}",
        "To: Martina Graf <martina.graf@be.ch>",
        f"Subject: {subject(n)}",
        f"Date: Tue, {10 + i:02d} Nov 2026 {8 + i % 10:02d}:{(7 * i) % 60:02d}:00 +0100",
        f"Message-ID: <s4.{i:04d}.{ID_BASE + i:x}@eiam.admin.ch>",
        "MIME-Version: 1.0",
        f"Content-Type: text/{'html' if html else 'plain'}; charset=\"utf-8\"",
        f"Content-Transfer-Encoding: {cte}",
    ]
    return ("\r\n".join(headers) + "\r\n\r\n").encode("ascii") + raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def person(vals) -> dict:
    return {"given_name": vals[0], "family_name": vals[1], "email": vals[2]}


def main() -> None:
    OUT.mkdir(exist_ok=True)
    golden = {}
    for i, n in enumerate(N):
        (OUT / n["file"]).write_bytes(message(n, i))
        golden[n["file"]] = {
            "class": n["cls"],
            "language": n["lang"],
            "delivery": "direct",
            "layout": n["layout"],
            "profile_id": profile_id(i),
            "application": "SpiGes",
            "organisation": W[n["lang"]]["org"],
            "signed_in_raw": signed_in(i),
            "expected": person(n.get("read_exp", n["exp"])),
            "actual": person(n["read_act"]),
            "rule": n["rule"],
            "names": n["names"],
            "reason": n["reason"],
            "covers": n["covers"],
        }
    (OUT / "golden-s4.json").write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(N)} notices and golden-s4.json to {OUT}")


if __name__ == "__main__":
    main()
