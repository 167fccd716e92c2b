"""The scrubbing rule set: (kind, pattern, replacement), in the order they apply. Pure data.

Every pattern is RE2 syntax (rows and columns both run RE2, ``controllers.data.pii``), so ``\\b``,
``\\d`` and ``\\s`` are ASCII classes; non-ASCII letters (IDN e-mail) are spelled as a literal
code-point range. The patterns also stay within what Python's ``re`` reads, so a reader can try one
in a REPL. No look-around, no back-references in patterns. A replacement may keep group 1 (``\\1``: the ``password=`` before a
value, the ``://`` before URL credentials); otherwise the match becomes its kind's placeholder.

Order matters: whole blocks and vendor formats first, then keyword-anchored values, then structured
personal data (IBAN and national ids before cards and phones, which would otherwise take their
digits), then IP addresses, e-mail and the generic high-entropy catch-alls last.
"""

from __future__ import annotations

# Non-ASCII letters (and symbols), as a class range both engines read the same way.
U = "\u00c0-\U0010ffff"
HEX = "[0-9a-fA-F]"
H4 = f"{HEX}{{1,4}}"
OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
IPV4 = rf"{OCTET}(?:\.{OCTET}){{3}}"
KEEP = r"\1"

_PEM = r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----"
_SECRET_WORDS = (
    r"(?:pass(?:word|wd|phrase)?|pwd|secret|token|credentials?|auth|"
    r"(?:api|access|account|master|signing|encryption|private|client)[_-]?key(?:[_-]?id)?|apikey)"
)

