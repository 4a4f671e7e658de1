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

"""Records: what the parsers make of log lines and notifications."""

import dataclasses

# Record kinds.
LOG = 'log'
NOTIFICATION = 'notification'
UNPARSED = 'unparsed'

ERROR_LEVELS = frozenset(('ERROR', 'CRITICAL'))


@dataclasses.dataclass(slots=True)
class LogRecord:
    """One event: a log record (with its continuation lines) or notification.

    Records are what parsing hands to sessionizing and detection. Every text
    field has had its secrets masked (:mod:`logrca.masking`) before a record
    is built, so nothing downstream ever sees a password or token.

    :ivar stream: name of the stream the record came from (e.g. the log
        file's service name ``nova-compute`` or ``notifications``).
    :ivar timestamp: log time, seconds since the epoch (UTC), or None when
        the line carries none (unparsed lines inherit the stream's last).
    :ivar level: ``DEBUG`` ... ``CRITICAL``, or None.
    :ivar logger: the Python logger name (``nova.compute.manager``).
    :ivar message: the first line of the message, masked.
    :ivar extra: continuation lines (traceback), masked.
    :ivar location: the code location oslo.log appends to DEBUG lines
        (``func /path/module.py:123``), if any.
    :ivar template_id: id of the template the parser assigned, or None.
    :ivar template: template text with ``<*>`` for variable parts.
    :ivar params: the variable parts of the message, in order.
    :ivar kind: :data:`LOG`, :data:`NOTIFICATION` or :data:`UNPARSED`.
    :ivar lineno: line number of the record's first line in its stream.
    """

    stream: str
    timestamp: float | None
    level: str | None = None
    logger: str | None = None
    message: str = ''
    pid: int | None = None
    host: str | None = None
    request_id: str | None = None
    global_request_id: str | None = None
    user_id: str | None = None
    project_id: str | None = None
    instance_id: str | None = None
    location: str | None = None
    extra: list = dataclasses.field(default_factory=list)
    template_id: int | None = None
    template: str | None = None
    params: list = dataclasses.field(default_factory=list)
    kind: str = LOG
    lineno: int = 0
    event_type: str | None = None

    @property
    def is_error(self):
        """True for ERROR and CRITICAL records."""
        return self.level in ERROR_LEVELS

    @property
    def service(self):
        """The service a record belongs to: its stream name."""
        return self.stream

    def text(self):
        """The whole record as one masked text, continuation lines included."""
        if not self.extra:
            return self.message
        return '\n'.join([self.message, *self.extra])
