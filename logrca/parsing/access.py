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

"""API access lines: the request a service answered and its status.

The wsgi servers of the OpenStack services log one INFO line per request
they answer: ``"POST /v2.1/... HTTP/1.1" status: 500`` (nova) or
``"... HTTP/1.1" 500`` (neutron, cinder, glance). A request answered with
an error status is a failure the user saw, even when no ERROR line says
so (the RCA reads the failed operation from them, the detectors score
responses never seen in normal logs).
"""

import collections
import re

_ACCESS_RE = re.compile(
    r'"(?P<method>GET|POST|PUT|DELETE|PATCH|HEAD) (?P<path>\S+) HTTP/[\d.]+"'
    r'\s+(?:status:\s*)?(?P<status>\d{3})')

#: An answered request: method, path and status code.
Response = collections.namedtuple('Response', 'method path status')


def parse(message):
    """The :class:`Response` of an access line, or None."""
    if not message or 'HTTP/' not in message:
        return None
    match = _ACCESS_RE.search(message)
    if not match:
        return None
    return Response(match.group('method'), match.group('path'),
                    int(match.group('status')))


def error_response(message):
    """The :class:`Response` of an access line with status >= 400, or None.

    Most access lines answer with 2xx: their status is read after the
    closing quote of the request before any regular expression runs.
    """
    start = message.find('HTTP/') if message else -1
    if start < 0:
        return None
    quote = message.find('"', start)
    if quote < 0:
        return None
    status = message[quote + 1:quote + 16].lstrip()
    if status.startswith('status:'):
        status = status[7:].lstrip()
    if status[:1] not in ('4', '5'):
        return None
    response = parse(message)
    if response is None or response.status < 400:
        return None
    return response
