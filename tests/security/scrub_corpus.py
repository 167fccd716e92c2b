"""A planted corpus of secrets and personal data, generated from a seed: every value is made here.

Each ``Item`` is one planted value (``value``), the category it stands for, the placeholder kind the
scrubber must give it, and a sentence of ordinary text (prose, code, JSON, a log line) that carries
it. Formats with a checksum get a valid one (Luhn, IBAN mod 97, Verhoeff, INSEE key, Steuer-ID
ISO 7064, DNI letter), so a validating detector would accept them too; ``test_scrubbing`` checks the
checksums against python-stdnum and the phone numbers against phonenumbers, independently of this code.
"""

from __future__ import annotations

import base64
import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass

SEED = 20260515
PER_CATEGORY = 8
B64 = string.ascii_letters + string.digits + "+/"
B64URL = string.ascii_letters + string.digits + "-_"
ALNUM = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Item:
    category: str
    kind: str
    value: str
    text: str


def _pick(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


# --- checksums ----------------------------------------------------------------------------------


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _complete(body: str, ok: Callable[[str], bool]) -> str:
    return next(body + str(d) for d in range(10) if ok(body + str(d)))


_VD = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
    [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
    [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
    [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
    [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
    [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
]
_VP = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]]
for _ in range(7):
    _VP.append([_VP[-1][x] for x in [1, 5, 7, 6, 2, 8, 3, 0, 9, 4]])


def verhoeff_ok(digits: str) -> bool:
    c = 0
    for i, ch in enumerate(reversed(digits)):
        c = _VD[c][_VP[i % 8][int(ch)]]
    return c == 0


def steuer_id_ok(digits: str) -> bool:
    product = 10
    for ch in digits[:10]:
        s = (int(ch) + product) % 10 or 10
        product = (s * 2) % 11
    return (11 - product) % 10 == int(digits[10])


def iban(rng: random.Random, country: str, bban: str) -> str:
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{country}{98 - int(numeric) % 97:02d}{bban}"


def spaced(text: str, size: int = 4) -> str:
    return " ".join(text[i : i + size] for i in range(0, len(text), size))


# --- generators: one per category, each returns (value, sentence) -------------------------------

Gen = Callable[[random.Random, int], tuple[str, str]]
NAMES = ["jane", "omar", "li.wei", "sofia", "k.nakamura", "priya", "mateo", "anna-lena"]


def email_ascii(r: random.Random, i: int) -> tuple[str, str]:
    v = f"{NAMES[i]}{r.randrange(10, 99)}+{_pick(r, string.ascii_lowercase, 3)}@{_pick(r, string.ascii_lowercase, 6)}.{r.choice(['com', 'co.uk', 'io', 'org'])}"
    return v, f"Please forward the invoice to {v} before Friday."


def email_unicode(r: random.Random, i: int) -> tuple[str, str]:
    local = ["jürgen", "josé.garcía", "françois", "дмитрий", "用户", "zoë", "søren", "ayşe"][i]
    domain = [
        "bücher.de",
        "exämple.com",
        "société.fr",
        "почта.рф",
        "例子.中国",
        "mañana.es",
        "xn--bcher-kva.de",
        "straße.at",
    ][i]
    v = f"{local}{r.randrange(10)}@{domain}"
    return v, f"Der Kunde schrieb von {v}, bitte antworten."


def email_quoted(r: random.Random, i: int) -> tuple[str, str]:
    v = f'"{r.choice(["john doe", "a@b", "ops team", "x.y"])} {i}"@{_pick(r, string.ascii_lowercase, 5)}.example.org'
    return v, f"The legacy mailer only accepts {v} as the reply-to address."


def phone_international(r: random.Random, i: int) -> tuple[str, str]:
    n = r.randrange
    v = [
        f"+1 415-555-{n(1000, 9999)}",
        f"+44 20 7946 {n(1000, 9999)}",
        f"+49 30 {n(100000, 999999)}{n(10, 99)}",
        f"+33 1 42 68 {n(10, 99)} {n(10, 99)}",
        f"+91 98{n(100, 999)} {n(10000, 99999)}",
        f"+81 3-{n(1000, 9999)}-{n(1000, 9999)}",
        f"+61 2 9374 {n(1000, 9999)}",
        f"+55 11 9{n(1000, 9999)}-{n(1000, 9999)}",
    ][i]
    return v, f"Call the on-call engineer on {v} if the pager stays silent."


def phone_national(r: random.Random, i: int) -> tuple[str, str]:
    n = r.randrange
    v = [
        f"(415) {n(200, 999)}-{n(1000, 9999)}",
        f"020 7946 {n(1000, 9999)}",
        f"07700 900{n(100, 999)}",
        f"030 {n(100000, 999999)} {n(10, 99)}",
        f"06 {n(10, 99)} {n(10, 99)} {n(10, 99)} {n(10, 99)}",
        f"03-{n(1000, 9999)}-{n(1000, 9999)}",
        f"0412 {n(100, 999)} {n(100, 999)}",
        f"212.{n(200, 999)}.{n(1000, 9999)}",
    ][i]
    return v, f"Her number is {v}, she prefers text messages."


def iban_spaced(r: random.Random, i: int) -> tuple[str, str]:
    return _iban(r, i, True)


def iban_plain(r: random.Random, i: int) -> tuple[str, str]:
    return _iban(r, i, False)


def _iban(r: random.Random, i: int, spaces: bool) -> tuple[str, str]:
    d = string.digits
    country, bban = [
        ("DE", _pick(r, d, 18)),
        ("GB", "NWBK" + _pick(r, d, 14)),
        ("NL", "ABNA" + _pick(r, d, 10)),
        ("CH", _pick(r, d, 17)),
        ("AT", _pick(r, d, 16)),
        ("DE", _pick(r, d, 18)),
        ("GB", "BARC" + _pick(r, d, 14)),
        ("NL", "INGB" + _pick(r, d, 10)),
    ][i]
    v = iban(r, country, bban)
    v = spaced(v) if spaces else v
    return v, f"Refund the deposit to IBAN {v} (account holder as on file)."


def credit_card(r: random.Random, i: int) -> tuple[str, str]:
    prefix, length = [
        ("4", 16),
        ("51", 16),
        ("55", 16),
        ("34", 15),
        ("37", 15),
        ("6011", 16),
        ("35", 16),
        ("4", 13),
    ][i]
    digits = _complete(prefix + _pick(r, string.digits, length - len(prefix) - 1), luhn_ok)
    v = [digits, spaced(digits), "-".join(digits[j : j + 4] for j in range(0, len(digits), 4))][i % 3]
    if length == 15 and i % 3 == 1:
        v = f"{digits[:4]} {digits[4:10]} {digits[10:]}"
    return v, f"The customer paid with card {v}, expiry 08/29."


def us_ssn(r: random.Random, i: int) -> tuple[str, str]:
    area = r.choice([a for a in range(1, 900) if a != 666])
    sep = "-" if i % 2 == 0 else " "
    v = f"{area:03d}{sep}{r.randrange(1, 100):02d}{sep}{r.randrange(1, 10000):04d}"
    return v, f"Applicant SSN {v} was entered twice in the form."


def uk_nino(r: random.Random, i: int) -> tuple[str, str]:
    first, second = "ABCEGHJKLMNPRSTWXYZ", "ABCEGHJKLMNPRSTWXYZ"
    prefix = r.choice(
        [a + b for a in first for b in second if a + b not in ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ")]
    )
    digits = _pick(r, string.digits, 6)
    v = (
        f"{prefix}{digits}{r.choice('ABCD')}"
        if i % 2
        else f"{prefix} {digits[:2]} {digits[2:4]} {digits[4:]} {r.choice('ABCD')}"
    )
    return v, f"Payroll needs the National Insurance number {v} for the new hire."


def de_steuer_id(r: random.Random, i: int) -> tuple[str, str]:
    while True:
        digits = r.sample("0123456789", 9)
        digits.insert(r.randrange(1, 10), r.choice(digits))
        body = "".join(digits)
        if body[0] != "0":
            break
    v = _complete(body, steuer_id_ok)
    v = v if i % 2 else f"{v[:2]} {v[2:5]} {v[5:8]} {v[8:]}"
    return v, f"Meine Steuer-ID lautet {v}, bitte im Formular eintragen."


def fr_insee(r: random.Random, i: int) -> tuple[str, str]:
    body = f"{r.choice('12')}{r.randrange(40, 99):02d}{r.randrange(1, 13):02d}{r.randrange(1, 96):02d}{r.randrange(1, 990):03d}{r.randrange(1, 999):03d}"
    body = body.replace("20", "21") if body[5:7] == "20" else body
    key = 97 - int(body) % 97
    v = f"{body}{key:02d}"
    if i % 2:
        v = f"{v[0]} {v[1:3]} {v[3:5]} {v[5:7]} {v[7:10]} {v[10:13]} {v[13:]}"
    return v, f"Numéro de sécurité sociale : {v} (carte Vitale)."


def in_aadhaar(r: random.Random, i: int) -> tuple[str, str]:
    v = _complete(str(r.randrange(2, 10)) + _pick(r, string.digits, 10), verhoeff_ok)
    v = spaced(v) if i % 2 == 0 else "-".join(v[j : j + 4] for j in range(0, 12, 4))
    return v, f"KYC record: Aadhaar {v} verified at the branch."


def es_dni(r: random.Random, i: int) -> tuple[str, str]:
    number = r.randrange(10_000_000, 99_999_999)
    v = f"{number}{'TRWAGMYFPDXBNJZSQVHLCKE'[number % 23]}"
    v = v if i % 2 else f"{v[:8]}-{v[8]}"
    return v, f"El titular con DNI {v} firmó el contrato."


def ipv4(r: random.Random, i: int) -> tuple[str, str]:
    v = ".".join(str(r.randrange(1, 255)) for _ in range(4))
    return v, f"Connection refused from {v} after 3 retries."


def ipv6(r: random.Random, i: int) -> tuple[str, str]:
    def h() -> str:
        return f"{r.randrange(1, 0xFFFF):x}"

    v = [
        "::1",
        "fe80::1",
        "2001:db8::",
        f"fe80::{h()}:{h()}%eth0",
        f"2001:db8:{h()}::{h()}",
        ":".join(h() for _ in range(8)),
        f"::ffff:192.0.2.{r.randrange(1, 255)}",
        f"2a01:4f8:{h()}:{h()}::2",
    ][i]
    return v, f"The service listens on {v} only; see the firewall rule."


def url_password(r: random.Random, i: int) -> tuple[str, str]:
    pw = _pick(r, ALNUM, 10) + r.choice("!*-_.") + _pick(r, ALNUM, 4)
    v = [
        f"postgres://admin:{pw}@db:5432/app",
        f"redis://:{pw}@cache:6379/0",
        f"https://deploy:{pw}@10.0.3.{r.randrange(2, 250)}/repo.git",
        f"mysql://root:{pw}@localhost/shop",
        f"amqp://guest:{pw}@[fe80::1]:5672/",
        f"ftp://backup:{pw}@192.168.1.{r.randrange(2, 250)}/dumps",
        f"mongodb://svc:{pw}@mongo-0,mongo-1/orders",
        f"http://user:{pw}@proxy:3128",
    ][i]
    return pw, f"Set DATABASE_URL={v} in the staging env."


def jwt(r: random.Random, i: int) -> tuple[str, str]:
    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    signed = i % 2 == 0
    head = part({"alg": "HS256", "typ": "JWT"} if signed else {"alg": "none"})
    body = part({"sub": f"user-{r.randrange(10**6)}", "iat": 1700000000 + r.randrange(10**6)})
    v = f"{head}.{body}.{_pick(r, B64URL, 43) if signed else ''}"
    return v, f"The request carried Authorization token {v} in the query string."


def private_key(r: random.Random, i: int) -> tuple[str, str]:
    label = [
        "RSA PRIVATE KEY",
        "EC PRIVATE KEY",
        "OPENSSH PRIVATE KEY",
        "PRIVATE KEY",
        "ENCRYPTED PRIVATE KEY",
        "DSA PRIVATE KEY",
        "PGP PRIVATE KEY BLOCK",
        "RSA PRIVATE KEY",
    ][i]
    lines = [_pick(r, B64, 64) for _ in range(3)]
    v = lines[1]
    block = f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----"
    return v, f"Here is the key I used:\n{block}\nbut ssh still says permission denied."


def aws_access_key_id(r: random.Random, i: int) -> tuple[str, str]:
    v = r.choice(["AKIA", "ASIA", "AIDA", "AROA"]) + _pick(r, string.ascii_uppercase + "234567", 16)
    return v, f"boto3 picked up the access key {v} from the environment."


def aws_secret_key(r: random.Random, i: int) -> tuple[str, str]:
    v = _pick(r, B64, 40)
    texts = [
        f"aws_secret_access_key = {v}",
        f"export AWS_SECRET_ACCESS_KEY={v}",
        f"the secret access key is {v}",
        f'"SecretAccessKey": "{v}"',
    ]
    return v, f"In ~/.aws/credentials: {texts[i % 4]} and region eu-west-1."


def gcp(r: random.Random, i: int) -> tuple[str, str]:
    if i < 3:
        v = "AIza" + _pick(r, B64URL, 35)
        return v, f"maps.init({{key: '{v}'}}) fails with REFERER_NOT_ALLOWED"
    field, v = [
        ("private_key_id", _pick(r, "0123456789abcdef", 40)),
        ("client_secret", "GOCSPX-" + _pick(r, B64URL, 28)),
        ("client_email", f"deployer@proj-{r.randrange(1000, 9999)}.iam.gserviceaccount.com"),
        ("private_key", _pick(r, B64, 64)),
        ("private_key_id", _pick(r, "0123456789abcdef", 40)),
    ][i - 3]
    shown = (
        f"-----BEGIN PRIVATE KEY-----\\n{_pick(r, B64, 64)}\\n{v}\\n-----END PRIVATE KEY-----\\n"
        if field == "private_key"
        else v
    )
    doc = f'{{"type": "service_account", "project_id": "proj", "{field}": "{shown}", "token_uri": "https://oauth2.googleapis.com/token"}}'
    return v, f"The service account file says {doc} — is that right?"


def azure(r: random.Random, i: int) -> tuple[str, str]:
    key = _pick(r, B64, 86) + "=="
    sig = "".join(r.choice(["%2B", "%2F", "%3D", *ALNUM]) for _ in range(44))
    texts = [
        (key, f"The storage account key is {key}"),
        (
            key,
            f"DefaultEndpointsProtocol=https;AccountName=acct{i};AccountKey={key};EndpointSuffix=core.windows.net",
        ),
        (
            sig,
            f"https://acct.blob.core.windows.net/c/f.csv?sv=2022-11-02&ss=b&srt=o&sp=r&se=2026-01-01T00:00:00Z&spr=https&sig={sig}",
        ),
        (sig, f"?sp=racwdl&st=2025-01-01&sig={sig}&sr=c"),
    ]
    v, text = texts[i % 4]
    if i >= 4 and i % 4 == 0:
        v = _pick(r, B64, 43) + "="
        text = f"Endpoint=sb://bus.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey={v}"
    if i == 7:
        v = _pick(r, ALNUM, 3) + "8Q~" + _pick(r, B64URL + "~.", 34)
        text = f"AZURE_CLIENT_SECRET={v}"
    return v, f"Ops pasted this: {text} into the ticket."


def vendor_token(r: random.Random, i: int) -> tuple[str, str]:
    v = [
        "ghp_" + _pick(r, ALNUM, 36),
        "github_pat_" + _pick(r, ALNUM + "_", 82),
        "glpat-" + _pick(r, B64URL, 20),
        "xoxb-" + f"{r.randrange(10**11)}-{r.randrange(10**12)}-" + _pick(r, ALNUM, 24),
        "sk_live_" + _pick(r, ALNUM, 24),
        "sk-proj-" + _pick(r, B64URL, 48),
        "sk-ant-api03-" + _pick(r, B64URL, 93) + "AA",
        "hf_" + _pick(r, ALNUM, 34),
    ][i]
    return v, f"Oops, I committed {v} in settings.py, please rotate it."


def vendor_token_more(r: random.Random, i: int) -> tuple[str, str]:
    v = [
        "api_org_" + _pick(r, ALNUM, 34),
        "gho_" + _pick(r, ALNUM, 36),
        "xoxp-" + f"{r.randrange(10**11)}-{r.randrange(10**11)}-" + _pick(r, ALNUM, 32),
        f"https://hooks.slack.com/services/T{_pick(r, string.ascii_uppercase + string.digits, 8)}/B{_pick(r, string.ascii_uppercase + string.digits, 8)}/{_pick(r, ALNUM, 24)}",
        "rk_live_" + _pick(r, ALNUM, 24),
        "sk-" + _pick(r, ALNUM, 20) + "T3BlbkFJ" + _pick(r, ALNUM, 20),
        "npm_" + _pick(r, ALNUM, 36),
        "SG." + _pick(r, B64URL, 22) + "." + _pick(r, B64URL, 43),
    ][i]
    return v, f"CI log line: using credential {v} for upload"


def oauth_client_secret(r: random.Random, i: int) -> tuple[str, str]:
    v = _pick(r, ALNUM, 12) + r.choice("-_~.") + _pick(r, ALNUM, 12)
    texts = [
        f"client_secret={v}",
        f'"client_secret": "{v}"',
        f"OAUTH_CLIENT_SECRET: {v}",
        f"--client-secret {v}",
    ]
    return v, f"Register the app with {texts[i % 4]} and the redirect URI."


def generic_assignment(r: random.Random, i: int) -> tuple[str, str]:
    v = [
        _pick(r, string.ascii_lowercase, 14),
        _pick(r, ALNUM, 12) + "!",
        "correct-horse-" + _pick(r, string.ascii_lowercase, 6),
    ][i % 3]
    texts = [
        f"password={v}",
        f"api_key: {v}",
        f'DB_PASSWORD="{v}"',
        f"passwd = '{v}'",
        f"Authorization: Bearer {v}{_pick(r, ALNUM, 8)}",
        f"secret: {v}",
        f"token={v}",
        f"pwd: {v}",
    ]
    text = texts[i]
    return (v if "Bearer" not in text else text.split()[-1]), f"config dump: {text} # do not share"


def address(r: random.Random, i: int) -> tuple[str, str]:
    street = r.choice(["Maple", "Oak", "Sunset", "Elm", "Harbor View", "Pine"])
    v = [
        f"{r.randrange(1, 9999)} {street} Street",
        f"{r.randrange(1, 9999)} {street} Avenue",
        f"{r.randrange(1, 999)} {street} Rd",
        f"{r.choice(['Haupt', 'Linden', 'Goethe', 'Bahnhof'])}straße {r.randrange(1, 200)}",
        f"{r.choice(['Am Berg', 'Rosen', 'Mühlen'])}weg {r.randrange(1, 90)}",
        f"SW1A {r.randrange(1, 9)}AA",
        f"EC{r.randrange(1, 4)}A {r.randrange(1, 9)}BB",
        f"{r.randrange(1, 9999)} {street} Boulevard",
    ][i]
    return v, f"Ship the replacement to {v}, ring twice."


CATEGORIES: dict[str, tuple[str, Gen]] = {
    "email": ("EMAIL", email_ascii),
    "email-unicode-idn": ("EMAIL", email_unicode),
    "email-quoted-local": ("EMAIL", email_quoted),
    "phone-international": ("PHONE", phone_international),
    "phone-national": ("PHONE", phone_national),
    "iban-spaced": ("IBAN", iban_spaced),
    "iban-plain": ("IBAN", iban_plain),
    "credit-card": ("CARD", credit_card),
    "us-ssn": ("NATIONAL_ID", us_ssn),
    "uk-nino": ("NATIONAL_ID", uk_nino),
    "de-steuer-id": ("NATIONAL_ID", de_steuer_id),
    "fr-insee": ("NATIONAL_ID", fr_insee),
    "in-aadhaar": ("NATIONAL_ID", in_aadhaar),
    "es-dni": ("NATIONAL_ID", es_dni),
    "ipv4": ("IP", ipv4),
    "ipv6": ("IP", ipv6),
    "url-password": ("SECRET", url_password),
    "jwt": ("SECRET", jwt),
    "private-key": ("PRIVATE_KEY", private_key),
    "aws-access-key-id": ("SECRET", aws_access_key_id),
    "aws-secret-access-key": ("SECRET", aws_secret_key),
    "gcp": ("SECRET", gcp),
    "azure": ("SECRET", azure),
    "vendor-token": ("SECRET", vendor_token),
    "vendor-token-more": ("SECRET", vendor_token_more),
    "oauth-client-secret": ("SECRET", oauth_client_secret),
    "generic-assignment": ("SECRET", generic_assignment),
    "postal-address": ("ADDRESS", address),
}


def corpus(seed: int = SEED) -> list[Item]:
    """Every category's values, the same on every call with the same seed."""
    rng = random.Random(seed)
    items = []
    for category, (kind, gen) in CATEGORIES.items():
        for i in range(PER_CATEGORY):
            value, text = gen(rng, i)
            assert value in text, (category, value)
            items.append(Item(category, kind, value, text))
    return items
