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

"""Variable parts of OpenStack log messages, shared by the template miners."""

# Each entry is (name, regex). The same list configures Drain3's masking
# (logrca.parsing.drain, tools/drain3_reference.ini) and the shape miner's
# token masking (logrca.parsing.shape), so both see the same variables.
# Order matters: longer, more specific forms first.
_L = r'((?<=[^A-Za-z0-9])|^)'
_R = r'((?=[^A-Za-z0-9])|$)'

MASKS = (
    # req-<uuid> request ids.
    ('REQ', _L + r'req-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-'
     r'[0-9a-fA-F]{4}-[0-9a-fA-F]{12}' + _R),
    # UUIDs (instances, volumes, ports, ...).
    ('UUID', _L + r'[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-'
     r'[0-9a-fA-F]{4}-[0-9a-fA-F]{12}' + _R),
    # MAC addresses.
    ('MAC', _L + r'(?:[0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}' + _R),
    # IPv4 addresses with optional port or prefix length.
    ('IP', _L + r'\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?:[:/]\d+)?' + _R),
    # Hex ids: keystone user/project ids, hashes, 0x addresses.
    ('HEX', _L + r'(?:0x[0-9a-fA-F]+|[0-9a-fA-F]{32}|[0-9a-fA-F]{40}|'
     r'[0-9a-fA-F]{64})' + _R),
    # The protocol of HTTP request lines ("GET /path HTTP/1.1"): one event
    # whatever the version.
    ('HTTP', _L + r'HTTP/\d(?:\.\d)?' + _R),
    # File system and URL paths.
    ('PATH', r'((?<=[\s"\'(=:])|^)/[^\s"\',;)]*'),
    # Numbers, signed and decimal, with an optional unit.
    ('NUM', _L + r'[-+]?\d+(?:\.\d+)?' + _R),
)