SECRETS: list[tuple[str, str, str | None]] = [
    ("PRIVATE_KEY", _PEM + r"[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----", None),
    ("PRIVATE_KEY", _PEM + r"(?:[A-Za-z0-9+/=:, \t\r\n-]|\\n)*", None),  # cut short: no END line
    # Credentials in a URL, whatever the host (dotless, an IP, a bracketed IPv6): keep the scheme.
    ("SECRET", r"(://)[^\s/?#@:\[\]]*:[^\s/?#]*@", KEEP + "[SECRET]@"),
    ("SECRET", r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA|ASCA)[0-9A-Z]{16}\b", None),
    ("SECRET", r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b", None),  # GitHub
    ("SECRET", r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b", None),
    ("SECRET", r"\bgl(?:pat|dt|rt|ptt|cbt|imt|soat|ft)-[A-Za-z0-9_-]{20,}", None),  # GitLab
    ("SECRET", r"\bsk-(?:proj-|ant-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}", None),  # OpenAI / Anthropic
    ("SECRET", r"\b(?:[sr]k|pk)_(?:live|test)_[A-Za-z0-9]{16,}\b", None),  # Stripe
    ("SECRET", r"\bwhsec_[A-Za-z0-9]{24,}\b", None),
    ("SECRET", r"\bxox[abposre]-[A-Za-z0-9-]{10,}", None),  # Slack
    ("SECRET", r"hooks\.slack\.com/services/[A-Za-z0-9/_-]+", None),
    ("SECRET", r"\bAIza[0-9A-Za-z_-]{35}", None),  # Google API key
    ("SECRET", r"\bGOCSPX-[A-Za-z0-9_-]{20,}", None),  # Google OAuth client secret
    ("SECRET", r"\b(?:hf|api_org)_[A-Za-z0-9]{30,}\b", None),  # Hugging Face user / org
    ("SECRET", r"\bnpm_[A-Za-z0-9]{36}\b", None),
    ("SECRET", r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}", None),  # SendGrid
    ("SECRET", r"\b[A-Za-z0-9_~.-]{3}[0-9]Q~[A-Za-z0-9_~.-]{30,}", None),  # Azure AD client secret
    # JWT, signed or not (``alg: none`` leaves the third part empty).
    ("SECRET", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*", None),
    # Azure: storage and Service Bus keys, SAS signatures (URL-encoded base64).
    ("SECRET", r"(?i)((?:AccountKey|SharedAccessKey)=)[A-Za-z0-9+/=]{20,}", KEEP + "[SECRET]"),
    ("SECRET", r"(?i)([?&]sig=)[A-Za-z0-9%+/=_-]{16,}", KEEP + "[SECRET]"),
    # AWS secret access keys named as such, in prose or config.
    (
        "SECRET",
        r"(?i)(secret[ _-]?access[ _-]?key[\"']?(?:[ \t]*[:=][ \t]*|[ \t]+is[ \t]+|[ \t]+)[\"']?)[A-Za-z0-9/+]{40}",
        KEEP + "[SECRET]",
    ),
    # Bearer tokens and keyword assignments (``password=…``, ``api_key: …``, ``"client_secret": "…"``).
    ("SECRET", r"(?i)(\bbearer[ \t]+)[A-Za-z0-9._~+/-]{8,}=*", KEEP + "[SECRET]"),
    (
        "SECRET",
        r"(?i)([A-Za-z0-9_.-]*" + _SECRET_WORDS + r"[A-Za-z0-9_.-]*[\"']?[ \t]*(?:[:=]|[ \t]--?)[ \t]*[\"']?)"
        r"[^\s\"',;]{6,}",
        KEEP + "[SECRET]",
    ),
    ("SECRET", r"(?i)(--?client-secret[ \t=]+)[^\s\"',;]{6,}", KEEP + "[SECRET]"),
]

PERSONAL: list[tuple[str, str, str | None]] = [
    ("IBAN", r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b", None),
    ("NATIONAL_ID", r"\b[0-9]{3}[- ][0-9]{2}[- ][0-9]{4}\b", None),  # US SSN
    (
        "NATIONAL_ID",
        r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]\b",
        None,
    ),  # NINO
    ("NATIONAL_ID", r"\b[0-9]{2} [0-9]{3} [0-9]{3} [0-9]{3}\b", None),  # DE Steuer-ID, spaced
    (
        "NATIONAL_ID",
        r"(?i)(\bsteuer-?id[a-z]*[ \t:]*(?:lautet[ \t]+|ist[ \t]+)?)[0-9]{11}\b",
        KEEP + "[NATIONAL_ID]",
    ),
    (
        "NATIONAL_ID",
        r"\b[12] ?[0-9]{2} ?(?:0[1-9]|1[0-2]|[2-9][0-9]) ?(?:[0-9]{2}|2[AB]) ?[0-9]{3} ?[0-9]{3} ?[0-9]{2}\b",
        None,
    ),  # FR INSEE (NIR) with its key
    ("NATIONAL_ID", r"\b[XYZ]?[0-9]{7,8}-?[A-HJ-NP-TV-Z]\b", None),  # ES DNI / NIE
    ("PHONE", r"\+[1-9][0-9]{0,3}(?:[ .-]?\([0-9]{1,5}\)|[ .-]?[0-9]{1,5})(?:[ .-]?[0-9]{2,5}){1,5}\b", None),
    ("CARD", r"\b(?:[0-9][ -]?){12,18}[0-9]\b", None),
    ("NATIONAL_ID", r"\b[2-9][0-9]{3}[ -][0-9]{4}[ -][0-9]{4}\b", None),  # IN Aadhaar
    # Phones: international (+CC …), area code in parentheses, national with a trunk 0, NANP.
    ("PHONE", r"\([0-9]{2,5}\)[ .-]?[0-9]{2,4}(?:[ .-]?[0-9]{2,4}){1,3}\b", None),
    ("PHONE", r"\b0[1-9](?: [0-9]{2}){4}\b|\b0[1-9](?:\.[0-9]{2}){4}\b", None),  # FR
    ("PHONE", r"\b0[1-9][0-9]{0,4}[ /.-]?[0-9]{3,4}(?:[ .-]?[0-9]{2,4}){1,3}\b", None),
    ("PHONE", r"\b[2-9][0-9]{2}[ .-][0-9]{3}[ .-][0-9]{4}\b", None),
    # Postal addresses: a house number and a street-type word (US/UK), a German street, a UK postcode.
    (
        "ADDRESS",
        r"\b[0-9]{1,5} (?:[A-Z][a-z]+ ){1,3}(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|"
        r"Dr|Court|Ct|Place|Pl|Terrace|Parkway|Pkwy)\b\.?",
        None,
    ),
    (
        "ADDRESS",
        r"\b[A-ZÄÖÜ][a-zäöüß]*(?: [A-ZÄÖÜ][a-zäöüß]+)*(?:straße|strasse|str\.|weg|platz|allee|gasse|damm)"
        r" [0-9]{1,4}[a-z]?\b",
        None,
    ),
    ("ADDRESS", r"\b[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}\b", None),
]

NETWORK: list[tuple[str, str, str | None]] = [
    (
        "EMAIL",
        rf"(?:\"[^\"\r\n]{{1,64}}\"|[A-Za-z0-9{U}._%+-]+)@[A-Za-z0-9{U}](?:[A-Za-z0-9{U}-]*[A-Za-z0-9{U}])?"
        rf"(?:\.[A-Za-z0-9{U}](?:[A-Za-z0-9{U}-]*[A-Za-z0-9{U}])?)*\.(?:xn--[A-Za-z0-9-]+|[A-Za-z{U}]{{2,}})",
        None,
    ),
    ("IP", rf"\b(?:::ffff:|::){IPV4}\b|\b{IPV4}\b", None),
    (
        "IP",
        rf"\b(?:{H4}:){{7}}{H4}\b"
        rf"|\b(?:{HEX}{{3,4}}:(?:{H4}:){{0,5}}|(?:{H4}:){{2,6}})(?::{H4}){{1,6}}(?:%[A-Za-z0-9]+)?"
        rf"|\b(?:{HEX}{{3,4}}:(?:{H4}:){{0,6}}|(?:{H4}:){{2,7}}):"
        rf"|::1\b|::(?:{H4}:){{1,6}}{H4}\b",
        None,
    ),
    # Generic high-entropy strings: long hex, or long base64-ish runs mixing letters and digits.
    ("SECRET", r"\b[0-9a-fA-F]{32,}\b", None),
    (
        "SECRET",
        r"\b[A-Za-z0-9+/_-]*[0-9][A-Za-z0-9+/_-]*[A-Za-z][A-Za-z0-9+/_-]*[0-9][A-Za-z0-9+/_-]{24,}={0,2}",
        None,
    ),
]

RULES: list[tuple[str, str, str | None]] = [*SECRETS, *PERSONAL, *NETWORK]
