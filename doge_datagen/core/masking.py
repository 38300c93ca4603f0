"""Which values are secrets, and how they are hidden wherever the package shows a URL, a
setting, a sink's name, an error or a metrics label. Every part of the package masks here.

- :func:`is_secret_key`: a setting (URL query parameter, client setting, request header)
  whose value is a secret;
- :func:`mask_url`: a URL with its password and its secret query values masked;
- :func:`mask_secrets`: free text (an error, a label) with every ``scheme://user:password@``
  and every ``password=...``-like value in it masked;
- :func:`mask_text`: text with given secret values masked wherever they appear.
"""

import json
import re
from typing import Any, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["MASK", "is_secret_key", "mask_secrets", "mask_text", "mask_url"]

#: What a secret is replaced with.
MASK = "***"

# Names of settings whose values are secrets: passwords, tokens, credentials, API and
# account keys, Kafka's ``*.basic.auth.user.info``, and the HTTP authorization and cookie
# headers.
_SECRET_NAMES = (
    r"pass(?:word)?|secret|token|credential|user\.info|api[._-]?key|account[._-]?key"
    r"|authorization|cookie"
)
_SECRET_KEY = re.compile(_SECRET_NAMES, re.I)
# ``NAME...=value`` in free text, the value ending at ``&``, white space, ``,`` or ``;``.
_SECRET_SETTING = re.compile(rf"((?:{_SECRET_NAMES})[\w.]*=)[^&\s,;]*", re.I)
# ``//user:password@`` in free text, where URLs stand among words.
_USERINFO = re.compile(r"(//[^/\s:@]*:)[^@/\s]*@")
# ``//user:password@`` in a text that is one URL, so that white space may be part of it.
_URL_USERINFO = re.compile(r"(//[^/:@]*:)[^@/]*@")


def is_secret_key(key: str) -> bool:
    """Whether a URL query parameter, client setting or request header named ``key`` holds a
    secret (a ``KEY_env`` parameter names an environment variable, which is no secret)."""
    return bool(_SECRET_KEY.search(key)) and not key.endswith("_env")


def mask_secrets(text: Any) -> str:
    """``text`` with URL passwords and ``password=...``-like values replaced by :data:`MASK`.

    Sink names and labels are user-given or built from URLs, and client errors may quote a
    URL or a setting: whatever names, errors, the metrics, the status page or /healthz show
    goes through this first. In free text a ``password_env=VAR`` is masked too: the rule
    cannot tell there whether a value was resolved.
    """
    masked = _USERINFO.sub(rf"\g<1>{MASK}@", str(text))
    return _SECRET_SETTING.sub(rf"\g<1>{MASK}", masked)


def mask_url(url: Any) -> str:
    """``url`` with the password of its user part and every secret query value masked.

    ``postgresql://u:s3cret@h/db?sslpassword=x`` -> ``postgresql://u:***@h/db?sslpassword=***``.
    Anything that does not parse as a URL is returned as ``str(url)`` with nothing masked
    only if it has no ``user:password@`` part and no ``password=...``-like setting.
    """
    text = str(url)
    try:
        parts = urlsplit(text)
    except ValueError:
        return _SECRET_SETTING.sub(rf"\g<1>{MASK}", _URL_USERINFO.sub(rf"\g<1>{MASK}@", text))
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        if ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:{MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(is_secret_key(k) for k, _ in pairs):
            query = urlencode(
                [(k, MASK if is_secret_key(k) else v) for k, v in pairs], safe="/:*${}"
            )
    if netloc == parts.netloc and query == parts.query:
        return text
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def mask_text(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every occurrence of each secret value replaced by :data:`MASK`, as it is
    and as JSON escapes it (a server may echo a header back inside a JSON string)."""
    given = [secret for secret in secrets if secret]
    for secret in given:
        text = text.replace(secret, MASK)
    for secret in given:
        text = text.replace(json.dumps(secret)[1:-1], MASK)
    return text
