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

# Each pattern keeps group 1 (the key and separator) and masks the value.
_PATTERNS = [
    # key=value, key: value, "key": "value" for secret-ish keys.
    re.compile(
        r'''((?:["']?)(?:[\w.-]*(?:password|passwd|pwd|secret|token|'''
        r'''api[_-]?key|access[_-]?key|private[_-]?key|credential|'''
        r'''auth[_-]?key|encryption[_-]?key|admin_pass|fernet_key)[\w.-]*'''
        r'''["']?\s*(?:=|:|\s=>)\s*["']?))([^"'\s,;&}\]]+)''',
        re.IGNORECASE),
    # HTTP auth headers.
    re.compile(r'((?:X-Auth-Token|X-Subject-Token|X-Service-Token)'
               r'["\']?\s*[:=]\s*["\']?)([^"\'\s,}]+)', re.IGNORECASE),
    re.compile(r'(Authorization["\']?\s*[:=]\s*["\']?(?:Basic|Bearer|'
               r'Token)?\s*)([^"\'\s,}]+)', re.IGNORECASE),
    # Credentials in URLs: scheme://user:password@host.
    re.compile(r'(\b[a-zA-Z][\w+.-]*://[^:/\s@]+:)([^@\s/]+)(?=@)'),
    # Keystone/fernet style tokens and PKI tokens standing alone.
    re.compile(r'(\b)(gAAAAA[\w-]{40,}={0,2})'),
    re.compile(r'(\b)(MII[\w+/=-]{60,})'),
    # PEM private keys.
    re.compile(r'(-----BEGIN [A-Z ]*PRIVATE KEY-----)'
               r'([\s\S]*?)(?=-----END [A-Z ]*PRIVATE KEY-----)'),
]

_QUICK = re.compile(
    r'pass|pwd|secret|token|key|credential|auth|://|gAAAAA|MII|PRIVATE',
    re.IGNORECASE)


def mask(text):
    """Return ``text`` with secret values replaced by ``***``.

    Cheap on the common case: lines without any secret-like word are returned
    unchanged after one scan.
    """
    if not text or not _QUICK.search(text):
        return text
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text
