# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""Masking of secrets (passwords, tokens, keys, credentials) in text."""

import re

MASK = '***'

# mask() runs on every log line, so it is built for the common case: one
# lower-casing and a few substring tests decide that a line holds no
# secret-like word (about 1 us). Only lines that do are given to the
# patterns, and only to the patterns their words can need. No library
# covers this (oslo_utils.strutils.mask_password is about 30x slower per
# line and knows only key/value forms), hence the hand-written patterns.

# key=value, key: value, "key": "value", key => value for secret-ish keys.
# The pattern is only tried (``match``) where the lower-cased text holds
# one of the stems below, never scanned over the whole line: a case-blind
# alternation scanned over a 300-character line costs about 30 us. Any
# prefix of the key name (``admin_``, ``os_``) is left in place and only
# the value is masked; quoted values are masked up to the closing quote.
_KEY_VALUE_AT = re.compile(
    r'''(?:password|passwd|pwd|secret|token|credential|key|pass(?=\W))'''
    r'''[\w-]*["']?\s*(?:=|:|=>)\s*'''
    r'''(?:u?(?P<qc>["'])(?!\*\*\*|None(?P=qc))'''
    r'''(?P<q>(?:(?!(?P=qc)).)+)(?=(?P=qc))'''
    r'''|(?!u?["']|\*\*\*|None\b|null\b)(?P<v>(?:\{\w+\})?[^"'\s,;&}\])]+))''',
    re.IGNORECASE)
_KEY_STEMS = ('pass', 'pwd', 'secret', 'token', 'credential', 'key')
# ``key`` alone is no secret (key_name, keypair): only these kinds are.
_KEY_KIND = re.compile(r'(?:api|access|private|auth|encryption|fernet)[_-]?$')
# HTTP headers carrying tokens; Authorization with its scheme.
_HEADERS = re.compile(
    r'''((?:X-Auth-Token|X-Subject-Token|X-Service-Token)["']?\s*[:=]\s*'''
    r'''(?:u?["'])?|Authorization["']?\s*[:=]\s*(?:u?["'])?'''
    r'''(?:(?:Basic|Bearer|Token|Negotiate|Digest)\s+)?)'''
    r'''(?!\*\*\*|None\b)((?:\{\w+\})?[^"'\s,}]+)''',
    re.IGNORECASE)
_HEADER_WORDS = ('x-auth-token', 'x-subject-token', 'x-service-token',
                 'authorization')
# Credentials in URLs: scheme://user:password@host, tried after '://'.
_URL_AT = re.compile(r'[^:/\s@]*:(?P<v>[^@\s/]+)(?=@)')
# Keystone fernet tokens and PKI tokens standing alone.
_FERNET = re.compile(r'()(gAAAAA[\w-]{40,}={0,2})')
_PKI = re.compile(r'()(MII[\w+/=-]{60,})')
# PEM private keys.
_PEM = re.compile(r'(-----BEGIN [A-Z ]*PRIVATE KEY-----)'
                  r'([\s\S]*?)(?=-----END [A-Z ]*PRIVATE KEY-----)')


def _keep_key(match):
    return match.group(1) + MASK


def _positions(low, word, offset=0):
    pos = low.find(word)
    while pos >= 0:
        yield pos + offset
        pos = low.find(word, pos + 1)


def _mask_at(text, starts, pattern):
    """Mask group ``q`` or ``v`` of ``pattern`` matched at ``starts``."""
    pieces = []
    last = 0
    for start in sorted(starts):
        if start < last:
            continue
        match = pattern.match(text, start)
        if match is None:
            continue
        groups = match.groupdict()
        begin, end = match.span('q' if groups.get('q') is not None else 'v')
        pieces.append(text[last:begin])
        pieces.append(MASK)
        last = end
    if not pieces:
        return text
    pieces.append(text[last:])
    return ''.join(pieces)


def _key_starts(low):
    for stem in _KEY_STEMS:
        for pos in _positions(low, stem):
            if stem != 'key' or _KEY_KIND.search(low, max(0, pos - 12), pos):
                yield pos


def mask(text):
    """Return ``text`` with secret values replaced by ``***``.

    Cheap on the common case: a line without any secret-like word is
    returned unchanged (the same object) after one lower-casing and a few
    substring tests.
    """
    if not text:
        return text
    low = text.lower()
    keyish = False
    for word in _KEY_STEMS:
        if word in low:
            keyish = True
            break
    url = '://' in low
    # The steps below change nothing unless one of these holds (the token
    # and key patterns are case-sensitive, so they are looked for as such).
    if not (keyish or url or 'auth' in low or 'gAAAAA' in text
            or 'MII' in text or 'PRIVATE KEY' in text):
        return text
    if keyish:
        starts = list(_key_starts(low))
        if starts:
            text = _mask_at(text, starts, _KEY_VALUE_AT)
            low = text.lower()
    for word in _HEADER_WORDS:
        if word in low:
            text = _HEADERS.sub(_keep_key, text)
            low = text.lower()
            break
    if url:
        text = _mask_at(text, _positions(low, '://', 3), _URL_AT)
    if 'gAAAAA' in text:
        text = _FERNET.sub(_keep_key, text)
    if 'MII' in text:
        text = _PKI.sub(_keep_key, text)
    if 'PRIVATE KEY' in text:
        text = _PEM.sub(_keep_key, text)
    return text
