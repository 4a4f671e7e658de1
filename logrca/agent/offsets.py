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

"""Crash-safe JSON state files for read offsets and journal cursors."""

import json
import os
import tempfile

from oslo_log import log

LOG = log.getLogger(__name__)


class StateFile:
    """A JSON document on disk, replaced atomically on every save.

    A save writes a temporary file in the same directory, fsyncs it, renames
    it over the old file and fsyncs the directory, so after a crash the file
    holds either the old or the new document, never a mix. A file that
    cannot be read or parsed is logged and treated as empty (the agent then
    starts over rather than not starting).

    :param path: where the document lives; its directory is created.
    """

    def __init__(self, path):
        self.path = path
        self.corrupt = 0

    @classmethod
    def for_conf(cls, conf, name):
        """The state file ``name`` under ``[DEFAULT] state_path/agent``."""
        return cls(os.path.join(conf.state_path, 'agent', name))

    def load(self):
        """Return the saved document (a dict), or ``{}`` if there is none."""
        try:
            with open(self.path, 'rb') as f:
                data = json.loads(f.read().decode('utf-8'))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            self.corrupt += 1
            LOG.error('State file %s is unreadable (%s); starting without '
                      'saved state', self.path, exc)
            return {}
        if not isinstance(data, dict):
            self.corrupt += 1
            LOG.error('State file %s does not hold a JSON object; starting '
                      'without saved state', self.path)
            return {}
        return data

    def save(self, data):
        """Atomically replace the document with ``data``."""
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        payload = json.dumps(data, sort_keys=True,
                             separators=(',', ':')).encode('utf-8')
        fd, tmp = tempfile.mkstemp(
            prefix='.' + os.path.basename(self.path) + '.', dir=directory)
        try:
            with os.fdopen(fd, 'wb') as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
