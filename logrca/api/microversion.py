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

"""REST API microversions: the one place that keeps their history.

Clients ask for a version with the standard header
``OpenStack-API-Version: log-analysis X.Y`` (``latest`` is the newest);
without it they get the oldest, 1.0. Every response says the version it was
served at in the same header. A malformed header gets 400, a version outside
``[min, max]`` gets 406.

History:

* **1.0** -- the first version: version discovery; list, show and update
  anomalies; the evidence summary of ``/v1/anomalies/{id}/explanation``.
* **1.1** -- questions and feedback: ``POST /v1/questions`` (answers from
  stored anomalies and explanations, with a conversation for follow-ups),
  ``GET /v1/conversations/{id}``, ``POST`` and ``GET
  /v1/anomalies/{id}/feedback`` (confirm or correct a cause). At 1.0 these
  routes answer 404.
"""

import microversion_parse

# The Keystone service type of logrca, as named in the service catalog and
# in the microversion header. Vitrage owns ``root-cause-analysis`` (alias
# ``rca``) in the service-types authority; logrca uses its own.
SERVICE_TYPE = 'log-analysis'
HEADER = 'OpenStack-API-Version'

# Every microversion, oldest first. Add a line here (and to the history
# above) for each change of the API.
VERSIONS = [
    '1.0',
    '1.1',
]

MIN_VERSION = VERSIONS[0]
MAX_VERSION = VERSIONS[-1]


class InvalidVersion(ValueError):
    """The microversion header is malformed (400)."""


class UnsupportedVersion(ValueError):
    """The microversion asked for is not served (406)."""


def extract(headers):
    """Return the :class:`microversion_parse.Version` a request asks for.

    :param headers: the request headers (a mapping).
    :raises InvalidVersion: malformed version string.
    :raises UnsupportedVersion: version outside ``[MIN, MAX]``.
    """
    try:
        return microversion_parse.extract_version(
            headers, SERVICE_TYPE, VERSIONS)
    except TypeError as exc:
        raise InvalidVersion(
            'Invalid %s header: %s' % (HEADER, exc)) from exc
    except ValueError as exc:
        raise UnsupportedVersion(
            'Version %s of %s is not supported; this server supports %s '
            'to %s.' % (microversion_parse.get_version(
                headers, SERVICE_TYPE), SERVICE_TYPE, MIN_VERSION,
                MAX_VERSION)) from exc


def header_value(version):
    """The value of the response's microversion header."""
    return '%s %s' % (SERVICE_TYPE, version)


def supports(version, wanted):
    """Whether a request served at ``version`` has what ``wanted`` added.

    :param version: the request's :class:`microversion_parse.Version`.
    :param wanted: ``'X.Y'``.
    """
    major, minor = (int(part) for part in wanted.split('.'))
    return version is not None and (version.major, version.minor) >= (
        major, minor)
