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

"""Anonymous streams: what the harness lets detection code see of a run.

A run's allowed files (its service logs) become streams named after the
service only (``nova-compute``, ``cinder-api``, ``neutron-server``...),
grouped under a random run id. The mapping from run id to test and round
stays in the harness.
"""

import heapq
import re
import uuid

# Service folders whose logs the system may read (PROTOCOL.md section 1).
SERVICES = ('nova', 'cinder', 'neutron', 'glance', 'heat')

# logs/round_<n>/<service>/<file>.out
_SERVICE_LOG_RE = re.compile(
    r'^logs/round_(\d+)/(%s)/([A-Za-z0-9_.-]+)\.out$' % '|'.join(SERVICES))
# A stream name: the service, a dash, the daemon (lower case words).
STREAM_NAME_RE = re.compile(r'^(%s)-[a-z0-9]+(?:-[a-z0-9]+)*$'
                            % '|'.join(SERVICES))


def stream_name(rest, round_):
    """The stream name of a file of a run, or None if it is not allowed.

    :param rest: the path below ``Test_<id>/``, e.g.
        ``logs/round_1/neutron/dhcp-agent.log.bzip2.out``.
    :param round_: the run's round; files of another round are refused.
    :returns: e.g. ``neutron-dhcp-agent``; ``nova/nova-compute.log`` gives
        ``nova-compute`` and ``heat/heat-engine.log`` ``heat-engine``.
    """
    match = _SERVICE_LOG_RE.match(rest)
    if not match or int(match.group(1)) != round_:
        return None
    service = match.group(2)
    daemon = match.group(3).split('.', 1)[0].lower().replace('_', '-')
    if not daemon:
        return None
    if daemon != service and not daemon.startswith(service + '-'):
        daemon = '%s-%s' % (service, daemon)
    if not STREAM_NAME_RE.match(daemon):
        return None
    return daemon


def new_run_id():
    """A random, meaningless run id."""
    return uuid.uuid4().hex[:16]


def _key(record):
    # Records without a time keep their place (the reader gives them the
    # stream's last time when it has one).
    return record.timestamp if record.timestamp is not None else 0.0


class AnonymousRun:
    """One run as detection code may see it: named streams of records.

    :ivar run_id: a random id; only the harness knows which test it is.
    :ivar streams: stream name -> list of
        :class:`~logrca.parsing.records.LogRecord`, in file order.
    """

    __slots__ = ('run_id', 'streams')

    def __init__(self, streams, run_id=None):
        self.run_id = run_id or new_run_id()
        for name in streams:
            if not STREAM_NAME_RE.match(name):
                raise ValueError('not an anonymous stream name: %r' % name)
        self.streams = dict(sorted(streams.items()))

    def records(self):
        """All records in log-time order, merged as a live agent would."""
        return heapq.merge(*self.streams.values(), key=_key)

    def __len__(self):
        return sum(len(records) for records in self.streams.values())

    @property
    def has_error(self):
        """Whether any stream holds an ERROR or CRITICAL record."""
        return any(r.is_error for records in self.streams.values()
                   for r in records)
